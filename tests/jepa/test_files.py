"""Safe writes: a full disk or a read-only folder is an error naming the file, strict JSON, leftovers of
killed writers, folder locks."""

import errno
import fcntl
import json
import os
import threading

import pytest

from jepa.errors import OutputError
from jepa.files import atomic_write, atomic_write_text, locked, remove_stale_temps, write_json
from tests.helpers import full_disk, read_only


def test_a_full_disk_keeps_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    import torch

    from jepa.checkpoints import atomic_torch_save

    target = tmp_path / "latest.pt"
    atomic_torch_save({"w": torch.zeros(4)}, target)
    old = target.read_bytes()
    full_disk(monkeypatch, free_bytes=100)
    with pytest.raises(OutputError, match=r"latest\.pt: cannot write \(no space left") as err:
        atomic_torch_save({"w": torch.zeros(10_000)}, target)  # torch.save would report "unexpected pos"
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    assert target.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


@pytest.mark.parametrize("code,problem", [(errno.EROFS, "the file system is read-only"),
                                                (errno.EACCES, "permission denied")])
def test_a_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch, code, problem):
    read_only(monkeypatch, tmp_path / "out", code)
    with pytest.raises(OutputError, match=f"out/sub/index.json: cannot write \\({problem}") as err:
        atomic_write_text(tmp_path / "out" / "sub" / "index.json", "{}")
    assert err.value.errno == code
    (tmp_path / "elsewhere").mkdir()  # other folders are not affected
    atomic_write_text(tmp_path / "elsewhere" / "a.txt", "ok")


def test_write_json_is_strict_json(tmp_path):
    write_json(tmp_path / "s.json", {"rate": float("nan"), "d": [1.5, float("inf")], "pair": (1, 2)})
    assert json.loads((tmp_path / "s.json").read_text(), parse_constant=lambda c: 1 / 0) == {
        "rate": None, "d": [1.5, None], "pair": [1, 2]}


def test_stale_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    names = {f".latest.pt.{dead}.abcd1234.tmp": True, f".latest.pt.{os.getpid()}.abcd1234.tmp": False,
             ".latest.pt.abcd1234.tmp": True,  # an older name without a process id
             f".model.{dead}.tmp.safetensors": True, "latest.pt": False, ".index.lock": False, "notes.tmp": False}
    for n in names:
        (tmp_path / n).write_text("x")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / f".x.safetensors.{dead}.abcd1234.tmp").write_text("x")
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {n for n, stale in names.items() if stale}
    assert {p.name for p in tmp_path.iterdir()} == {n for n, stale in names.items() if not stale} | {"features"}
    assert [p.name for p in remove_stale_temps(tmp_path, recursive=True)] == [f".x.safetensors.{dead}.abcd1234.tmp"]


def test_atomic_write_leaves_no_temp_file_when_the_writer_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):  # not a disk problem: the writer's own error goes through as is
        atomic_write(tmp_path / "x.bin", lambda f: (f.write(b"part"), 1 / 0))
    assert list(tmp_path.iterdir()) == []


def test_locked_excludes_other_holders_until_released(tmp_path):
    lock = tmp_path / ".index.lock"
    inside, release = threading.Event(), threading.Event()

    def hold():
        with locked(lock):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(10)
    fd = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        release.set()
        t.join(10)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)

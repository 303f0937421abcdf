"""The skip-unreadable-and-continue rule shared by the training datasets."""

import warnings

import pytest

from jepa.data.video import VideoReadError
from jepa.train.ac import RawWindows
from jepa.train.batches import first_readable


def _reader(bad):
    def read(i):
        if i in bad:
            raise VideoReadError(f"clip{i}.mp4: unreadable")
        return f"item{i}"
    return read


def test_unreadable_items_are_skipped_warned_about_and_counted():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert first_readable(_reader({1, 2}), 1, 5, (VideoReadError,), "clip") == ("item3", 2)
        assert first_readable(_reader({4}), 4, 5, (VideoReadError,), "clip")[0] == "item0"  # wraps around
    assert [str(w.message) for w in caught] == [f"skipping unreadable clip: clip{i}.mp4: unreadable" for i in (1, 2, 4)]
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="3 clips in a row from index 0.*clip2.mp4"):
        first_readable(_reader({0, 1, 2}), 0, 5, (VideoReadError,), "clip", max_skips=2)
    with pytest.raises(KeyError):  # other errors are not skipped
        first_readable(lambda i: {}["x"], 0, 5, (VideoReadError,), "clip")


def test_raw_windows_skip_to_the_next_readable_window():
    class Windows:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise VideoReadError("ep2.mp4: cannot decode")
            return {"frames": i, "states": i, "actions": i, "episode": i}

    with pytest.warns(UserWarning, match="skipping unreadable window: ep2.mp4"):
        item = RawWindows(Windows())[(0, 0, 0, 2)]
    assert item == {"frames": 3, "states": 3, "actions": 3, "skipped": 1}

"""Which exceptions are library errors (one line, exit 2) and how they read."""

import errno

from jepa.checkpoints import CheckpointError
from jepa.config import ConfigError
from jepa.data.feature_cache import FeatureCacheError
from jepa.data.lerobot import LeRobotFormatError
from jepa.data.trajectories import TrajectoryFormatError
from jepa.data.video import VideoReadError
from jepa.errors import JepaError, MissingFileError, OutputError, describe, is_library_error, write_error


def test_the_library_errors_share_a_base_and_keep_their_builtin_classes():
    for cls, builtin in [(ConfigError, ValueError), (CheckpointError, ValueError), (TrajectoryFormatError, ValueError),
                         (LeRobotFormatError, ValueError), (FeatureCacheError, ValueError),
                         (VideoReadError, RuntimeError), (MissingFileError, FileNotFoundError),
                         (OutputError, OSError)]:
        assert issubclass(cls, JepaError) and issubclass(cls, builtin), cls
        assert is_library_error(cls("x"))
    from eval.anticipation.epic import AnnotationError
    from eval.planning.goals import GoalProtocolError
    from planners.protocol import EnvProtocolError

    assert all(issubclass(c, JepaError) for c in (AnnotationError, GoalProtocolError, EnvProtocolError))


def test_oserrors_about_the_users_files_are_library_errors_and_bugs_are_not():
    denied = PermissionError(errno.EACCES, "Permission denied", "/data/out")
    assert is_library_error(denied) and describe(denied) == "/data/out: permission denied; choose an output folder " \
                                                             "you can write to"
    assert is_library_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.yaml"))
    assert is_library_error(FileNotFoundError("configs/x.yaml does not exist"))  # raised with a message only
    assert not is_library_error(OSError(errno.EBADF, "Bad file descriptor"))
    assert not is_library_error(ValueError("a bug")) and not is_library_error(KeyError("x"))
    full = write_error("runs/x/latest.pt", OSError(errno.ENOSPC, "No space left on device"))
    assert str(full).startswith("runs/x/latest.pt: cannot write (no space left") and full.errno == errno.ENOSPC


import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jepa.data.droid import DroidWindows, poses_to_actions
from jepa.data.trajectories import TrajectoryFormatError
from tests.helpers import write_droid_episode


def test_pose_difference_actions_match_the_release_definition():
    states = np.zeros((2, 7), np.float32)
    states[1, :3] = [0.1, -0.2, 0.05]
    states[0, 3:6] = [0.1, 0.2, 0.3]
    states[1, 3:6] = [0.15, 0.1, 0.35]
    states[1, 6] = 0.5
    a = poses_to_actions(states)[0]
    np.testing.assert_allclose(a[:3], [0.1, -0.2, 0.05], atol=1e-6)
    r0, r1 = Rotation.from_euler("xyz", states[0, 3:6]), Rotation.from_euler("xyz", states[1, 3:6])
    np.testing.assert_allclose(Rotation.from_euler("xyz", a[3:6]).as_matrix(), (r1 * r0.inv()).as_matrix(), atol=1e-6)
    assert a[6] == pytest.approx(0.5)


def test_droid_windows_yield_the_same_layout_as_trajectory_windows(tmp_path):
    pose, grip = write_droid_episode(tmp_path / "ep0")
    listing = tmp_path / "droid.csv"
    listing.write_text(f"{tmp_path / 'ep0'}\n")
    ds = DroidWindows(listing, window=4, target_fps=4.0)  # 15 fps -> step 4
    assert len(ds) == 24 - 3 * 4
    item = ds[2]
    assert item["frames"].shape == (4, 3, 32, 64) and item["frames"].dtype.is_floating_point is False
    np.testing.assert_allclose(item["states"][:, :6].numpy(), pose[[2, 6, 10, 14]], atol=1e-6)
    np.testing.assert_allclose(item["states"][:, 6].numpy(), grip[[2, 6, 10, 14]], atol=1e-6)
    assert item["actions"].shape == (3, 7)
    np.testing.assert_allclose(item["actions"][:, :3].numpy(), np.diff(pose[[2, 6, 10, 14], :3], axis=0), atol=1e-6)
    levels = item["frames"].float().mean(dim=(1, 2, 3)).numpy()  # frame i has grey level 20 * i
    np.testing.assert_allclose(levels, [40, 120, 200, (280 % 256)], atol=6)


def test_broken_droid_folders_are_named(tmp_path):
    write_droid_episode(tmp_path / "ep0")
    (tmp_path / "ep0" / "trajectory.h5").write_bytes(b"junk")
    with pytest.raises(TrajectoryFormatError, match="trajectory.h5"):
        DroidWindows([tmp_path / "ep0"], window=4)
    (tmp_path / "ep1").mkdir()
    with pytest.raises(TrajectoryFormatError, match="ep1/trajectory.h5: cannot read"):
        DroidWindows([tmp_path / "ep1"], window=4)

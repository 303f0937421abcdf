"""The skip-unreadable-and-continue rule shared by the training datasets."""

import warnings

import pytest

from jepa.data.video import VideoReadError
from jepa.errors import SkipBudgetError
from jepa.train.ac import RawWindows
from jepa.train.batches import SkipBudget, first_readable


def _reader(bad):
    def read(i):
        if i in bad:
            raise VideoReadError(f"clip{i}.mp4: unreadable")
        return f"item{i}"
    return read


def test_unreadable_items_are_skipped_warned_about_once_and_counted():
    budget = SkipBudget(10, 0.5, "clip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert first_readable(_reader({1, 2}), 1, 10, (VideoReadError,), "clip", budget) == ("item3", 2)
        # remembered: not read (nor warned about) again, still counted in the sample that skips it
        assert first_readable(_reader(set()), 2, 10, (VideoReadError,), "clip", budget) == ("item3", 1)
        assert first_readable(_reader({9}), 9, 10, (VideoReadError,), "clip", budget)[0] == "item0"  # wraps around
    assert [str(w.message) for w in caught] == [f"skipping unreadable clip: clip{i}.mp4: unreadable" for i in (1, 2, 9)]
    with pytest.raises(KeyError):  # other errors are not skipped
        first_readable(lambda i: {}["x"], 0, 5, (VideoReadError,), "clip")


def test_the_skip_budget_is_a_fraction_of_the_dataset_not_a_run_of_failures():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 11 unreadable items in a row, good ones after: skipped and counted, not an abort
        assert first_readable(_reader(set(range(11))), 0, 30, (VideoReadError,), "clip",
                              SkipBudget(30, 0.5, "clip")) == ("item11", 11)
        with pytest.raises(SkipBudgetError, match=r"unreadable clips: 6 of 10 could not be read.*0\.5.*clip5\.mp4"):
            first_readable(_reader(set(range(6))), 0, 10, (VideoReadError,), "clip", SkipBudget(10, 0.5, "clip"))
        with pytest.raises(SkipBudgetError, match="none of the 3 clips could be read"):
            first_readable(_reader({0, 1, 2}), 1, 3, (VideoReadError,), "clip", SkipBudget(3, 1.0, "clip"))


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

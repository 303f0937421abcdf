"""Where the planning benchmark's episodes start and what their goals are.

Two protocols, both judged by the env's own success test on the simulator state:

- ``source: env`` — the env's own goals: episode ``i`` is ``env.reset(seed=seed + i)`` and the goal
  image is the env's (FetchReach: the gripper at the goal; FetchPush: the object on the goal).
- ``source: dataset`` — the protocol of stable-worldmodel and LeWM: the start is frame ``t`` of a
  held-out collected episode, restored exactly from its recorded simulator state, and the goal is
  the same episode's frame ``t + offset`` (its simulator state sets what success is judged
  against; its image is the goal image). One start per dataset episode, ``t`` drawn with
  ``numpy.random.default_rng(seed)``.

Starts whose goal is already satisfied are excluded and counted (``Goals.excluded``), and the next
candidate is used instead, so every reported episode needs the planner to act. With
``exclude_passive`` a start is also excluded (``Goals.excluded_passive``) when the goal is reached
by doing nothing for the whole budget: a restored start keeps its velocities, so a block that was
just pushed can slide onto its goal by itself (measured on FetchPush: do-nothing "solved" 3 of 20).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from jepa.config import Checked, positive
from jepa.errors import JepaError


class GoalProtocolError(JepaError, ValueError):
    """A goal protocol cannot be run on this env or dataset (the message says why)."""


@dataclass
class GoalConfig(Checked):
    """Attributes:
    source: ``env`` (the env's own goals) or ``dataset`` (dataset-offset goals).
    dataset: a trajectory dataset with simulator states (``jepa collect`` records them), collected
        with other seeds than the training clips (held out).
    offset: env steps between the start frame and the goal frame (``dataset`` only; >= 1).
    exclude_passive: also exclude starts whose goal zero actions reach within the episode budget
        (needs ``get_sim_state`` / ``set_sim_state``; the start is restored after the check).
    """

    source: Literal["env", "dataset"] = "env"
    dataset: str = ""
    offset: int = 25
    exclude_passive: bool = False

    def check(self) -> None:
        positive(self, "offset")


@dataclass
class EpisodeStart:
    """A prepared episode: the env is in its start state with its goal set.

    ``seed`` seeds the solver; ``goal_state`` is the proprioceptive state at the goal when known
    (dataset goals), ``None`` otherwise; ``origin`` says where it came from (for the records)."""

    seed: int
    goal_state: np.ndarray | None
    origin: dict


class Goals:
    """Yields :class:`EpisodeStart` s for ``episodes`` episodes (module docstring)."""

    def __init__(self, env: Any, config: GoalConfig, seed: int, budget: int = 0) -> None:
        """``budget``: env steps per episode, for ``exclude_passive`` (which needs it > 0)."""
        self.env, self.config, self.seed, self.budget = env, config, seed, budget
        self.excluded = self.excluded_passive = 0
        if config.source == "dataset":
            if not config.dataset:
                raise GoalProtocolError("goals.source=dataset needs goals.dataset: a held-out trajectory dataset "
                                        "collected with `jepa collect` (the pipeline makes one when left empty)")
            self._need(("get_sim_state", "set_sim_state", "set_goal_from_sim_state"), "dataset-offset goals")
        if config.exclude_passive:
            self._need(("get_sim_state", "set_sim_state"), "goals.exclude_passive")
            if budget < 1:
                raise GoalProtocolError(f"goals.exclude_passive needs the episode budget in env steps, got {budget}")

    def _need(self, methods: tuple[str, ...], what: str) -> None:
        for name in methods:
            if not hasattr(self.env, name):
                raise GoalProtocolError(f"{what} need an env that can save and restore simulator states; "
                                        f"{type(self.env).__name__} has no {name}()")

    def starts(self, episodes: int) -> Iterator[EpisodeStart]:
        """``episodes`` prepared starts whose goal is not already satisfied."""
        candidates = self._env_candidates() if self.config.source == "env" else self._dataset_candidates()
        made = 0
        if episodes < 1:
            return
        for start in candidates:
            if self.env.is_success():
                self.excluded += 1
                continue
            if self.config.exclude_passive and self._reached_by_waiting():
                self.excluded_passive += 1
                continue
            made += 1
            yield start
            if made == episodes:
                return
        if made < episodes:
            passive = f", {self.excluded_passive} reached by doing nothing" if self.config.exclude_passive else ""
            raise GoalProtocolError(f"only {made} of {episodes} goals could be made ({self.excluded} were "
                                    f"already satisfied at the start{passive}); use a larger held-out dataset")

    def _reached_by_waiting(self) -> bool:
        """Whether zero actions (the do-nothing baseline's) reach the goal within the budget; the
        simulator state is restored afterwards either way."""
        saved = np.array(self.env.get_sim_state(), copy=True)
        zero = np.zeros(self.env.action_space.shape, dtype=self.env.action_space.dtype)
        try:
            for _ in range(self.budget):
                self.env.step(zero)
                if self.env.is_success():
                    return True
            return False
        finally:
            self.env.set_sim_state(saved)

    def _env_candidates(self) -> Iterator[EpisodeStart]:
        i = 0
        while True:
            self.env.reset(seed=self.seed + i)
            yield EpisodeStart(self.seed + i, None, {"env_seed": self.seed + i})
            i += 1

    def _dataset_candidates(self) -> Iterator[EpisodeStart]:
        from jepa.data.trajectories import TrajectoryDataset

        data = TrajectoryDataset(self.config.dataset)
        offset = self.config.offset
        rng = np.random.default_rng(self.seed)
        for i in range(len(data)):
            ep = data.load(i)
            where = f"{data.root / data.episodes[i]['file']}"
            if ep.sim_states is None:
                raise GoalProtocolError(f"{where}: no sim_states; collect the held-out dataset with "
                                        "`jepa collect` (it records them)")
            if len(ep) <= offset:
                raise GoalProtocolError(f"{where}: {len(ep)} frames, but goals.offset={offset} needs at "
                                        f"least {offset + 1}")
            t = int(rng.integers(0, len(ep) - offset))
            self.env.reset(seed=int(ep.info.get("seed", i)))
            self.env.set_sim_state(ep.sim_states[t])
            self.env.set_goal_from_sim_state(ep.sim_states[t + offset])
            yield EpisodeStart(self.seed + i, ep.states[t + offset].copy(),
                               {"dataset_episode": int(ep.info.get("id", i)), "t": t, "goal_t": t + offset})

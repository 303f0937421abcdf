"""The planner's bf16 path on a GPU (``pytest -m gpu``; skipped elsewhere): energies of candidate action
sequences under ``precision="bf16"`` on CUDA agree with the fp32 CPU energies of the same world model."""

import copy

import numpy as np
import pytest
import torch

from planners.objectives import Objective, ObjectiveConfig, WorldModelCost
from tests.helpers import make_world_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_bf16_energies_on_cuda_match_the_fp32_cpu_energies():
    wm = make_world_model()
    rng = np.random.default_rng(0)
    image, goal = (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    state = np.array([0.1, 0.2, 0.3, 0.0], np.float32)
    actions = torch.randn(64, 3, 4, generator=torch.Generator().manual_seed(0))
    energies = {}
    for name, model, precision in (("cpu", wm, "fp32"), ("cuda", copy.deepcopy(wm).to("cuda"), "bf16")):
        cost = WorldModelCost(model, Objective(ObjectiveConfig()), 4, chunk=16, precision=precision)
        cost.set_goal(goal)
        cost.set_context(image, state)
        with torch.no_grad():
            energies[name] = cost(actions.to(model.device))
    assert energies["cuda"].dtype == torch.float32 and energies["cuda"].shape == (64,)
    ref, out = energies["cpu"], energies["cuda"].cpu()
    assert float((out - ref).abs().max() / ref.abs().mean()) < 5e-2
    # the candidates are ranked alike: the best fp32 candidate is among the best few in bf16
    assert int(ref.argmin()) in out.argsort()[:5].tolist()

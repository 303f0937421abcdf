"""Solvers on known energies: CEM, iCEM, MPPI and the gradient solver, bounds, pins, momentum, errors."""

import math

import pytest
import torch

from planners.base import PlanSpace, shift_plan
from planners.cem import CEM, CEMConfig, momentum_update
from planners.gradient import GradientConfig, GradientSolver
from planners.icem import ICEM, ICEMConfig, colored_noise
from planners.mppi import MPPI, MPPIConfig, mppi_weights
from planners.registry import SolverConfig, build_solver, load_solver, solver_from_config
from tests.helpers import REPO_ROOT

H, A = 2, 3
TARGET = torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.25, 0.0]])   # inside the +-0.5 box


def quadratic(target: torch.Tensor):
    return lambda a: (a - target).pow(2).flatten(1).sum(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


SOLVERS = {
    "cem": CEM(CEMConfig(samples=300, iterations=10, topk=20, momentum_mean=0.1, momentum_std=0.1)),
    "icem": ICEM(ICEMConfig(samples=300, iterations=10, topk=20, min_samples=60, momentum_mean=0.1,
                            momentum_std=0.1)),
    "mppi": MPPI(MPPIConfig(samples=300, iterations=10, temperature=0.01)),
    "gradient": GradientSolver(GradientConfig(iterations=150, lr=0.02, starts=3)),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_solver_finds_interior_minimum(name):
    space = PlanSpace.symmetric(0.5, A, H)
    res = SOLVERS[name].solve(quadratic(TARGET), space, generator=gen())
    assert res.plan.shape == (H, A)
    assert torch.allclose(res.plan, TARGET, atol=0.03), res.plan
    assert res.energy == pytest.approx(float(quadratic(TARGET)(res.plan[None])), abs=1e-6)
    assert res.energy < 2e-3


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_optimum_outside_box_lands_on_bound_and_pins_hold(name):
    target = torch.tensor([[0.9, -0.2, 0.7], [-2.0, 0.1, 0.7]])   # dims 0 partly outside +-0.5
    space = PlanSpace([-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], H, pinned={2: 0.25})
    res = SOLVERS[name].solve(quadratic(target), space, generator=gen(1))
    assert (res.plan[:, 2] == 0.25).all()                          # pinned exactly
    assert res.plan[0, 0] == pytest.approx(0.5, abs=0.02)
    assert res.plan[1, 0] == pytest.approx(-0.5, abs=0.02)
    assert res.plan[0, 1] == pytest.approx(-0.2, abs=0.03)
    assert (res.plan >= -0.5).all() and (res.plan <= 0.5).all()


def test_cem_candidates_respect_bounds_and_pins():
    seen = []

    def cost(a):
        seen.append(a.clone())
        return a.pow(2).flatten(1).sum(1)

    space = PlanSpace([-0.1, -1.0], [0.1, 1.0], 3, pinned={1: -0.3})
    CEM(CEMConfig(samples=50, iterations=3, topk=5, init_std=[10.0])).solve(cost, space, generator=gen())
    allc = torch.cat(seen)
    assert allc.shape[1:] == (3, 2)
    assert (allc[..., 0].abs() <= 0.1).all() and (allc[..., 1] == -0.3).all()


def test_cem_is_bitwise_deterministic_under_seed():
    space = PlanSpace.symmetric(0.5, A, H)
    solver = CEM(CEMConfig(samples=64, iterations=4, topk=8))
    r1 = solver.solve(quadratic(TARGET), space, generator=gen(7))
    r2 = solver.solve(quadratic(TARGET), space, generator=gen(7))
    r3 = solver.solve(quadratic(TARGET), space, generator=gen(8))
    assert torch.equal(r1.plan, r2.plan) and r1.energies == r2.energies
    assert not torch.equal(r1.plan, r3.plan)


def test_momentum_update_formula():
    mean, std = torch.full((H, A), 0.2), torch.full((H, A), 1.0)
    elites = torch.randn(5, H, A, generator=gen())
    m, s = momentum_update(mean, std, elites, 0.25, 0.6)
    assert torch.allclose(m, 0.75 * elites.mean(0) + 0.25 * mean)
    assert torch.allclose(s, 0.4 * elites.std(0, unbiased=True) + 0.6 * std)


def test_std_momentum_controls_shrink_rate():
    """std_k >= mu^k std_0 with momentum mu; with mu = 0 a sharp energy collapses the std much faster."""
    space = PlanSpace.symmetric(1.0, A, H)
    sharp = quadratic(torch.zeros(H, A))
    runs = {mu: CEM(CEMConfig(samples=400, iterations=4, topk=10, momentum_std=mu)).solve(
        sharp, space, generator=gen()) for mu in (0.0, 0.9)}
    std0 = 1.0
    for k, s in enumerate(runs[0.9].stds, start=1):
        assert s >= 0.9 ** k * std0 - 1e-6
    assert runs[0.0].stds[-1] < 0.2 * runs[0.9].stds[-1]
    assert all(b < a for a, b in zip(runs[0.0].stds, runs[0.0].stds[1:]))


def test_more_elites_keep_a_wider_distribution():
    space = PlanSpace.symmetric(1.0, A, H)
    stds = {k: CEM(CEMConfig(samples=400, iterations=2, topk=k, momentum_std=0.0)).solve(
        quadratic(torch.zeros(H, A)), space, generator=gen()).stds[-1] for k in (5, 100)}
    assert stds[5] < stds[100]


def test_init_std_and_warm_start_are_used():
    space = PlanSpace.symmetric(1.0, A, 1)
    first = []

    def cost(a):
        if not first:
            first.append(a.clone())
        return a.pow(2).flatten(1).sum(1)

    init = torch.tensor([[0.5, -0.5, 0.5]])
    CEM(CEMConfig(samples=2000, iterations=1, topk=10, init_std=[0.01, 0.02, 0.03])).solve(
        cost, space, init=init, generator=gen())
    c = first[0]
    assert torch.allclose(c.mean(0), init, atol=3e-3)
    assert torch.allclose(c.std(0), torch.tensor([[0.01, 0.02, 0.03]]), rtol=0.1)


def test_mppi_weights():
    w = mppi_weights(torch.tensor([1.0, 2.0, 3.0]), temperature=1.0)
    assert torch.allclose(w, torch.softmax(torch.tensor([-1.0, -2.0, -3.0]), 0))
    assert mppi_weights(torch.tensor([0.0, 1.0]), temperature=1e-4)[0] == pytest.approx(1.0)


def test_shift_plan():
    space = PlanSpace([-1.0, 0.0], [1.0, 2.0], 3, pinned={})
    plan = torch.tensor([[0.1, 0.5], [0.2, 0.6], [0.3, 0.7]])
    out = shift_plan(plan, space, 1)
    assert torch.equal(out, torch.tensor([[0.2, 0.6], [0.3, 0.7], [0.0, 1.0]]))
    assert torch.equal(shift_plan(plan, space, 5), space.center())


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="inverted"):
        PlanSpace([0.0, 1.0], [1.0, 0.5], 2)
    with pytest.raises(ValueError, match="same length"):
        PlanSpace([0.0], [1.0, 2.0], 2)
    with pytest.raises(ValueError, match="outside its bounds"):
        PlanSpace([0.0], [1.0], 2, pinned={0: 2.0})
    space = PlanSpace.symmetric(1.0, A, H)
    with pytest.raises(ValueError, match="NaN"):
        shift_plan(torch.tensor([[math.nan, 0, 0], [0, 0, 0]]), space)
    with pytest.raises(ValueError, match=r"\[H, A\]"):
        CEM(CEMConfig()).solve(quadratic(TARGET), space, init=torch.zeros(H, A + 1))
    with pytest.raises(ValueError, match="NaN/inf for"):
        CEM(CEMConfig(samples=8, topk=2)).solve(lambda a: torch.full((a.shape[0],), math.nan), space)
    with pytest.raises(ValueError, match="energies"):
        CEM(CEMConfig(samples=8, topk=2)).solve(lambda a: a.sum(-1), space)
    with pytest.raises(ValueError, match="differentiable"):
        GradientSolver(GradientConfig(iterations=2)).solve(lambda a: a.detach().sum((1, 2)), space)
    with pytest.raises(ValueError, match="topk"):
        CEMConfig(samples=10, topk=20)


def test_registry_and_yaml_configs():

    assert isinstance(build_solver("mppi"), MPPI)
    with pytest.raises(ValueError, match="unknown solver"):
        build_solver("nope")
    with pytest.raises(TypeError, match="CEMConfig"):
        build_solver("cem", MPPIConfig())
    root = REPO_ROOT / "configs" / "plan" / "solvers"
    kinds = {p.stem: type(load_solver(p)).__name__ for p in sorted(root.glob("*.yaml"))}
    assert kinds == {"cem": "CEM", "cem_released": "CEM", "gradient": "GradientSolver", "icem": "ICEM",
                     "mppi": "MPPI"}
    released = load_solver(root / "cem_released.yaml", ["cem.topk=12"])
    assert (released.config.samples, released.config.iterations, released.config.topk) == (800, 10, 12)
    assert isinstance(solver_from_config(SolverConfig(name="gradient")), GradientSolver)
    with pytest.raises(ValueError, match="cem.smaples|smaples"):
        load_solver(root / "cem.yaml", ["cem.smaples=3"])


def test_icem_is_seeded_and_its_population_decays():
    space = PlanSpace.symmetric(0.5, A, 4)
    sizes = []

    def cost(a):
        sizes.append(a.shape[0])
        return quadratic(torch.zeros(4, A))(a)

    solver = ICEM(ICEMConfig(samples=100, iterations=4, topk=10, decay=2.0, add_mean=True, shift_elites=False))
    r1 = solver.solve(cost, space, generator=gen(3))
    assert sizes == [100, 50, 25, 20 + 1, 1]   # decayed, floored at 2 * topk, the mean added last, the plan
    r2 = solver.solve(quadratic(torch.zeros(4, A)), space, generator=gen(3))
    r3 = solver.solve(quadratic(torch.zeros(4, A)), space, generator=gen(4))
    assert torch.equal(r1.plan, r2.plan) and r1.energies == r2.energies and not torch.equal(r1.plan, r3.plan)
    assert r1.evaluations == sum(sizes)


def test_colored_noise_is_unit_variance_and_temporally_correlated():
    white = colored_noise(4000, 16, 2, 0.0, gen(0), torch.device("cpu"))
    red = colored_noise(4000, 16, 2, 2.0, gen(0), torch.device("cpu"))
    assert red.shape == (4000, 16, 2)
    for x in (white, red):
        assert x.std().item() == pytest.approx(1.0, abs=0.1)

    def lag1(x):
        return float(torch.corrcoef(torch.stack([x[:, :-1].flatten(), x[:, 1:].flatten()]))[0, 1])

    assert abs(lag1(white)) < 0.05 and lag1(red) > 0.5
    assert torch.equal(colored_noise(3, 1, 2, 2.0, gen(1), torch.device("cpu")),
                       torch.randn((3, 1, 2), generator=gen(1)))   # horizon 1: white


def test_icem_keeps_elites_across_iterations_and_shifts_them_to_the_next_mpc_step():
    space = PlanSpace.symmetric(1.0, 2, 3, pinned={1: 0.0})
    target = torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.25, 0.0]])
    seen = []

    def cost(a):
        seen.append(a.clone())
        return quadratic(target)(a)

    solver = ICEM(ICEMConfig(samples=60, iterations=3, topk=10, keep_elites=0.5, add_mean=False))
    solver.reset()
    res = solver.solve(cost, space, generator=gen(0))
    assert all((c[..., 1] == 0).all() for c in seen)                  # pins hold in every candidate
    kept = solver._carried
    assert kept.shape == (5, 3, 2)                                     # half of the 10 elites
    solver.shift(1)
    shifted = solver._carried
    torch.testing.assert_close(shifted[:, :2], kept[:, 1:])            # dropped the executed step ...
    assert (shifted[:, 2] == space.center()[0]).all()                  # ... padded with the centre
    seen.clear()
    warm = solver.solve(cost, space, init=shift_plan(res.plan, space, 1), generator=gen(1))
    first = seen[0]
    assert first.shape[0] == 60 + 5                                    # the carried elites are re-scored
    torch.testing.assert_close(first[-5:], space.project(shifted))
    assert warm.energy <= float(cost(space.project(shift_plan(res.plan, space, 1))[None])[0]) + 1e-3
    solver.reset()
    seen.clear()
    solver.solve(cost, space, generator=gen(2))
    assert seen[0].shape[0] == 60                                      # a new episode carries nothing


def test_icem_warm_start_centres_the_first_samples_and_it_stops_early_once_converged():
    space = PlanSpace.symmetric(1.0, A, 1)
    first = []

    def cost(a):
        first.append(a.clone())
        return a.pow(2).flatten(1).sum(1)

    init = torch.tensor([[0.5, -0.5, 0.5]])
    ICEM(ICEMConfig(samples=2000, iterations=1, topk=10, init_std=[0.01, 0.02, 0.03], add_mean=False)).solve(
        cost, space, init=init, generator=gen())
    assert torch.allclose(first[0].mean(0), init, atol=3e-3)
    solver = ICEM(ICEMConfig(samples=100, iterations=20, topk=10, converge_spread=0.05))
    res = solver.solve(quadratic(torch.full((1, A), 0.2)), space, generator=gen())
    assert len(res.energies) < 20 and res.confidence.elite_spread < 0.05
    with pytest.raises(ValueError, match="decay"):
        ICEMConfig(decay=0.5)


def test_confidence_says_how_converged_and_how_distinct_the_plan_is():
    space = PlanSpace.symmetric(1.0, A, H)
    sharp = CEM(CEMConfig(samples=200, iterations=8, topk=10)).solve(quadratic(TARGET), space, generator=gen())
    flat = CEM(CEMConfig(samples=200, iterations=8, topk=10)).solve(lambda a: torch.zeros(a.shape[0]), space,
                                                                    generator=gen())
    assert sharp.confidence.elite_spread < 0.2 < flat.confidence.elite_spread
    assert sharp.confidence.energy_gap > 0 and flat.confidence.energy_gap == 0.0

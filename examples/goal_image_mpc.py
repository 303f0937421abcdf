"""Goal-image MPC on the simulated Fetch arm with a trained world model — or on your own env.

    python examples/goal_image_mpc.py --world-model runs/demo/ac/world_model.pt --episodes 5
    python examples/goal_image_mpc.py --tiny     # random tiny world model, 1 short episode (API tour)

Any environment that follows ``planners.protocol.GoalEnv`` (gymnasium API + image/state/goal_image/
is_success/distance_to_goal) can replace ``FetchEnv`` below, including a driver for a real arm.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from eval.envs.fetch import FetchEnv
from jepa.world_model import WorldModel, load_world_model
from planners import CEM, CEMConfig, MPCConfig, Objective, ObjectiveConfig, plan_space_for_env, run_episode


def tiny_world_model(image_size: int) -> WorldModel:
    """An untrained world model of the demo's shape (for trying the API; it will not reach goals)."""
    from jepa.models.ac_predictor import ActionConditionedPredictor
    from jepa.models.vit import VisionTransformer

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=image_size, patch_size=8, num_frames=2, embed_dim=64, depth=2, num_heads=4)
    grid = (image_size // 8, image_size // 8)
    pred = ActionConditionedPredictor(64, grid, 64, 2, 4, action_dim=4, state_dim=4, predict_residual=True,
                                      zero_init_output=True)
    return WorldModel(enc, pred, {"kind": "additive", "scale": [0.05, 0.05, 0.05, 0.0]}, image_size).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world-model", help="world_model.pt written by `jepa train-ac` (or `jepa demo`)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=20, help="env-step budget per episode")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--seed", type=int, default=100_000, help="first env seed (held-out goals)")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    if args.tiny:
        world_model, args.episodes, args.max_steps, args.samples, args.iterations = tiny_world_model(32), 1, 2, 16, 1
    elif args.world_model:
        world_model = load_world_model(args.world_model)
    else:
        p.error("give --world-model or --tiny")

    env = FetchEnv("reach", image_size=world_model.image_size)
    space = plan_space_for_env(env, horizon=1, pinned={3: 0.0})  # xyz deltas searched, gripper held at 0
    solver = CEM(CEMConfig(samples=args.samples, iterations=args.iterations, topk=min(20, args.samples // 2),
                           momentum_mean=0.0, momentum_std=0.0, init_std=[0.7]))
    objective = Objective(ObjectiveConfig(distance="l1"))  # mean |z_pred - z_goal| over all tokens
    successes = 0
    for i in range(args.episodes):
        rec = run_episode(env, world_model, solver, space, objective, MPCConfig(max_steps=args.max_steps),
                          seed=args.seed + i, episode=i)
        successes += rec.success
        print(f"episode {i}: success={rec.success} steps={rec.env_steps} distance {rec.initial_distance:.3f} -> "
              f"{rec.final_distance:.3f} m, {rec.mean_plan_time_s:.3f} s per action")
    print(f"success rate {successes}/{args.episodes}; mean energy of the last plan "
          f"{np.mean([s.energy for s in rec.steps]):.4f}")
    env.close()


if __name__ == "__main__":
    main()

"""Does each world model's frozen encoder see the object? Ridge probes (:mod:`eval.probes.state_probe`)
from its tokens to the object's pose and to the agent's state, against the same probe on raw pixels.

    python benchmarks/state_probe.py --env pusht --train RUN/pusht/seed0/clips \\
        --test RUN/pusht/seed0/eval_clips RUN/pusht/seed0/ac/world_model.pt RUN/pusht/seed0/ac-random/world_model.pt

Prints one JSON line per encoder (and one for ``pixels``): test R^2 per target column (PushT object:
x, y, sin, cos of the block; FetchPush object: x, y; agent: the recorded state) and their means.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from eval.envs.registry import make_env
from eval.probes.state_probe import encoder_features, object_reader, pixel_features, ridge_probe, sample_frames
from jepa.world_model import load_world_model

ANGLE_COLUMNS = {"pusht": (2,)}  # block_pose() = (x, y, angle)


def probe_all(x_train: np.ndarray, x_test: np.ndarray, train, test) -> dict:
    out = {}
    for name in ("object", "agent"):
        res = ridge_probe(x_train, train.targets[name], x_test, test.targets[name])
        out[name] = {"r2": [round(v, 4) for v in res["r2"]], "mean_r2": round(float(np.nanmean(res["r2"])), 4),
                     "lambda": res["lambda"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("world_models", nargs="+", help="world_model.pt files (their frozen encoders are probed)")
    p.add_argument("--env", required=True, help="the env the datasets were collected in (restores sim states)")
    p.add_argument("--train", required=True, help="trajectory dataset the probes are fitted on")
    p.add_argument("--test", required=True, help="trajectory dataset they are scored on")
    p.add_argument("--every", type=int, default=5, help="probe every k-th frame of each episode")
    p.add_argument("--max-frames", type=int, default=3000)
    args = p.parse_args()
    env = make_env(args.env)
    env.reset(seed=0)
    read = object_reader(env, ANGLE_COLUMNS.get(args.env, ()))
    train = sample_frames(args.train, args.every, args.max_frames, read)
    test = sample_frames(args.test, args.every, args.max_frames, read)
    env.close()
    base = {"frames": [len(train.frames), len(test.frames)]}
    print(json.dumps({"encoder": "pixels (16x16 RGB)", **base,
                      **probe_all(pixel_features(train.frames), pixel_features(test.frames), train, test)}), flush=True)
    for path in args.world_models:
        wm = load_world_model(path)
        t0 = time.perf_counter()
        with torch.no_grad():
            x_train, x_test = encoder_features(wm.encode, train.frames), encoder_features(wm.encode, test.frames)
        print(json.dumps({"encoder": path, **base, "encode_s": round(time.perf_counter() - t0, 1),
                          **probe_all(x_train, x_test, train, test)}), flush=True)


if __name__ == "__main__":
    main()

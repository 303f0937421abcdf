"""``jepa export WORLD_MODEL --format onnx|torch-export --out DIR``: deployable files of a world model.

Writes ``DIR/encoder.{onnx,pt2}`` (normalised images ``[B, 3, T, S, S]`` -> layer-normed tokens
``[B, N, D]``), ``DIR/predictor_step.{onnx,pt2}`` (one action-conditioned predictor step with its KV
cache as explicit inputs and outputs) and ``DIR/model.json`` (inputs, outputs, shapes,
preprocessing, the rollout recipe and the measured parity with the eager model).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from jepa.export.write import FORMATS, ExportError, export_world_model


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa export", description=__doc__.splitlines()[0])
    p.add_argument("world_model", type=Path, help="a world-model checkpoint written by `jepa train-ac`")
    p.add_argument("--format", choices=FORMATS, default="onnx")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset")
    p.add_argument("--no-verify", action="store_true", help="skip running the files against the eager model")
    return p


def main(argv: Sequence[str]) -> int:
    from jepa.world_model import load_world_model

    args = _parser().parse_args(list(argv))
    model = load_world_model(args.world_model, device="cpu")
    try:
        result = export_world_model(model, args.out, args.format, args.opset, verify=not args.no_verify)
    except ExportError as e:
        print(f"error: {e}")
        return 1
    for graph in ("encoder", "predictor_step"):
        sig = result.spec[graph]
        ins = ", ".join(f"{i['name']} {i['shape']}" for i in sig["inputs"])
        outs = ", ".join(f"{o['name']} {o['shape']}" for o in sig["outputs"])
        print(f"{result.file(graph)}: {ins} -> {outs}")
    parity = result.spec.get("parity")
    if parity and "skipped" not in parity:
        print(f"parity with the eager model (random inputs): encoder max |diff| {parity['encoder_max_abs']:.2e}, "
              f"{parity['rollout_steps']}-step rollout max |diff| {parity['rollout_max_abs']:.2e}")
    elif parity:
        print(f"parity not checked: {parity['skipped']}")
    print(f"description: {result.folder / 'model.json'}")
    return 0

"""Write an exported world model: ``encoder.{onnx,pt2}``, ``predictor_step.{onnx,pt2}`` and ``model.json``.

Both graphs are traced once with ``torch.export`` (batch size and cache length symbolic), then saved
as a ``torch.export`` program (``.pt2``, :func:`torch.export.load`) or converted to ONNX
(``torch.onnx``'s exporter, opset 18 by default). ``model.json`` describes every input and output
(names, shapes with symbolic ``batch`` / ``past`` sizes, dtypes), the preprocessing of camera images
and how to roll the predictor out. After writing, the files are run (onnxruntime or
``torch.export.load``) on random inputs, including a 3-step rollout from an empty cache, and the
largest differences from the eager model are recorded under ``parity``.

An op that cannot be exported raises :class:`ExportError` naming the graph, the stage (tracing or
ONNX conversion) and the exporter's own message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from jepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from jepa.export.graphs import EncoderGraph, cache_shape, step_graph
from jepa.world_model import WorldModel

FORMATS = ("onnx", "torch-export")
SPEC_FORMAT = "jepa-world-model-export"
SPEC_VERSION = 1
SUFFIX = {"onnx": ".onnx", "torch-export": ".pt2"}


class ExportError(RuntimeError):
    """A graph of the world model could not be exported (the message names the graph and the op)."""


@dataclass
class ExportResult:
    folder: Path
    spec: dict

    def file(self, graph: str) -> Path:
        return self.folder / self.spec["files"][graph]


def _brief(e: BaseException, limit: int = 900) -> str:
    """The root cause's type and first lines (exporter messages can be pages long; the root names the op)."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # exporters colour their messages
    text = " | ".join([line.strip() for line in text.splitlines() if line.strip()][:6])
    return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _io(name: str, shape: list, dtype: str = "float32", doc: str = "") -> dict:
    return {"name": name, "shape": shape, "dtype": dtype, **({"doc": doc} if doc else {})}


def graph_signatures(model: WorldModel) -> dict[str, dict[str, list[dict]]]:
    """Inputs and outputs of both graphs; ``batch``, ``past`` are symbolic sizes."""
    enc, pred = model.encoder, model.predictor
    s, d = model.image_size, enc.embed_dim
    hw = pred.tokens_per_frame
    t = enc.tubelet_size if enc.is_video else 1
    clip = ["batch", 3, t, s, s] if enc.is_video else ["batch", 3, s, s]
    n = (t // enc.tubelet_size if enc.is_video else 1) * (s // enc.patch_size) ** 2
    layers, _, heads, _, head_dim = cache_shape(pred, 1, 0)
    cache_in, cache_out = [layers, "batch", heads, "past", head_dim], [layers, "batch", heads,
                                                                     f"past + {pred.tokens_per_step}", head_dim]
    step_in = [_io("frame", ["batch", hw, d], doc="layer-normed frame tokens of this step"),
               _io("action", ["batch", pred.action_dim]), _io("state", ["batch", pred.state_dim])]
    if pred.use_extrinsics:
        step_in.append(_io("extrinsics", ["batch", pred.arch["extrinsics_dim"]]))
    step_in += [_io("past_keys", cache_in, doc="cache of the earlier steps; past = 0 at the first step"),
                _io("past_values", cache_in)]
    return {
        "encoder": {"inputs": [_io("clip", clip, doc="normalised image(s), see preprocessing")],
                    "outputs": [_io("tokens", ["batch", n, d], doc="layer-normed (no affine), as WorldModel.encode")]},
        "predictor_step": {"inputs": step_in,
                           "outputs": [_io("next_frame", ["batch", hw, d], doc="layer-normed prediction of the "
                                           "next frame's tokens"), _io("keys", cache_out), _io("values", cache_out)]},
    }


def describe(model: WorldModel, fmt: str, files: dict[str, str], opset: int | None) -> dict:
    """The ``model.json`` content (without ``parity``)."""
    enc, pred = model.encoder, model.predictor
    layers, _, heads, _, head_dim = cache_shape(pred, 1, 0)
    frames = enc.tubelet_size if enc.is_video else 1
    return {
        "format": SPEC_FORMAT, "version": SPEC_VERSION, "export_format": fmt, "torch_version": torch.__version__,
        **({"opset": opset} if fmt == "onnx" else {}),
        "files": files, **graph_signatures(model),
        "preprocessing": {
            "input": "RGB images, uint8 [H, W, 3]",
            "steps": ["to float32, divide by 255", "per channel: subtract mean, divide by std",
                      f"bilinear resize to {model.image_size} x {model.image_size} (align_corners=false, no "
                      "antialias) when the size differs", "HWC -> CHW",
                      *([f"repeat the image {frames} times along a new time axis after the channels: "
                         f"[3, {frames}, S, S]"] if enc.is_video else []), "stack images into a batch"],
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "image_size": model.image_size,
        },
        "rollout": {
            "tokens_per_step": pred.tokens_per_step, "frame_tokens": pred.tokens_per_frame, "layers": layers,
            "heads": heads, "head_dim": head_dim, "state_update": model.state_update_spec,
            "recipe": ["z = encoder(preprocess(image)); keys, values = zeros [layers, B, heads, 0, head_dim]",
                       "per action a_t: z, keys, values = predictor_step(z, a_t, s_t, keys, values); "
                       "s_{t+1} = state_update(s_t, a_t)",
                       "additive state update: s + scale * a[:len(scale)] per dimension"],
        },
        "model": {"encoder_arch": enc.arch, "predictor_arch": pred.arch, "image_size": model.image_size},
    }


def _examples(model: WorldModel, batch: int = 2) -> dict[str, tuple[Tensor, ...]]:
    """Random example inputs (batch 2 and a 2-step cache, so neither size is specialised away)."""
    enc, pred = model.encoder, model.predictor
    s, d, dev = model.image_size, enc.embed_dim, model.device
    clip = torch.randn(batch, 3, enc.tubelet_size, s, s) if enc.is_video else torch.randn(batch, 3, s, s)
    step = [torch.randn(batch, pred.tokens_per_frame, d), torch.rand(batch, pred.action_dim) * 2 - 1,
            torch.randn(batch, pred.state_dim)]
    if pred.use_extrinsics:
        step.append(torch.randn(batch, pred.arch["extrinsics_dim"]))
    shape = cache_shape(pred, batch, 2 * pred.tokens_per_step)
    step += [torch.randn(shape), torch.randn(shape)]
    return {"encoder": (clip.to(dev),), "predictor_step": tuple(t.to(dev) for t in step)}


def _dynamic_shapes(model: WorldModel) -> dict[str, tuple]:
    batch = torch.export.Dim("batch", min=1, max=65536)
    past = torch.export.Dim("past", min=0, max=1 << 20)
    step = [{0: batch}] * (4 if model.predictor.use_extrinsics else 3) + [{1: batch, 3: past}] * 2
    return {"encoder": ({0: batch},), "predictor_step": tuple(step)}


def trace(graph: str, module: nn.Module, args: tuple[Tensor, ...], dynamic_shapes: tuple):
    """``torch.export`` program of ``module``, or :class:`ExportError` naming ``graph``."""
    try:
        return torch.export.export(module.eval(), args, dynamic_shapes=dynamic_shapes, strict=False)
    except Exception as e:  # the exporter raises many types (UserError, GuardOnDataDependentSymNode, ...)
        raise ExportError(f"cannot export the {graph} with torch.export (tracing failed): {_brief(e)}") from e


def _save_onnx(graph: str, program, path: Path, names: dict[str, list[dict]], opset: int) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise ExportError("ONNX export needs the packages onnx and onnxscript: pip install onnx onnxscript") from None
    try:
        torch.onnx.export(program, f=str(path), input_names=[i["name"] for i in names["inputs"]],
                          output_names=[o["name"] for o in names["outputs"]], opset_version=opset, dynamo=True,
                          external_data=False, verbose=False)
    except Exception as e:
        raise ExportError(f"cannot convert the {graph} to ONNX (opset {opset}): {_brief(e)}") from e


def export_world_model(model: WorldModel, out_dir: str | Path, fmt: str = "onnx", opset: int = 18,
                       verify: bool = True) -> ExportResult:
    """Export ``model`` (on the CPU) into ``out_dir``; see the module docstring."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {FORMATS}")
    if model.device.type != "cpu":
        raise ValueError(f"export a world model on the CPU (it is on {model.device}): load_world_model(path, 'cpu')")
    model = model.eval()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    graphs = {"encoder": EncoderGraph(model.encoder), "predictor_step": step_graph(model.predictor)}
    examples, shapes, sigs = _examples(model), _dynamic_shapes(model), graph_signatures(model)
    files = {}
    with torch.no_grad():
        for name, module in graphs.items():
            program = trace(name, module, examples[name], shapes[name])
            files[name] = f"{name}{SUFFIX[fmt]}"
            if fmt == "onnx":
                _save_onnx(name, program, folder / files[name], sigs[name], opset)
            else:
                torch.export.save(program, str(folder / files[name]))
    spec = describe(model, fmt, files, opset if fmt == "onnx" else None)
    _write_spec(folder, spec)
    if verify:
        spec["parity"] = parity(model, folder)
        _write_spec(folder, spec)
    return ExportResult(folder, spec)


def _write_spec(folder: Path, spec: dict) -> None:
    from jepa.checkpoints import atomic_write

    text = json.dumps(spec, indent=1).encode()
    atomic_write(folder / "model.json", lambda f: f.write(text))


@torch.no_grad()
def parity(model: WorldModel, folder: str | Path, batch: int = 3, steps: int = 3, seed: int = 0) -> dict:
    """Largest absolute differences between the exported files and the eager model on random inputs:
    the encoder, and a ``steps``-step rollout from an empty cache (each step's prediction and the final
    cache). Skipped, with the reason, when the runtime for the format is not installed."""
    from jepa.export.runtime import ExportedWorldModel, RuntimeMissing
    from jepa.models.vit import feature_layer_norm

    try:
        exported = ExportedWorldModel(folder)
    except RuntimeMissing as e:
        return {"skipped": str(e)}
    gen = torch.Generator().manual_seed(seed)
    enc, pred = model.encoder, model.predictor
    s = model.image_size
    clip = torch.randn((batch, 3, enc.tubelet_size, s, s) if enc.is_video else (batch, 3, s, s), generator=gen)
    z0 = feature_layer_norm(torch.randn(batch, pred.tokens_per_frame, enc.embed_dim, generator=gen))
    state0 = torch.randn(batch, pred.state_dim, generator=gen)
    actions = torch.rand(batch, steps, pred.action_dim, generator=gen) * 2 - 1
    enc_err = (exported.encode(clip) - EncoderGraph(enc)(clip)).abs().max()
    z_ref, s_ref = model.rollout(z0, state0, actions)
    z_exp, s_exp = exported.rollout(z0, state0, actions)
    return {"encoder_max_abs": float(enc_err), "rollout_max_abs": float((z_exp - z_ref).abs().max()),
            "rollout_steps": steps, "batch": batch, "inputs": "random normal clip and tokens, uniform actions"}

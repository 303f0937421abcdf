"""Run an exported world model folder (``model.json`` + two graphs) like a :class:`~jepa.world_model.WorldModel`.

ONNX files run on onnxruntime's CPU provider; ``torch-export`` files through
:func:`torch.export.load`. This is the Python reference of what an edge runtime does with the files:
``encode`` an image batch, then ``rollout`` actions through the step graph, feeding each predicted
frame and the returned cache back in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from jepa.export.write import SPEC_FORMAT, SPEC_VERSION
from jepa.world_model import build_state_update


class RuntimeMissing(ImportError):
    """The runtime for an exported format is not installed."""


def read_spec(folder: str | Path) -> dict:
    """``model.json`` of an exported folder, checked for its format and version."""
    path = Path(folder) / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; export a world model with `jepa export`")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if spec.get("format") != SPEC_FORMAT or spec.get("version") != SPEC_VERSION:
        raise ValueError(f"{path}: not a {SPEC_FORMAT} v{SPEC_VERSION} description "
                         f"(format {spec.get('format')!r}, version {spec.get('version')!r})")
    return spec


class ExportedWorldModel:
    """``encode(clip)`` and ``rollout(z0, state0, actions)`` through the exported graphs (CPU).

    Args:
        folder: a folder written by :func:`jepa.export.write.export_world_model`.
        threads: intra-op threads of the onnxruntime sessions (None: onnxruntime's default).
    """

    def __init__(self, folder: str | Path, threads: int | None = 1) -> None:
        self.folder = Path(folder)
        self.spec = read_spec(self.folder)
        self.format = self.spec["export_format"]
        self.state_update = build_state_update(self.spec["rollout"]["state_update"])
        self._names = {g: [i["name"] for i in self.spec[g]["inputs"]] for g in ("encoder", "predictor_step")}
        self._graphs = {g: self._load(g, threads) for g in ("encoder", "predictor_step")}

    def _load(self, graph: str, threads: int | None):
        path = self.folder / self.spec["files"][graph]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (listed in {self.folder / 'model.json'})")
        if self.format == "torch-export":
            return torch.export.load(str(path)).module()
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeMissing("running ONNX files needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, graph: str, *inputs: Tensor) -> list[Tensor]:
        """The outputs of ``graph`` ("encoder" or "predictor_step") on float32 CPU tensors."""
        if self.format == "torch-export":
            out = self._graphs[graph](*inputs)
            return list(out) if isinstance(out, (tuple, list)) else [out]
        feed = {name: t.detach().cpu().float().numpy() for name, t in zip(self._names[graph], inputs)}
        return [torch.from_numpy(o) for o in self._graphs[graph].run(None, feed)]

    def encode(self, clip: Tensor) -> Tensor:
        """Normalised ``clip [B, 3, T, S, S]`` -> layer-normed tokens ``[B, N, D]``."""
        return self.run("encoder", clip)[0]

    def empty_cache(self, batch: int) -> tuple[Tensor, Tensor]:
        r = self.spec["rollout"]
        shape = (r["layers"], batch, r["heads"], 0, r["head_dim"])
        return torch.zeros(shape), torch.zeros(shape)

    def rollout(self, z0: Tensor, state0: Tensor, actions: Tensor,
                extrinsics: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``z0 [B, hw, D]``, ``state0 [B, S]``, ``actions [B, H, A]`` -> ``(z [B, H, hw, D], states [B, H, S])``,
        as :meth:`WorldModel.rollout`; ``extrinsics [B, H, E]`` for a predictor that takes them."""
        keys, values = self.empty_cache(z0.shape[0])
        z, state = z0, state0
        zs, states = [], []
        for h in range(actions.shape[1]):
            extra = (extrinsics[:, h],) if extrinsics is not None else ()
            z, keys, values = self.run("predictor_step", z, actions[:, h], state, *extra, keys, values)
            state = self.state_update(state, actions[:, h])
            zs.append(z)
            states.append(state)
        return torch.stack(zs, 1), torch.stack(states, 1)

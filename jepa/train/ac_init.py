"""Fine-tuning an AC predictor on a new embodiment: ``model.init_from`` and ``optimization.freeze``.

``model.init_from`` names a world model: a ``world_model.pt`` of ``jepa train-ac``, an official V-JEPA 2-AC
file, or a released name (``vjepa2-ac-vitg``, read from ``$JEPA_HOME``). The new world model takes

- the source's frozen encoder (the predictor was trained on its features), so ``model.encoder`` and
  ``model.encoder_key`` are not read;
- the source predictor's architecture (width, depth, heads, MLP ratio, residual output, extrinsics),
  so ``model.embed_dim/depth/num_heads/mlp_ratio/predict_residual`` are not read, with the action and
  state dims of the new data;
- every source tensor whose name and shape match. A module with any tensor that does not match (the
  action encoder of a 6-D arm, given a 7-D source) keeps its fresh initialisation as a whole, weight
  and bias together. :class:`InitReport` lists what was kept and what was re-initialised.

``optimization.freeze`` lists predictor blocks by index (``0``, ``-1`` = the last) or parameters by
name prefix at dot boundaries (``predictor_embed``, ``predictor_blocks.3.attn``); each entry must match
at least one parameter. Frozen parameters get ``requires_grad=False`` and stay out of the optimizer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from jepa.config import ConfigError
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.world_model import WorldModel, load_world_model


@dataclass
class InitReport:
    """What ``model.init_from`` did: the source, the tensors copied from it, those re-initialised, and
    (filled in by the trainer) the frozen parameters."""

    source: str
    kept: list[str]
    reinitialised: list[str]
    frozen: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        modules = sorted({k.rsplit(".", 1)[0] for k in self.reinitialised})
        return (f"init_from {self.source}: kept {len(self.kept)} tensors, re-initialised {len(self.reinitialised)} "
                f"({', '.join(modules) or 'none'}); frozen {len(self.frozen)} parameters")


def transfer_matching(target: nn.Module, source_state: Mapping[str, Tensor]) -> tuple[list[str], list[str]]:
    """Copy into ``target`` every tensor of ``source_state`` whose module matches in every name and shape.

    Returns ``(kept, reinitialised)`` tensor names of ``target``; a module (``a.b`` of ``a.b.weight``)
    with a missing or mis-shaped tensor keeps the target's own values for all its tensors.
    """
    own = target.state_dict()

    def module(key: str) -> str:
        return key.rsplit(".", 1)[0]

    mismatched = {module(k) for k, v in own.items() if k not in source_state or source_state[k].shape != v.shape}
    kept = [k for k in own if module(k) not in mismatched]
    with torch.no_grad():
        for k in kept:
            own[k].copy_(source_state[k])
    return kept, [k for k in own if k not in kept]


def init_world_model(source: str, device: torch.device, action_dim: int, state_dim: int, state_update: dict,
                     normalization: dict | None = None, zero_init_output: bool = False,
                     frame_step: int = 1) -> tuple[WorldModel, InitReport]:
    """A world model for new ``action_dim``/``state_dim`` data, started from the world model ``source``."""
    src = load_world_model(source, device=device)
    arch = {**src.predictor.arch, "action_dim": action_dim, "state_dim": state_dim}
    predictor = ActionConditionedPredictor(**arch, zero_init_output=zero_init_output).to(device)
    kept, reinit = transfer_matching(predictor, src.predictor.state_dict())
    world = WorldModel(src.encoder, predictor, state_update, src.image_size, normalization, frame_step).to(device)
    return world, InitReport(str(source), kept, reinit)


def freeze_parameters(predictor: ActionConditionedPredictor, entries: Sequence[str | int]) -> list[str]:
    """Freeze the parameters ``entries`` select (see the module docstring); returns their names."""
    names = [n for n, _ in predictor.named_parameters()]
    depth = len(predictor.predictor_blocks)
    chosen: set[str] = set()
    for entry in entries:
        text = str(entry).strip()
        if re.fullmatch(r"-?\d+", text):
            i = int(text)
            if not -depth <= i < depth:
                raise ConfigError(f"optimization.freeze: block {i} does not exist (the predictor has blocks 0.."
                                 f"{depth - 1})")
            prefix = f"predictor_blocks.{i % depth}"
        else:
            prefix = text.rstrip(".")
        hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({n.split(".")[0] for n in names})
            raise ConfigError(f"optimization.freeze: {text!r} matches no predictor parameter; give a block index "
                             f"(0..{depth - 1}) or a name prefix such as {tops}")
        chosen.update(hits)
    for n, p in predictor.named_parameters():
        if n in chosen:
            p.requires_grad_(False)
    return [n for n in names if n in chosen]

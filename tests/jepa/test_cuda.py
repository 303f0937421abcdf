"""The CUDA paths, run only where a GPU is present (``pytest -m gpu``; skipped elsewhere).

SDPA kernels (block-causal mask, KV cache, the flash kernel in bf16), bf16 autocast in world-model
rollouts, in the AC and pretraining steps and in feature extraction, the released loader on a GPU,
and ``torch.compile`` in pretraining. Each test compares against the fp32 CPU result of the same
weights and data, and checks that the fast path was really taken (bf16 activations under autocast,
a compiled module), so a broken CUDA path fails rather than silently falling back.
"""

import copy
import json

import numpy as np
import pytest
import torch

from jepa.config import load_config
from jepa.features import embed_videos
from jepa.hub import BACKBONES, BackboneSpec, export_backbone
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import VisionTransformer
from jepa.released import WORLD_MODELS, WorldModelSpec
from jepa.train import ac
from jepa.train import pretrain as pt
from jepa.world_model import WorldModel, load_world_model
from tests.helpers import (
    make_world_model,
    write_lerobot_dataset,
    write_moving_bars,
    write_official_ac_checkpoint,
    write_video,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")
BF16_TOL = 5e-2  # relative L2 error of a bf16 result against fp32; a broken kernel is off by O(1)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def record_dtype(module: torch.nn.Module, out: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda m, i, o: out.append(o.dtype))


def test_sdpa_with_the_block_causal_mask_and_the_kv_cache_matches_the_cpu():
    torch.manual_seed(0)
    pred = ActionConditionedPredictor(64, (4, 4), predictor_embed_dim=128, depth=2, num_heads=2, action_dim=4,
                                      state_dim=4).eval()
    frames, actions, states = torch.randn(2, 3 * 16, 64), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    gpu = copy.deepcopy(pred).to(CUDA)
    with torch.no_grad():
        ref = pred(frames, actions, states)
        full = gpu(frames.to(CUDA), actions.to(CUDA), states.to(CUDA))
        cache = gpu.new_cache()
        steps = [gpu.forward_step(frames[:, 16 * t : 16 * (t + 1)].to(CUDA), actions[:, t].to(CUDA),
                                  states[:, t].to(CUDA), cache) for t in range(3)]
    assert full.device.type == "cuda"
    torch.testing.assert_close(full.cpu(), ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.cat(steps, 1).cpu(), ref, atol=1e-4, rtol=1e-4)


def test_the_flash_kernel_takes_the_encoder_attention_in_bf16():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=64, patch_size=16, num_frames=4, embed_dim=128, depth=2, num_heads=2).eval()
    clips = torch.randn(2, 3, 4, 64, 64)
    gpu = copy.deepcopy(enc).to(CUDA)
    dtypes: list = []
    record_dtype(gpu.blocks[0].attn.qkv, dtypes)
    with torch.no_grad():
        ref = enc(clips)
        # only the flash kernel is allowed: it raises if the q/k/v layout or dtype does not suit it
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):
            out = gpu(clips.to(CUDA))
            masked = gpu(clips.to(CUDA), masks=torch.arange(0, 32, 2, device=CUDA).expand(2, -1))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert rel_err(out, ref) < BF16_TOL
    with torch.no_grad():
        ref_masked = enc(clips, masks=torch.arange(0, 32, 2).expand(2, -1))
    assert rel_err(masked, ref_masked) < BF16_TOL


def test_world_model_rollout_under_bf16_autocast_matches_fp32():
    plain = make_world_model()
    stats = {"action_mean": [0.1, 0.0, -0.1, 0.0], "action_std": [2.0, 1.0, 0.5, 1.0],
             "state_mean": [0.0, 1.0, 0.0, 0.5], "state_std": [1.0, 3.0, 1.0, 0.2]}
    wm = WorldModel(plain.encoder, plain.predictor, plain.state_update_spec, 32, stats).eval()
    gpu = copy.deepcopy(wm).to(CUDA)
    assert gpu.normalizer.action_std.device.type == "cuda" and gpu.device.type == "cuda"
    images = np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    state0, actions = torch.randn(6, 4), torch.randn(6, 3, 4)
    dtypes: list = []
    record_dtype(gpu.predictor.predictor_blocks[0].mlp.fc1, dtypes)
    with torch.no_grad():
        z0 = wm.encode(images).expand(6, -1, -1)
        z_ref, s_ref = wm.rollout(z0, state0, actions)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            z0_gpu = gpu.encode(images).expand(6, -1, -1)
            z, s = gpu.rollout(z0_gpu, state0.to(CUDA), actions.to(CUDA))
            z_naive, _ = gpu.rollout_naive(z0_gpu, state0.to(CUDA), actions.to(CUDA))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert rel_err(z0_gpu, z0) < BF16_TOL
    assert rel_err(z, z_ref) < BF16_TOL and rel_err(z_naive, z_ref) < BF16_TOL
    torch.testing.assert_close(s.cpu(), s_ref, atol=1e-5, rtol=1e-5)  # the state update stays fp32


def test_the_released_loader_puts_the_world_model_on_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    monkeypatch.setitem(BACKBONES, "tiny-ac", BackboneSpec("tiny-ac", "tiny", 32, 2, "tiny-ac.pt", "", "URL"))
    monkeypatch.setitem(WORLD_MODELS, "tiny-ac", WorldModelSpec("tiny-ac", "tiny-ac", dict(
        predictor_embed_dim=128, depth=2, num_heads=2, action_dim=7, state_dim=7)))
    write_official_ac_checkpoint(tmp_path / "tiny-ac.pt")
    cpu, gpu = load_world_model("tiny-ac"), load_world_model("tiny-ac", device="cuda")
    assert {p.device.type for p in gpu.parameters()} == {"cuda"}
    images = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    state0, actions = torch.tensor([[0.4, 0.0, 0.2, 0.1, -0.2, 0.3, 0.5]]).expand(2, -1), 0.05 * torch.randn(2, 2, 7)
    with torch.no_grad():
        z_ref, s_ref = cpu.rollout(cpu.encode(images), state0, actions)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            z, s = gpu.rollout(gpu.encode(images), state0.to(CUDA), actions.to(CUDA))
    assert rel_err(z, z_ref) < BF16_TOL
    torch.testing.assert_close(s.cpu(), s_ref, atol=1e-5, rtol=1e-5)


def _losses(run_dir) -> list[float]:
    return [json.loads(line)["total"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ac_training_on_cuda_in_bf16_follows_the_fp32_cpu_run(tmp_path, monkeypatch):
    write_lerobot_dataset(tmp_path / "ds", version="v3.0", episodes=5, length=10, cameras=("front",))
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=48, depth=1, num_heads=3)
    encoder = export_backbone(enc, tmp_path / "encoder.safetensors")
    seen = []
    real = ac.ac_losses

    def spy(predictor, z, actions, states, k):
        seen.append((torch.is_autocast_enabled("cuda"), z.device.type, next(predictor.parameters()).device.type))
        return real(predictor, z, actions, states, k)

    monkeypatch.setattr(ac, "ac_losses", spy)

    def train(name, device):
        cfg = load_config(ac.ACConfig, None, [
            f"data.path={tmp_path / 'ds'}", "data.source=lerobot", "data.camera=front", "data.val_episodes=1",
            f"model.encoder={encoder}", "model.embed_dim=48", "model.depth=2", "model.num_heads=4",
            "optimization.batch_size=4", "optimization.max_steps=3", "optimization.lr.warmup_steps=1",
            f"meta.run_dir={tmp_path / name}", f"meta.device={device}", "meta.bf16=true", "meta.log_every=1",
            "meta.progress=false"])
        return ac.train_ac(cfg)

    _, report_cpu = train("cpu", "cpu")
    world, report_gpu = train("gpu", "cuda")
    assert seen[0] == (False, "cpu", "cpu") and seen[-1] == (True, "cuda", "cuda")
    cpu, gpu = _losses(tmp_path / "cpu"), _losses(tmp_path / "gpu")
    assert len(gpu) == 3 and all(np.isfinite(gpu))
    np.testing.assert_allclose(gpu, cpu, rtol=BF16_TOL)
    assert all(np.isfinite(v) for v in report_gpu.values()) and report_gpu.keys() == report_cpu.keys()
    saved = load_world_model(tmp_path / "gpu" / "world_model.pt")  # a GPU run's file loads on the CPU
    assert saved.normalizer.enabled and next(saved.predictor.parameters()).device.type == "cpu"


def test_pretraining_on_cuda_in_bf16_and_compiled_follows_the_fp32_cpu_run(tmp_path, monkeypatch):
    csv = write_moving_bars(tmp_path / "bars")
    seen, dtypes = [], []
    real = pt.pretrain_step

    def spy(run, batch):
        if not seen and run.device.type == "cuda" and not run.cfg.meta.compile:
            record_dtype(run.predictor.predictor_blocks[0].mlp.fc1, dtypes)
            record_dtype(run.encoder.blocks[0].mlp.fc1, dtypes)
        seen.append(run.device.type)
        return real(run, batch)

    monkeypatch.setattr(pt, "pretrain_step", spy)

    def pretrain(name, device, compile_):
        cfg = load_config(pt.PretrainConfig, None, [
            "data.source=csv", f"data.paths=[{csv}]", "data.frames_per_clip=4", "data.frame_step=1",
            "data.crop_size=32", "data.random_resize_scale=[0.8,1.0]", "model.embed_dim=48", "model.depth=2",
            "model.num_heads=3", "model.patch_size=8", "model.pred_embed_dim=32", "model.pred_depth=1",
            "model.pred_num_heads=2", "optimization.global_batch=8", "optimization.max_steps=3",
            "optimization.lr.base=1e-3", "optimization.lr.warmup_steps=1", f"meta.run_dir={tmp_path / name}",
            "meta.log_every=1", "meta.progress=false", f"meta.device={device}", "meta.bf16=true",
            f"meta.compile={str(compile_).lower()}"])
        return pt.run_pretraining(cfg)

    def losses(name):
        return [json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    pretrain("cpu", "cpu", False)
    seen.clear()
    pretrain("gpu", "cuda", False)
    compiled = pretrain("compiled", "cuda", True)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the step ran under bf16 autocast
    assert compiled.encoder._compiled_call_impl is not None and compiled.predictor._compiled_call_impl is not None
    cpu, gpu, comp = losses("cpu"), losses("gpu"), losses("compiled")
    assert len(gpu) == len(comp) == 3 and np.isfinite(gpu + comp).all()
    np.testing.assert_allclose(gpu, cpu, rtol=BF16_TOL)
    np.testing.assert_allclose(comp, gpu, rtol=BF16_TOL)


def test_bf16_feature_extraction_on_cuda_matches_fp32(tmp_path):
    from safetensors.torch import load_file

    write_video(tmp_path / "v.mp4", frames=8, h=32, w=32)
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=4, embed_dim=48, depth=2, num_heads=3).eval()
    embed_videos(enc, [tmp_path / "v.mp4"], tmp_path / "cpu", frames=4, size=32, frame_step=1)
    summary = embed_videos(copy.deepcopy(enc).to(CUDA), [tmp_path / "v.mp4"], tmp_path / "gpu", frames=4, size=32,
                           frame_step=1, device=CUDA, dtype=torch.bfloat16)
    assert len(summary.written) == 1
    ref, out = load_file(str(tmp_path / "cpu" / "v.safetensors")), load_file(str(tmp_path / "gpu" / "v.safetensors"))
    assert out["tokens"].dtype == torch.float32 and rel_err(out["tokens"], ref["tokens"]) < BF16_TOL

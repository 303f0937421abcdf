"""Export for deployment: the functional predictor step, ONNX and torch.export files, parity, errors."""

import json

import numpy as np
import pytest
import torch

from jepa.export.command import main as export_main
from jepa.export.graphs import empty_cache, step_graph
from jepa.export.runtime import ExportedWorldModel, read_spec
from jepa.export.write import ExportError, export_world_model
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.blocks import KVCache
from jepa.models.vit import feature_layer_norm
from tests.helpers import make_world_model

TOL = 1e-4


def _rollout_inputs(model, batch=2, steps=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    pred = model.predictor
    z0 = feature_layer_norm(torch.randn(batch, pred.tokens_per_frame, model.encoder.embed_dim, generator=g))
    actions = torch.rand(batch, steps, pred.action_dim, generator=g) * 2 - 1
    return z0, torch.randn(batch, pred.state_dim, generator=g), actions


@pytest.mark.parametrize("extrinsics", [False, True])
def test_the_functional_step_equals_forward_step_with_a_kv_cache(extrinsics):
    torch.manual_seed(0)
    pred = ActionConditionedPredictor(32, (4, 4), predictor_embed_dim=24, depth=2, num_heads=2, action_dim=4,
                                      state_dim=3, use_extrinsics=extrinsics).eval()
    graph = step_graph(pred)
    frames, actions, states = torch.randn(2, 3, 16, 32), torch.randn(2, 3, 4), torch.randn(2, 3, 3)
    ext = torch.randn(2, 3, 6)
    cache = pred.new_cache()
    keys, values = empty_cache(pred, 2)
    assert keys.shape == (2, 2, 2, 0, 12)
    with torch.no_grad():
        for t in range(3):
            extra = (ext[:, t],) if extrinsics else ()
            ref = pred.forward_step(frames[:, t], actions[:, t], states[:, t], cache, *extra)
            out, keys, values = graph(frames[:, t], actions[:, t], states[:, t], *extra, keys, values)
            torch.testing.assert_close(out, feature_layer_norm(ref), rtol=0, atol=1e-6)
            ref_k, ref_v = cache.to_tensors()
            assert keys.shape[3] == (t + 1) * pred.tokens_per_step
            torch.testing.assert_close(keys, ref_k, rtol=0, atol=0)
            torch.testing.assert_close(values, ref_v, rtol=0, atol=0)


def test_cache_tensors_round_trip_and_an_empty_cache_has_no_tensor_form():
    keys, values = torch.randn(3, 2, 4, 5, 8), torch.randn(3, 2, 4, 5, 8)
    cache = KVCache.from_tensors(keys, values)
    assert cache.length == 5 and len(cache.keys) == 3
    k, v = cache.to_tensors()
    assert torch.equal(k, keys) and torch.equal(v, values)
    with pytest.raises(ValueError, match="empty cache"):
        KVCache(2).to_tensors()


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    """A tiny world model exported to ONNX through the command line (one export for the module's tests)."""
    root = tmp_path_factory.mktemp("export")
    model = make_world_model()
    model.save(root / "wm.pt")
    assert export_main([str(root / "wm.pt"), "--format", "onnx", "--out", str(root / "onnx")]) == 0
    return model, root / "onnx"


def test_onnx_files_describe_themselves(onnx_export):
    model, folder = onnx_export
    spec = read_spec(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.onnx", "model.json", "predictor_step.onnx"]
    enc_in = spec["encoder"]["inputs"][0]
    assert enc_in["name"] == "clip" and enc_in["shape"] == ["batch", 3, 2, 32, 32]
    assert spec["encoder"]["outputs"][0]["shape"] == ["batch", 16, 32]
    names = [i["name"] for i in spec["predictor_step"]["inputs"]]
    assert names == ["frame", "action", "state", "past_keys", "past_values"]
    assert spec["predictor_step"]["inputs"][3]["shape"] == [2, "batch", 2, "past", 12]
    assert spec["predictor_step"]["outputs"][1]["shape"] == [2, "batch", 2, "past + 18", 12]
    assert spec["rollout"]["tokens_per_step"] == 18 and spec["rollout"]["state_update"]["kind"] == "additive"
    assert spec["preprocessing"]["mean"] == [0.485, 0.456, 0.406] and spec["preprocessing"]["image_size"] == 32
    assert spec["parity"]["encoder_max_abs"] < TOL and spec["parity"]["rollout_max_abs"] < TOL


def test_onnxruntime_matches_torch_on_the_encoder_and_a_3_step_rollout(onnx_export):
    ort = pytest.importorskip("onnxruntime")
    model, folder = onnx_export
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(folder / "predictor_step.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for batch in (1, 5):  # neither is the batch size of the trace
            clip = torch.randn(batch, 3, 2, 32, 32)
            out = enc.run(None, {"clip": clip.numpy()})[0]
            np.testing.assert_allclose(out, model.encode(clip).numpy(), rtol=0, atol=TOL)
        z0, s0, actions = _rollout_inputs(model, batch=3)
        ref, _ = model.rollout(z0, s0, actions)
    z, s = z0.numpy(), s0
    keys = values = np.zeros((2, 3, 2, 0, 12), np.float32)
    for t in range(3):
        z, keys, values = step.run(None, {"frame": z, "action": actions[:, t].numpy(), "state": s.numpy(),
                                          "past_keys": keys, "past_values": values})
        s = model.state_update(s, actions[:, t])
        np.testing.assert_allclose(z, ref[:, t].numpy(), rtol=0, atol=TOL)
        assert keys.shape == (2, 3, 2, 18 * (t + 1), 12)


def test_the_runtime_wrapper_rolls_out_like_the_world_model(onnx_export):
    pytest.importorskip("onnxruntime")
    model, folder = onnx_export
    exported = ExportedWorldModel(folder)
    z0, s0, actions = _rollout_inputs(model, batch=2, steps=4)
    with torch.no_grad():
        z_ref, s_ref = model.rollout(z0, s0, actions)
    z, s = exported.rollout(z0, s0, actions)
    torch.testing.assert_close(z, z_ref, rtol=0, atol=TOL)
    torch.testing.assert_close(s, s_ref)


def test_torch_export_files_load_and_match(tmp_path):
    model = make_world_model()
    result = export_world_model(model, tmp_path / "pt2", "torch-export")
    assert result.file("encoder").suffix == ".pt2" and result.spec["parity"]["rollout_max_abs"] < TOL
    step = torch.export.load(str(result.file("predictor_step"))).module()
    z0, s0, actions = _rollout_inputs(model, batch=3)
    keys, values = empty_cache(model.predictor, 3)
    with torch.no_grad():
        ref, _ = model.rollout(z0, s0, actions)
        z, s = z0, s0
        for t in range(3):
            z, keys, values = step(z, actions[:, t], s, keys, values)
            s = model.state_update(s, actions[:, t])
            torch.testing.assert_close(z, ref[:, t], rtol=0, atol=TOL)
    spec = json.loads((tmp_path / "pt2" / "model.json").read_text())
    assert spec["export_format"] == "torch-export" and "opset" not in spec


def test_an_op_that_cannot_be_exported_is_a_clear_error(tmp_path):
    model = make_world_model()
    forward = model.encoder.forward

    def data_dependent(x, masks=None, out_layers=None):
        y = forward(x)
        return y * 2 if y.sum() > 0 else y  # control flow on a value: no static graph

    model.encoder.forward = data_dependent
    with pytest.raises(ExportError, match=r"cannot export the encoder with torch.export.*data-dependent"):
        export_world_model(model, tmp_path / "a", "torch-export")


def test_an_op_without_an_onnx_translation_is_named(tmp_path):
    pytest.importorskip("onnxscript")

    @torch.library.custom_op("jepa_test::twice", mutates_args=())
    def twice(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    twice.register_fake(lambda x: torch.empty_like(x))
    model = make_world_model()
    forward = model.encoder.forward
    model.encoder.forward = lambda x, masks=None, out_layers=None: twice(forward(x))
    with pytest.raises(ExportError, match=r"cannot convert the encoder to ONNX.*jepa_test\.twice"):
        export_world_model(model, tmp_path / "b", "onnx", verify=False)


def test_bad_arguments_are_rejected(tmp_path):
    model = make_world_model()
    with pytest.raises(ValueError, match="unknown export format"):
        export_world_model(model, tmp_path, "tflite")
    with pytest.raises(FileNotFoundError, match="model.json"):
        read_spec(tmp_path)

"""The probe and anticipation configs reject bad values at load time, naming the key."""

import pytest

from eval.anticipation.run import AnticipationConfig
from eval.probes.classification import ClassifyConfig
from eval.probes.frozen import BackboneConfig
from jepa.config import load_config
from jepa.models.vit import ViTArchConfig
from jepa.train.pretrain import ModelConfig
from tests.helpers import REPO_ROOT, assert_config_rejects

HOLES = [
    (AnticipationConfig, "probe.epochs=0", "probe.epochs", "> 0"),
    (AnticipationConfig, "probe.batch_size=0", "probe.batch_size", "> 0"),
    (AnticipationConfig, "probe.lrs=[1e-3,nan]", "probe.lrs", "finite and >= 0"),
    (AnticipationConfig, "probe.lrs=[]", "probe.lrs", "must not be empty"),
    (AnticipationConfig, "probe.weight_decays=[-0.1]", "probe.weight_decays", "finite and >= 0"),
    (AnticipationConfig, "probe.loss=hinge", "probe.loss", "expected one of"),
    (AnticipationConfig, "probe.warmup_epochs=-1", "probe.warmup_epochs", "finite and >= 0"),
    (AnticipationConfig, "meta.device=cuda0", "meta.device", "auto, cpu, cuda"),
    (AnticipationConfig, "meta.batch_size=0", "meta.batch_size", "> 0"),
    (AnticipationConfig, "meta.feature_dtype=int8", "meta.feature_dtype", "expected one of"),
    (AnticipationConfig, "backbone.init=scratch", "backbone.init", "expected one of"),
    (AnticipationConfig, "backbone.size=enormous", "backbone.size", "must be one of"),
    (AnticipationConfig, "backbone.num_heads=3", "backbone.num_heads", "divide embed_dim"),
    (AnticipationConfig, "backbone.tubelet_size=16", "data.frames_per_clip", "backbone.tubelet_size=16"),
    (AnticipationConfig, "backbone.future_steps=0", "backbone.future_steps", "> 0"),
    (AnticipationConfig, "backbone.out_layers=[]", "backbone.out_layers", "must not be empty"),
    (AnticipationConfig, "data.source=youtube", "data.source", "expected one of"),
    (AnticipationConfig, "data.window_end=stop", "data.window_end", "expected one of"),
    (AnticipationConfig, "data.video_layout=nested", "data.video_layout", "expected one of"),
    (AnticipationConfig, "data.frames_per_clip=0", "data.frames_per_clip", "> 0"),
    (AnticipationConfig, "data.sample_fps=0", "data.sample_fps", "> 0"),
    (AnticipationConfig, "data.anticipation_time=-1", "data.anticipation_time", "finite and >= 0"),
    (AnticipationConfig, "data.embedded.fps=0", "data.embedded.fps", "> 0"),
    (AnticipationConfig, "data.embedded.push_probability=1.5", "data.embedded.push_probability", "in [0, 1]"),
    (AnticipationConfig, "data.embedded.tasks_per_video=[4,2]", "data.embedded.tasks_per_video", "low <= high"),
    (AnticipationConfig, "submission.sls_pt=6", "submission.sls_pt", "in [0, 5]"),
    (AnticipationConfig, "submission.top_actions=0", "submission.top_actions", "> 0"),
    (ClassifyConfig, "data.num_views=0", "data.num_views", "> 0"),
    (ClassifyConfig, "data.frame_step=0", "data.frame_step", "> 0"),
    (ClassifyConfig, "data.frames_per_clip=1", "data.frames_per_clip", "backbone.tubelet_size=2"),
    (ClassifyConfig, "backbone.future_tokens=true", "backbone.future_tokens", "for action anticipation"),
    (ClassifyConfig, "probe.depth=0", "probe.depth", "> 0"),
]


@pytest.mark.parametrize(("schema", "override", "key", "problem"), HOLES, ids=[h[1] for h in HOLES])
def test_a_bad_value_is_rejected_at_load_with_its_key(schema, override, key, problem):
    assert_config_rejects(schema, override, key, problem)


def test_the_vit_architecture_fields_are_written_once():
    """Pretraining's ``model`` and the probes' ``backbone`` share one architecture dataclass."""
    arch = [f.name for f in ViTArchConfig.__dataclass_fields__.values()]
    for cls in (ModelConfig, BackboneConfig):
        assert issubclass(cls, ViTArchConfig)
        assert [f for f in cls.__dataclass_fields__ if f in arch] == arch
    b = BackboneConfig(embed_dim=48, depth=1, num_heads=3, patch_size=16)
    assert b.build(32, 4).arch == ModelConfig(embed_dim=48, depth=1, num_heads=3, patch_size=16).build(32, 4).arch


def test_the_shipped_eval_configs_pass_their_checks():
    for name, schema in (("anticipation_ek100_vitl.yaml", AnticipationConfig),
                         ("anticipation_embedded.yaml", AnticipationConfig), ("classify_example.yaml", ClassifyConfig)):
        load_config(schema, REPO_ROOT / "configs" / "eval" / name)

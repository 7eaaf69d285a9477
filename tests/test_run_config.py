"""The run configs (gan_core.run_config): one frozen dataclass per trainer over a shared base, and the trainers'
command-line flags made from their fields, so that a flag's default is the field's."""

from __future__ import annotations

import dataclasses

import pytest

from gan_core.cli import build_parser
from gan_core.commands import train as train_cmd
from gan_core.commands import train_vae as train_vae_cmd
from gan_core.errors import BadInputError
from gan_core.run_config import RunConfig, TrainConfig, VaeTrainConfig


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_the_cli_defaults_are_the_fields_defaults():
    args = _parse("train", "--data", "d.npz", "--out", "o")
    # the one default the command sets apart from the library's: the recipe (fast on the command line)
    assert train_cmd.to_config(args) == TrainConfig(data="d.npz", out="o", recipe="fast")
    args = _parse("train-vae", "--data", "d.npz", "--renders", "r.h5", "--out", "o")
    assert train_vae_cmd.to_config(args) == VaeTrainConfig(data="d.npz", renders="r.h5", out="o")
    assert VaeTrainConfig(data="d", renders="r", out="o").epochs == 20
    assert TrainConfig(data="d", out="o").epochs == 100


def test_flags_reach_their_fields():
    cfg = train_cmd.to_config(_parse("train", "--data", "d.npz", "--out", "o", "--classes", "chair, sofa",
                                     "--no-channels-last", "--resume", "--d-norm", "spectral", "--r1-every", "2"))
    assert cfg.classes == ["chair", "sofa"] and cfg.channels_last is False and cfg.resume is True
    assert cfg.d_norm == "spectral" and cfg.r1_every == 2
    assert cfg.resolved_profile().d_norm == "spectral"
    base = ("train-vae", "--data", "d.npz", "--renders", "r.h5", "--out", "o")
    assert train_vae_cmd.to_config(_parse(*base)).freeze_generator is None
    assert train_vae_cmd.to_config(_parse(*base, "--freeze-generator")).freeze_generator is True
    assert train_vae_cmd.to_config(_parse(*base, "--train-generator")).freeze_generator is False
    assert train_vae_cmd.to_config(_parse(*base, "--kl-weight", "2")).resolved_profile().kl_weight == 2.0


def test_train_vae_keeps_the_gan_s_optimiser_flags_out():
    with pytest.raises(SystemExit):
        _parse("train-vae", "--data", "d.npz", "--renders", "r.h5", "--out", "o", "--beta1", "0.4")
    names = {f.name for f, _, _ in VaeTrainConfig.flags()}
    assert not names & {"beta1", "beta2", "d_acc_threshold", "log_every", "render_seed", "eval_shapes"}
    assert {"beta1", "beta2", "d_acc_threshold"} <= {f.name for f, _, _ in TrainConfig.flags()}


def test_shared_fields_are_defined_once():
    for sub in (TrainConfig, VaeTrainConfig):
        fields = {f.name: f for f in dataclasses.fields(sub)}
        for base in dataclasses.fields(RunConfig):  # inherited as they are; the VAE-GAN changes epochs' default
            assert fields[base.name].metadata == base.metadata
            assert fields[base.name].default == base.default or (sub, base.name) == (VaeTrainConfig, "epochs")


def test_configs_are_frozen_and_recipes_fill_only_what_is_left_none():
    cfg = TrainConfig(data="d", out="o", recipe="fast", g_lr=5e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    assert cfg.g_lr == 5e-4 and cfg.d_lr == 1e-4 and cfg.batch_size == 16 and cfg.label_smoothing == 0.1
    paper = TrainConfig(data="d", out="o")
    assert paper.recipe == "paper" and paper.loss == "bce" and paper.augment == "none" and paper.g_lr is None
    assert paper.resolved_profile().g_lr == 0.0025
    with pytest.raises(BadInputError, match="unknown recipe"):
        TrainConfig(data="d", out="o", recipe="nope")


@pytest.mark.parametrize("kw, flag", [({"epochs": 0}, "--epochs"), ({"g_lr": -1.0}, "--g-lr"),
                                      ({"d_acc_threshold": 1.5}, "--d-acc-threshold"), ({"r1_every": 0}, "--r1-every"),
                                      ({"ema_kimg": float("inf")}, "--ema-kimg")])
def test_validate_names_the_flag(kw, flag):
    with pytest.raises(BadInputError, match=flag):
        TrainConfig(data="d", out="o", **kw).validate()


def test_validate_names_the_flag_vae():
    with pytest.raises(BadInputError, match="--e-lr"):
        VaeTrainConfig(data="d", renders="r", out="o", e_lr=0.0).validate()
    with pytest.raises(BadInputError, match="--freeze-generator needs --from-gan"):
        VaeTrainConfig(data="d", renders="r", out="o", freeze_generator=True).validate()

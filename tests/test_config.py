"""RunConfig: defaults validate, round trips, and every refusal names the field and what is allowed."""
from __future__ import annotations

import json
import warnings

import pytest

from ganae.config import ConfigError, ConfigWarning, OptimConfig, RunConfig, section_fields, shorten
from ganae import presets


def test_defaults_validate_and_round_trip_through_json():
    cfg = RunConfig().validate()
    again = RunConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["objective"]["loss"] == "ns"


def test_partial_dict_keeps_defaults_and_coerces_json_types():
    cfg = RunConfig.from_dict({"optim": {"g_lr": 1, "n_critic": "5"}, "tricks": {"ac": "false"}})
    assert cfg.optim.g_lr == 1.0 and isinstance(cfg.optim.g_lr, float)
    assert cfg.optim.n_critic == 5
    assert cfg.tricks.ac is False
    assert cfg.model == RunConfig().model


@pytest.mark.parametrize("dotted, value, field, words", [
    ("objective.loss", "foo", "objective.loss", "minimax, ns, ls, wgan, hinge"),
    ("optim.g_lr", 0.0, "optim.g_lr", "must be > 0"),
    ("optim.d_lr", float("nan"), "optim.d_lr", "out of range"),
    ("train.batch_size", 1, "train.batch_size", "allowed 2 to 4096"),
    ("model.latent_dim", 0, "model.latent_dim", "allowed 1 to 512"),
    ("tricks.ema", 0.2, "tricks.ema", "0.9 to 0.9999"),
    ("data.name", "imagenet", "data.name", "ring8"),
    ("train.device", "tpu", "train.device", "cuda:N"),
    pytest.param("optim.g_lr", 10**400, "optim.g_lr", "about 401 digits is too large to be a number",
                 id="10**400-into-a-float"),                                       # OverflowError before
    pytest.param("train.steps", 10**5000, "train.steps", "about 5001 digits is out of range (allowed 1 to 10000000)",
                 id="10**5000-into-an-int"),                                       # no str() of it in Python 3.11
    pytest.param("model.family", "y" * 3000, "model.family", "'yyyy", id="3000-characters"),
])
def test_bad_values_name_the_field_and_the_allowed_values(dotted, value, field, words):
    with pytest.raises(ConfigError) as e:
        RunConfig().with_updates(**{dotted: value}).validate()
    assert e.value.field == field
    assert words in str(e.value)


@pytest.mark.parametrize("updates, field", [
    ({"objective.gp": 10.0, "objective.r1": 1.0}, "objective.gp"),
    ({"objective.gp": 10.0, "objective.clip": 0.01}, "objective.clip"),
    ({"tricks.ac": True}, "tricks.ac"),                                   # ring8 has no classes for AC-GAN
    ({"objective.loss": "wgan", "objective.gp": 1.0, "tricks.label_smoothing": 0.1}, "tricks.label_smoothing"),
    ({"model.arch": "conv"}, "model.arch"),                               # conv on 2D points
    ({"model.family": "vae", "model.gan_init": "ae"}, "model.gan_init"),
    ({"data.name": "csv"}, "data.path"),
])
def test_impossible_combinations_are_refused_with_a_reason(updates, field):
    with pytest.raises(ConfigError) as e:
        RunConfig().with_updates(**updates).validate()
    assert e.value.field == field


def test_unusual_combinations_warn_but_pass():
    with pytest.warns(ConfigWarning, match="Lipschitz"):
        RunConfig().with_updates(**{"objective.loss": "wgan"}).validate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunConfig().validate()      # the default warns about nothing


def test_unknown_sections_fields_and_types_are_refused():
    with pytest.raises(ConfigError, match="unknown section"):
        RunConfig.from_dict({"modle": {}})
    with pytest.raises(ConfigError, match="unknown field; optim has"):
        RunConfig.from_dict({"optim": {"lr": 0.1}})
    with pytest.raises(ConfigError, match="not a number"):
        RunConfig.from_dict({"optim": {"g_lr": "fast"}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{oops")


def test_set_parses_text_like_the_cli_and_urls():
    cfg = RunConfig().set("objective.gp", "10").set("tricks.minibatch_std", "true").set("train.seed", "7")
    assert (cfg.objective.gp, cfg.tricks.minibatch_std, cfg.train.seed) == (10.0, True, 7)
    with pytest.raises(ConfigError, match="expected section.field"):
        RunConfig().set("loss", "ns")
    assert "loss" in section_fields("objective")


def test_every_preset_validates():
    for name in presets.names():
        presets.get(name).validate()
    with pytest.raises(ConfigError, match="not a preset"):
        presets.get("nope")


def test_url_parameters_round_trip_and_hold_only_changes():
    cfg = RunConfig().with_updates(**{"objective.loss": "wgan", "objective.gp": 10.0, "tricks.minibatch_std": True,
                                      "optim.g_lr": 3e-4, "train.seed": 5, "data.name": "grid25"})
    q = cfg.to_query()
    assert q == {"objective.loss": "wgan", "objective.gp": "10.0", "tricks.minibatch_std": "true",
                 "optim.g_lr": "0.0003", "train.seed": "5", "data.name": "grid25"}
    assert RunConfig.from_query({**q, "run": "abc123"}) == cfg      # non-config keys (the run id) ignored
    assert RunConfig().to_query() == {}
    with pytest.raises(ConfigError, match="unknown field"):
        RunConfig.from_query({"objective.bogus": "1"})


def test_a_link_reproduces_the_same_first_steps():
    from ganae.trainer import Trainer
    cfg = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.seed": 9,
                                      "objective.r1": 0.5, "tricks.ema": 0.9})
    again = RunConfig.from_query(cfg.to_query())
    a, b = Trainer(cfg), Trainer(again)
    a.step(20)
    b.step(20)
    assert list(a.history.values["loss_d"]) == list(b.history.values["loss_d"])


def test_a_huge_int_built_into_a_config_is_refused_by_validate():
    """Built directly (not through from_dict), validate() compares the int itself: math.isfinite(10**400) raised."""
    cfg = RunConfig(optim=OptimConfig(g_lr=10**400))
    with pytest.raises(ConfigError, match=r"^optim\.g_lr: a number of about 401 digits is out of range"):
        cfg.validate()


def test_shorten_cuts_at_a_word_boundary():
    assert shorten("the weights do not fit", 14) == "the weights…"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"
    assert shorten("short", 10) == "short"

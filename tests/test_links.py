"""Shareable links: a config and its seed survive the trip through a URL, and the config rebuilt from the URL
trains the same first steps; the Streamlit helpers read, write and show links, and keep the student view."""
from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlsplit

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from dashboard import links
from ganae import presets
from ganae.config import ConfigError, RunConfig
from ganae.trainer import Trainer

torch.set_num_threads(1)
N_STEPS = 15


def url_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def tiny(cfg: RunConfig, **more) -> RunConfig:
    """Smaller data and batches so a test trains in a blink (the link carries these fields too)."""
    small = {"data.n": 600, "train.batch_size": 32, "train.device": "cpu"} if cfg.is_points else \
        {"train.batch_size": 16, "train.device": "cpu", "model.channels": 8, "train.n_fixed": 8}
    return cfg.with_updates(**{**small, **more})


def first_steps(cfg: RunConfig, n: int = N_STEPS) -> dict[str, list[float]]:
    t = Trainer(cfg)
    t.step(n)
    return {k: list(map(float, v)) for k, v in t.history.arrays().items()}


# ---- pure: config <-> parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_every_preset_survives_a_url(name):
    cfg = presets.get(name, **{"train.seed": 11})
    url = "http://localhost:8501/playground?" + links.query_string(cfg, run="abc", advanced="0")
    back = links.config_of(url_params(url))
    assert back == cfg
    assert url_params(url)["train.seed"] == "11"


def test_the_seed_is_always_in_the_link_and_other_keys_are_ignored():
    q = links.params_of(RunConfig())
    assert q == {"train.seed": "0"}
    assert links.config_of(q) == RunConfig()
    assert links.config_of({"run": "abc", "advanced": "0"}) is None
    assert links.config_of({"optim.g_lr": ["0.1", "0.002"]}).optim.g_lr == 0.002     # a repeated key: the last


def test_odd_values_round_trip_exactly():
    cfg = RunConfig().with_updates(**{"optim.g_lr": 3.0000000000000004e-4, "tricks.minibatch_std": True,
                                      "model.activation": "gelu", "train.seed": 2**31 - 1, "data.std": 0.05})
    assert links.config_of(url_params("/x?" + links.query_string(cfg))) == cfg


@pytest.mark.parametrize("params,field", [
    ({"objective.loss": "magic"}, "objective.loss"),
    ({"optim.nope": "1"}, "optim.nope"),
    ({"train.seed": "-1"}, "train.seed"),
    ({"train.batch_size": "many"}, "train.batch_size"),
])
def test_a_bad_link_is_a_config_error_naming_the_parameter(params, field):
    with pytest.raises(ConfigError) as e:
        links.config_of(params)
    assert e.value.field == field


@pytest.mark.parametrize("preset,seed", [("ring8-vanilla", 5), ("ring8-wgan-gp", 0), ("digits-vae", 3)])
def test_a_link_reproduces_the_same_first_steps(preset, seed):
    cfg = tiny(presets.get(preset), **{"train.seed": seed})
    url = "http://localhost:8501/x?" + links.query_string(cfg)
    rebuilt = links.config_of(url_params(url))
    assert rebuilt == cfg
    a, b = first_steps(cfg), first_steps(rebuilt)
    assert a.keys() == b.keys() and len(a["step"]) == N_STEPS
    for k in a:
        assert all((x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(a[k], b[k])), k


def test_another_seed_in_the_link_gives_other_steps():
    cfg = tiny(presets.get("ring8-vanilla"), **{"train.seed": 5})
    other = links.config_of({**links.params_of(cfg), "train.seed": "6"})
    assert other == cfg.with_updates(**{"train.seed": 6})
    assert first_steps(cfg, 5)["loss_d"] != first_steps(other, 5)["loss_d"]


# ---- in Streamlit ----------------------------------------------------------------------------------------------
SCRIPT = """
import streamlit as st
from dashboard import links
cfg = links.config_from_url()
st.text("cfg: " + (cfg.to_json() if cfg is not None else "none"))
st.text(f"advanced: {links.advanced()}")
st.text(f"carry: {links.carry()}")
if cfg is not None:
    shown = cfg.with_updates(**{"objective.r1": 0.5})
    links.sync_url(shown)
    links.copy_link(shown, page="playground")
"""


def app(query: dict) -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def qp(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_the_page_reads_the_config_writes_it_back_and_shows_the_link():
    cfg = presets.get("ring8-vanilla", **{"train.seed": 4})
    at = app({**links.params_of(cfg), "run": "r123"})
    assert texts(at)[0] == "cfg: " + cfg.to_json()
    q = qp(at)
    assert q["run"] == "r123"                                  # other parameters stay
    assert q["objective.r1"] == "0.5" and q["train.seed"] == "4"
    assert links.config_of(q) == cfg.with_updates(**{"objective.r1": 0.5})
    code = at.code[0].value
    assert code.startswith("/playground?") and "run=" not in code       # a link shares the recipe, not the run
    assert links.config_of(url_params(code)) == cfg.with_updates(**{"objective.r1": 0.5})


def test_stale_config_parameters_are_removed():
    at = app({"objective.loss": "ls", "objective.r1": "0.5", "train.seed": "0"})
    q = qp(at)
    assert q["objective.loss"] == "ls" and q["objective.r1"] == "0.5"
    at.query_params["objective.r1"] = "0.25"
    at.run()
    assert qp(at)["objective.r1"] == "0.5"                     # the page's form wins over the old value


def test_a_bad_link_is_one_sentence_and_the_defaults():
    at = app({"objective.loss": "magic"})
    assert texts(at)[0] == "cfg: none"
    assert len(at.warning) == 1 and "objective.loss" in at.warning[0].value and "magic" in at.warning[0].value


def test_advanced_0_is_the_student_view_and_it_sticks():
    at = app({"advanced": "0"})
    assert "advanced: False" in texts(at) and "carry: {'advanced': '0'}" in texts(at)
    del at.query_params["advanced"]                            # e.g. another page opened without it
    at.run()
    assert "advanced: False" in texts(at) and qp(at).get("advanced") == "0"
    at.query_params["advanced"] = "1"
    at.run()
    assert "advanced: True" in texts(at) and "carry: {}" in texts(at)
    assert "advanced: True" in texts(app({}))


def test_a_student_link_keeps_the_student_view():
    cfg = presets.get("ring8-vanilla")
    at = app({**links.params_of(cfg), "advanced": "0"})
    assert url_params(at.code[0].value)["advanced"] == "0"


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()

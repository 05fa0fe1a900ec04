"""Lessons: the content is consistent (presets exist and validate, pages exist and fit the setups), and the
Lessons page walks a lesson and opens each step's page set up for it (AppTest, no browser)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from dashboard import links, runtime
from ganae import dirac, lessons, presets
from ganae.config import RunConfig

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = ROOT / "dashboard" / "views"
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60
ALL_STEPS = [(lesson.name, i, step) for lesson in lessons.LESSONS.values() for i, step in enumerate(lesson.steps)]
IDS = [f"{name}-{i + 1}" for name, i, _ in ALL_STEPS]


# ---- the content ----------------------------------------------------------------------------------------------
def test_the_seven_lessons_of_the_course():
    titles = " | ".join(lesson.title.lower() for lesson in lessons.LESSONS.values())
    for topic in ("what a gan does", "mode collapse", "tricks", "autoencoders and the latent space", "vaes and β",
                  "oscillates", "autoencoders inside gans"):
        assert topic in titles, topic
    for lesson in lessons.LESSONS.values():
        assert len(lesson.steps) >= 3 and lesson.goal.endswith(".") and lesson.minutes > 0
        assert len({s.title for s in lesson.steps}) == len(lesson.steps)


@pytest.mark.parametrize("name,i,step", ALL_STEPS, ids=IDS)
def test_every_step_names_a_page_that_exists_and_a_setup_that_fits_it(name, i, step):
    assert step.page in lessons.PAGES
    assert (PAGES_DIR / f"{step.page}.py").is_file(), f"{name} step {i + 1}: no page file for '{step.page}'"
    assert step.page in links.URL_PATHS
    assert step.do.strip() and step.notice.strip() and step.title.strip()
    if step.preset is not None:
        assert step.preset in presets.PRESETS, f"{name} step {i + 1}: unknown preset '{step.preset}'"
    cfg = step.config()                                   # validates; a ConfigError would fail the test
    if step.page in ("arena", "dirac", "checkpoints"):
        assert cfg is None, "pages without a run take no preset"
    if cfg is not None:
        assert isinstance(cfg, RunConfig)
        assert step.page in lessons.RUN_PAGES and lessons.fits(step.page, cfg), \
            f"{name} step {i + 1}: {cfg.model.family} on {cfg.data.name} does not fit the {step.page} page"
    if step.pretrained:
        assert step.page == "latent" and step.preset is not None
    if step.state:
        assert step.page == "dirac"
        assert set(step.state) <= {"methods", "mode"}
        assert step.state["methods"] and set(step.state["methods"]) <= set(dirac.METHODS)
        assert step.state.get("mode", "simultaneous") in dirac.MODES


def test_steps_without_a_setup_follow_one_that_opened_the_same_kind_of_page():
    for lesson in lessons.LESSONS.values():
        for i, step in enumerate(lesson.steps):
            if step.page in ("playground", "ae_lab", "image_gan") and step.config() is None:
                assert i > 0 and lesson.steps[i - 1].page == step.page, f"{lesson.name} step {i + 1}"


def test_the_widget_keys_a_dirac_step_sets_are_the_dirac_pages():
    source = (PAGES_DIR / "dirac.py").read_text()
    for key in ("dg_methods", "dg_mode", "dg_h", "dg_steps", "dg_theta0", "dg_psi0", "dg_dsteps", "dg_p:"):
        assert f'"{key}' in source or f"'{key}" in source or f'f"{key}' in source, key
    assert re.search(r'PAPER = \{"h": 0\.1, "steps": 1000, "theta0": 1\.0, "psi0": 1\.0, "d_steps": 1\}', source)


def test_every_page_the_lessons_name_is_registered_by_the_app():
    app = (ROOT / "dashboard" / "app.py").read_text()
    for page in lessons.PAGES:
        assert f'"{page}.py"' in app, page
        assert f'"{links.URL_PATHS[page]}"' in app, page


def test_pretrained_entry_by_name_then_by_config():
    step = next(s for _, _, s in ALL_STEPS if s.pretrained)
    cfg = step.config()
    other = presets.get("digits-vanilla").to_dict()
    entries = [{"name": "classifier-digits", "config": cfg.to_dict(), "kind": "classifier"},
               {"name": "broken", "error": "damaged"},
               {"name": "gan", "config": other}]
    assert lessons.pretrained_entry(step, entries) is None
    same_but_longer = cfg.with_updates(**{"train.steps": 9000, "train.seed": 3}).to_dict()
    entries.append({"name": "my-model", "config": same_but_longer})
    assert lessons.pretrained_entry(step, entries)["name"] == "my-model"
    entries.insert(0, {"name": step.preset, "config": other})
    assert lessons.pretrained_entry(step, entries)["name"] == step.preset
    plain = next(s for _, _, s in ALL_STEPS if not s.pretrained and s.preset)
    assert lessons.pretrained_entry(plain, entries) is None


def test_page_for_routes_families():
    assert lessons.page_for(presets.get("ring8-vanilla")) == "playground"
    assert lessons.page_for(presets.get("digits-vanilla")) == "image_gan"
    assert lessons.page_for(presets.get("digits-vae")) == "ae_lab"
    assert lessons.page_for(RunConfig().with_updates(**{"model.family": "ae"})) == "latent"


# ---- the page -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()          # the registry's on_release stops every run and joins its thread


def lessons_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.query_params.update(query or {})
    at.switch_page("views/lessons.py").run()
    assert not at.exception, at.exception
    return at


def qp(at: AppTest, key: str) -> str | None:
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_next_and_back_walk_the_steps_and_the_url_follows():
    at = lessons_page()
    lesson = lessons.get(lessons.names()[0])
    assert any(lesson.steps[0].title in s.value for s in at.subheader)
    assert at.button(key="ls_back").disabled and not at.button(key="ls_next").disabled
    assert qp(at, "lesson") == lesson.name and qp(at, "step") == "1"
    at.button(key="ls_next").click().run()
    assert any(lesson.steps[1].title in s.value for s in at.subheader)
    assert qp(at, "step") == "2"
    for _ in range(len(lesson.steps) - 2):
        at.button(key="ls_next").click().run()
    assert at.button(key="ls_next").disabled and qp(at, "step") == str(len(lesson.steps))
    at.button(key="ls_back").click().run()
    assert qp(at, "step") == str(len(lesson.steps) - 1)
    at.selectbox(key="ls_lesson").set_value("dirac").run()        # another lesson starts at its first step
    assert qp(at, "lesson") == "dirac" and qp(at, "step") == "1"
    assert not at.exception


def test_a_link_opens_a_given_step():
    at = lessons_page({"lesson": "vae-beta", "step": "2"})
    assert any(lessons.get("vae-beta").steps[1].title in s.value for s in at.subheader)
    assert any("β = 8" in m.value or "model.beta = 8.0" in m.value for m in at.markdown)


def test_open_starts_the_steps_preset_on_its_page():
    at = lessons_page({"lesson": "tricks", "step": "1", "advanced": "0"})
    at.button(key="ls_open").click().run()
    assert not at.exception, at.exception
    assert titles(at) == ["GAN Playground"]
    run_id = qp(at, "run")
    r = runtime.registry().get(run_id)
    assert r is not None
    want = lessons.get("tricks").steps[0].config()
    assert r.cfg == want and r.cfg.objective.r1 == 0.1
    assert r.status().state == "idle"                         # the student presses Train
    assert at.session_state["pg:objective.r1"] == 0.1          # the form shows the step's setup
    assert qp(at, "advanced") == "0"                           # the student view follows
    # a step without a setup continues with that run
    at.switch_page("views/lessons.py").run()
    at.selectbox(key="ls_lesson").set_value("gan-2d").run()
    at.button(key="ls_next").click().run()
    at.button(key="ls_open").click().run()
    assert titles(at) == ["GAN Playground"] and qp(at, "run") == run_id
    # the next setup replaces that run: the old one stops training (it would hold a training slot)
    r.play(owner=at.session_state[runtime.OWNER_KEY])
    at.switch_page("views/lessons.py").run()
    at.button(key="ls_next").click().run()
    at.button(key="ls_open").click().run()
    new_id = qp(at, "run")
    assert new_id != run_id and runtime.registry().get(new_id).cfg.model.noise == "uniform"
    assert at.radio(key="pg:model.noise").value == "uniform"   # the student view shows the step's noise
    assert r.wait_for(lambda s: s.state == "paused", timeout=10)
    for rid in (run_id, new_id):
        runtime.registry().remove(rid)


def test_open_a_dirac_step_sets_its_methods():
    at = lessons_page({"lesson": "dirac", "step": "3"})
    at.button(key="ls_open").click().run()
    assert not at.exception, at.exception
    assert titles(at) == ["Dirac-GAN"]
    want = lessons.get("dirac").steps[2].state["methods"]
    assert sorted(at.session_state["dg_methods"]) == sorted(want)
    assert at.session_state["dg_mode"] == "simultaneous" and at.session_state["dg_h"] == 0.1
    table = " ".join(str(t.value) for t in at.table)
    for m in want:
        assert m in table


def test_a_latent_step_without_a_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(tmp_path))     # no shipped models here
    at = lessons_page({"lesson": "ae-latent", "step": "3"})
    at.button(key="ls_open").click().run()
    assert not at.exception
    assert titles(at) == ["Lessons"]
    assert any("previous step" in i.value for i in at.info)

"""Shareable links on the pages, the student view and the exports, driven through Streamlit's AppTest.

- a link's `section.field=value` parameters fill each training page's form with exactly that config (the page
  writes the same config back into its URL, and the run it starts has it);
- two fresh sessions opened on the same link train the same first 20 steps, number for number; another seed
  trains other ones;
- a bad link is one warning naming the parameter, and the page works from its defaults;
- ?advanced=0 hides the advanced widgets (by key) and keeps their values; ?advanced=1 shows them;
- the history CSV has a row per recorded step, the PNGs are PNGs of the size the page draws.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dashboard import figures_images as fi
from dashboard import image_controls as ic
from dashboard import links, quote, runtime, settings
from ganae import export, presets
from ganae.config import ConfigError, RunConfig

torch.set_num_threads(1)
APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 60
N = 20
PREFIX = {"playground": "pg:", "ae_lab": "ae:", "image_gan": "ig:"}
RUN_KEY = {"playground": "_run:playground", "ae_lab": "ae_lab:run", "image_gan": "image_gan:run"}


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()          # the registry's on_release stops every run and joins its thread


# ---- helpers -------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def page_default(page: str) -> RunConfig:
    """The config a page shows without a link (its form's defaults, which it writes into its URL)."""
    cfg = links.config_of(qp(open_page(page)))
    if page == "playground":
        assert cfg == settings.default_config()
    return cfg


def tiny(page: str, **more) -> RunConfig:
    """The page's default, small enough to train 20 steps in a blink (the link carries these fields too)."""
    small = ({"data.n": 600, "train.batch_size": 32, "train.device": "cpu"} if page == "playground" else
             {"model.channels": 8, "train.batch_size": 16, "train.n_fixed": 8, "train.device": "cpu"})
    return page_default(page).with_updates(**{**small, **more})


def open_page(page: str, query: dict | None = None, at: AppTest | None = None, owner: str | None = None) -> AppTest:
    """`page` in `at` or a new session; `owner`: the browser's secret the new session brings (its cookie: a reload)."""
    at = at or AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    if owner is not None:
        at.session_state[runtime.OWNER_KEY] = owner
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def qp(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def widget_keys(at: AppTest) -> set[str]:
    keys = set()
    for kind in ("slider", "select_slider", "number_input", "selectbox", "radio", "checkbox", "button",
                 "text_input", "toggle"):
        keys |= {w.key for w in getattr(at, kind) if w.key}
    return keys


def the_run(at: AppTest, page: str):
    rid = at.session_state[RUN_KEY[page]] if RUN_KEY[page] in at.session_state else None
    return runtime.registry().get(rid) if rid else None


def step(at: AppTest, page: str) -> AppTest:
    """One press of the page's step control (Playground: one iteration; image pages: 10)."""
    at.button(key="pg_step" if page == "playground" else PREFIX[page] + "step").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def train_n(at: AppTest, page: str) -> dict[str, np.ndarray]:
    """Train the link's first N steps and return the run's history."""
    if page == "playground":                     # Train until the planned N steps are done
        at.button(key="pg_play").click().run()
        r = the_run(at, page)
        assert r is not None and r.wait_for(lambda s: s.state == "finished", timeout=60), r.status()
    else:                                        # Step x10, twice
        step(step(at, page), page)
        r = the_run(at, page)
    assert not at.exception
    assert r.status().step == N
    return r.snapshot().history


def url_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# ---- a link fills the form with exactly its config ------------------------------------------------------------
LINKS = {
    # beyond what the widgets offer (8 layers, 20 planned steps, a batch of 48): kept, not clamped
    "playground": lambda: settings.default_config().with_updates(**{
        "data.name": "grid25", "objective.loss": "hinge", "train.seed": 3, "model.g_layers": 8,
        "train.steps": 20, "tricks.ema": 0.999, "optim.n_critic": 2, "train.batch_size": 48, "data.n": 700}),
    "ae_lab": lambda: page_default("ae_lab").with_updates(**{
        "model.family": "vae", "model.beta": 1.0, "model.latent_dim": 4, "train.seed": 7, "train.steps": 50,
        "model.channels": 16, "optim.g_lr": 1e-3}),
    "image_gan": lambda: page_default("image_gan").with_updates(**{
        "objective.loss": "hinge", "objective.r1": 0.5, "train.seed": 3, "tricks.minibatch_std": True,
        "model.latent_dim": 16, "train.steps": 40, "optim.n_critic": 2}),
}
SHOWN = {  # widget key -> the value the link put there
    "playground": {"pg:data.name": "grid25", "pg:objective.loss": "hinge", "pg:train.seed": 3,
                   "pg:model.g_layers": 8, "pg:train.steps": 20, "pg:tricks.ema": 0.999, "pg:optim.n_critic": 2,
                   "pg:train.batch_size": 48},
    "ae_lab": {"ae:variant": "vae", "ae:model.latent_dim": 4, "ae:train.seed": 7, "ae:train.steps": 50,
               "ae:model.channels": 16, "ae:optim.g_lr": 1e-3},
    "image_gan": {"ig:objective.loss": "hinge", "ig:objective.r1": 0.5, "ig:train.seed": 3,
                  "ig:tricks.minibatch_std": True, "ig:model.latent_dim": 16, "ig:train.steps": 40,
                  "ig:optim.n_critic": 2},
}


def widget_value(at: AppTest, key: str):
    for kind in ("slider", "select_slider", "number_input", "selectbox", "radio", "checkbox"):
        for w in getattr(at, kind):
            if w.key == key:
                return w.value
    raise KeyError(key)


@pytest.mark.parametrize("view", list(LINKS))
def test_a_link_fills_the_form_with_exactly_its_config(view):
    cfg = LINKS[view]().validate()
    params = links.params_of(cfg)
    assert links.config_of(params) == cfg
    at = open_page(view, params)
    assert not at.warning and not at.error, ([w.value for w in at.warning], [e.value for e in at.error])
    for key, value in SHOWN[view].items():
        assert widget_value(at, key) == value, key
    # the page's pending config is written back into its URL: the same config, parameter for parameter
    assert qp(at) == params
    assert links.config_of(qp(at)) == links.config_of(params)
    # the "Share" popover holds a link to the same config
    code = [c.value for c in at.code if "train.seed=" in c.value]
    assert len(code) == 1 and links.config_of(url_params(code[0])) == cfg
    # and the run the page starts is that config
    step(at, view)
    r = the_run(at, view)
    assert r is not None and r.cfg == cfg
    assert qp(at)["run"] == r.run_id and links.config_of(qp(at)) == cfg


def test_a_link_means_one_config_on_every_page():
    """A link holds the fields that differ from RunConfig() (2D ring of 8), not from a page's defaults: a
    Playground link opened on the Image GAN page is not read as an image GAN."""
    at = open_page("image_gan", {"objective.loss": "hinge", "train.seed": "4"})
    assert len(at.warning) == 1 and "Image GAN page cannot show" in at.warning[0].value
    assert links.config_of(qp(at)) == page_default("image_gan")
    full = page_default("image_gan").with_updates(**{"objective.loss": "hinge", "train.seed": 4})
    at = open_page("image_gan", links.params_of(full))
    assert not at.warning and links.config_of(qp(at)) == full


# ---- the same link, the same seed: the same first steps ------------------------------------------------------
@pytest.mark.parametrize("view", ["playground", "image_gan", "ae_lab"])
def test_two_sessions_on_one_link_train_the_same_first_steps_and_another_seed_others(view):
    cfg = tiny(view, **{"train.seed": 5, "train.steps": N})
    params = links.params_of(cfg)
    a = train_n(open_page(view, params), view)
    b = train_n(open_page(view, params), view)
    assert len(a["step"]) == N
    assert a.keys() == b.keys()
    losses = [k for k in a if k.startswith("loss")] or ["loss"]
    assert losses and all(k in a for k in losses)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    other = train_n(open_page(view, {**params, "train.seed": "6"}), view)
    assert not np.array_equal(a[losses[0]], other[losses[0]])


# ---- a bad link ----------------------------------------------------------------------------------------------
BAD = [({"objective.loss": "magic"}, "objective.loss", "magic"),
       ({"optim.nope": "1", "train.seed": "2"}, "optim.nope", "nope"),
       ({"train.batch_size": "many"}, "train.batch_size", "many")]


@pytest.mark.parametrize("view", list(PREFIX))
@pytest.mark.parametrize("params,field,word", BAD, ids=[b[1] for b in BAD])
def test_a_bad_link_is_one_sentence_and_the_page_works_from_its_defaults(view, params, field, word):
    at = open_page(view, params)
    assert len(at.warning) == 1, [w.value for w in at.warning]
    text = at.warning[0].value
    assert field in text and word in text and "defaults" in text
    assert not at.error
    assert links.config_of(qp(at)) == page_default(view)         # the defaults, in the URL now
    at.run()                                                      # still said on the next rerun ...
    assert len(at.warning) == 1 and field in at.warning[0].value
    step(at, view)                                                # ... and the page trains
    r = the_run(at, view)
    assert r is not None and r.status().step > 0 and r.cfg == page_default(view)
    assert not at.error
    # once the user changes a setting, the old link's sentence goes
    at.number_input(key=PREFIX[view] + "train.seed").set_value(9).run()
    assert not at.warning and links.config_of(qp(at)).train.seed == 9


@pytest.mark.parametrize("params,field", [
    ({"data.name": "csv", "data.path": "/etc/passwd"}, "data.path"),
    ({"data.name": "csv", "data.path": str(settings.UPLOAD_DIR / ".." / "x.csv")}, "data.path"),
    ({"data.root": "/tmp"}, "data.root"),
])
def test_a_link_cannot_point_the_server_at_its_files(params, field):
    at = open_page("playground", params)
    assert len(at.warning) == 1 and field in at.warning[0].value and "server" in at.warning[0].value
    assert not at.error and "passwd" not in qp(at).get("data.path", "")
    assert links.config_of(qp(at)) == page_default("playground")


@pytest.mark.parametrize("path", ["/usr/share", "/etc/passwd", "/nonexistent/folder", "data",
                                  str(settings.UPLOAD_DIR / ".." / "x.zip"), str(settings.UPLOAD_DIR)])
def test_a_link_cannot_show_a_server_folder_nor_tell_whether_it_exists(path):
    """A folder that exists, a file, a path that does not: the same sentence, and nothing is read from it."""
    at = open_page("ae_lab", {"data.name": "folder", "data.path": path, "model.family": "ae"})
    refused = links.problem_sentence(ConfigError("data.path", links.NOT_AN_UPLOAD))
    assert [w.value for w in at.warning] == [refused]
    assert not at.error and "data.path" not in qp(at) and qp(at).get("data.name") != "folder"


def test_a_link_may_name_an_upload_made_through_a_page():
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("a.png", b"not read here")
    cfg = RunConfig().with_updates(**{"data.name": "folder", "model.family": "ae",
                                      "data.path": ic.save_upload(zipped.getvalue(), ".zip")})
    assert links.check_server_paths(cfg) is cfg
    assert links.is_upload(settings.save_upload("p.csv", b"x,y\n1,2\n"))
    assert not links.is_upload(str(settings.UPLOAD_DIR / "sub" / "x.csv"))


def test_a_link_to_an_uploaded_csv_opens_it():
    rows = "\n".join(f"{i % 7 * 0.3:.3f},{i % 5 * 0.2:.3f}" for i in range(200))
    path = settings.save_upload("points.csv", ("x,y\n" + rows).encode())
    cfg = settings.default_config().with_updates(**{"data.name": "csv", "data.path": path, "train.seed": 2})
    at = open_page("playground", links.params_of(cfg))
    assert not at.warning and not at.error
    assert widget_value(at, "pg:data.name") == "csv" and links.config_of(qp(at)) == cfg
    step(at, "playground")
    assert the_run(at, "playground").cfg == cfg


def test_a_link_for_another_page_says_which_page_shows_it():
    cfg = presets.get("ring8-vanilla", **{"train.seed": 2})
    at = open_page("ae_lab", links.params_of(cfg))
    assert len(at.warning) == 1
    text = at.warning[0].value
    assert "Autoencoder Lab page cannot show" in text and "GAN Playground" in text
    assert links.config_of(qp(at)) == page_default("ae_lab")


# ---- which run is shown --------------------------------------------------------------------------------------
def test_a_link_opened_in_a_session_replaces_its_old_run_and_a_run_in_the_url_is_kept():
    at = open_page("playground")
    step(at, "playground")
    old = the_run(at, "playground")
    assert old is not None and qp(at)["run"] == old.run_id
    # a link without a run: its setup, no run yet (the old one is paused, not shown)
    cfg = tiny("playground", **{"data.name": "spiral", "train.seed": 8})
    for k in list(at.query_params):
        del at.query_params[k]
    at.query_params.update(links.params_of(cfg))
    at.run()
    assert not at.exception
    assert "run" not in qp(at) and the_run(at, "playground") is None
    assert widget_value(at, "pg:data.name") == "spiral" and links.config_of(qp(at)) == cfg
    assert old.status().state in ("paused", "idle")
    step(at, "playground")
    new = the_run(at, "playground")
    assert new is not None and new.run_id != old.run_id and new.cfg == cfg

    # a reload: a fresh session on the URL with the run and edited settings shows the run, with the URL's form
    edited = {**qp(at), "objective.loss": "ls"}
    again = open_page("playground", edited, owner=at.session_state[runtime.OWNER_KEY])
    assert qp(again)["run"] == new.run_id
    shown = [int(m.value.split('data-step="')[1].split('"')[0]) for m in again.markdown if "data-step" in m.value]
    assert shown and set(shown) == {1}                    # the run's step, in the page and in the sidebar
    assert widget_value(again, "pg:objective.loss") == "ls"
    assert any("press **Reset**" in i.value for i in again.info)


def visit(at: AppTest, page: str) -> AppTest:
    """Open another page from the sidebar (the browser drops the query parameters on the way)."""
    for k in list(at.query_params):
        del at.query_params[k]
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("view,other", [("playground", "ae_lab"), ("image_gan", "playground"),
                                        ("arena", "playground")])
def test_a_links_setup_survives_a_visit_to_another_page(view, other):
    if view == "arena":
        params = arena_link()
    else:
        params = links.params_of(LINKS[view]())
    at = open_page(view, params)
    visit(visit(at, other), view)
    assert not at.warning
    q = qp(at)
    assert links.config_of(q) == links.config_of(params)
    if view == "arena":
        assert json.loads(q["variants"]) == json.loads(params["variants"]) and q["seeds"] == "2"
    else:
        for key, value in SHOWN[view].items():
            assert widget_value(at, key) == value, key


# ---- the student view ----------------------------------------------------------------------------------------
HIDDEN = {
    "playground": ["pg:model.g_layers", "pg:model.g_hidden", "pg:model.d_layers",
                   "pg:model.latent_dim", "pg:train.batch_size", "pg:optim.beta1", "pg:optim.n_critic",
                   "pg:optim.g_opt", "pg:objective.r2", "pg:tricks.d_dropout"],
    "ae_lab": ["ae:model.channels", "ae:optim.g_lr", "ae:train.batch_size", "ae:model.recon_loss",
               "ae:train.seed", "ae:train.steps"],
    "image_gan": ["ig:model.channels", "ig:model.latent_dim", "ig:optim.beta1", "ig:optim.beta2",
                  "ig:optim.n_critic", "ig:optim.g_lr", "ig:objective.r2", "ig:objective.clip",
                  "ig:tricks.d_dropout", "ig:train.batch_size"],
    "arena": ["ar_seeds", "ar_f:name"],
}
KEPT = {
    "playground": ["pg:data.name", "pg:objective.loss", "pg:objective.gp", "pg:objective.r1",
                   "pg:tricks.minibatch_std", "pg:tricks.label_smoothing", "pg:tricks.instance_noise",
                   "pg:optim.g_lr", "pg:optim.d_lr", "pg_play", "pg_pause", "pg_step", "pg_step_d", "pg_reset"],
    "ae_lab": ["ae:data.name", "ae:variant", "ae:model.latent_dim", "ae:model.arch", "ae:play", "ae:pause",
               "ae:step", "ae:reset"],
    "image_gan": ["ig:data.name", "ig:objective.loss", "ig:objective.gp", "ig:objective.r1",
                  "ig:tricks.minibatch_std", "ig:tricks.ema", "ig:tricks.ac", "ig:play", "ig:step", "ig:reset"],
    "arena": ["ar_dataset", "ar_preset", "ar_steps", "ar_start", "ar_pick"],
}


def student_caption(at: AppTest) -> bool:
    return any("Student view" in c.value for c in at.caption)


@pytest.mark.parametrize("view", list(HIDDEN))
def test_advanced_0_hides_the_advanced_widgets_and_advanced_1_shows_them(view):
    at = open_page(view, {"advanced": "0"})
    keys = widget_keys(at)
    assert not set(HIDDEN[view]) & keys, set(HIDDEN[view]) & keys
    assert set(KEPT[view]) <= keys, set(KEPT[view]) - keys
    assert student_caption(at)
    assert qp(at)["advanced"] == "0"
    at.query_params["advanced"] = "1"
    at.run()
    keys = widget_keys(at)
    assert set(HIDDEN[view]) | set(KEPT[view]) <= keys, (set(HIDDEN[view]) | set(KEPT[view])) - keys
    assert not student_caption(at)
    full = open_page(view)
    assert set(HIDDEN[view]) <= widget_keys(full) and not student_caption(full)


@pytest.mark.parametrize("view", list(PREFIX))
def test_hidden_fields_keep_the_links_values_through_edits(view):
    cfg = LINKS[view]()
    at = open_page(view, {**links.params_of(cfg), "advanced": "0"})
    assert not at.warning
    assert links.config_of(qp(at)) == cfg
    # edit a visible field, rerun twice: the hidden ones (layers, batch, optimiser...) stay the link's
    key = {"playground": "pg:tricks.minibatch_std", "ae_lab": "ae:model.arch",
           "image_gan": "ig:tricks.feature_matching"}[view]
    w = next(getattr(at, kind) for kind in ("checkbox", "radio") if any(x.key == key for x in getattr(at, kind)))
    el = next(x for x in w if x.key == key)
    new = (not el.value) if isinstance(el.value, bool) else "mlp"
    el.set_value(new).run()
    at.run()
    field = key.split(":", 1)[1]
    want = cfg.with_updates(**{field: new})
    if view == "ae_lab":             # an MLP autoencoder uses one width for both networks
        want = want.with_updates(**{"model.d_hidden": want.model.g_hidden})
    assert links.config_of(qp(at)) == want
    step(at, view)
    assert the_run(at, view).cfg == want


ADV_EDIT = {  # page -> (an advanced widget, its new value, a student-view widget, its new value)
    "playground": ("pg:model.g_layers", 5, "pg:objective.loss", "ls"),
    "ae_lab": ("ae:train.batch_size", 32, "ae:model.latent_dim", 2),
    "image_gan": ("ig:optim.beta1", 0.25, "ig:objective.loss", "ls"),
}


def set_widget(at: AppTest, key: str, value) -> AppTest:
    for kind in ("slider", "select_slider", "number_input", "selectbox", "radio", "checkbox"):
        for w in getattr(at, kind):
            if w.key == key:
                w.set_value(value).run()
                assert not at.exception, [e.value for e in at.exception]
                return at
    raise KeyError(key)


@pytest.mark.parametrize("view", list(ADV_EDIT))
def test_switching_to_the_student_view_keeps_the_advanced_edits(view):
    adv_key, adv_value, key, value = ADV_EDIT[view]
    at = open_page(view)
    set_widget(at, adv_key, adv_value)
    at.query_params["advanced"] = "0"
    at.run()
    assert adv_key not in widget_keys(at)
    set_widget(at, key, value)
    at.run()
    want = page_default(view).with_updates(**{adv_key.split(":", 1)[1]: adv_value, key.split(":", 1)[1]: value})
    assert links.config_of(qp(at)) == want
    step(at, view)
    assert the_run(at, view).cfg == want


# ---- exports -------------------------------------------------------------------------------------------------
@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """file name -> the callable a download button serves when clicked (made then, from the latest state)."""
    made: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        made[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return made


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    return img.size


def served(made: dict, suffix: str):
    names = [n for n in made if n.endswith(suffix)]
    assert len(names) == 1, (suffix, list(made))
    return made[names[0]]()


@pytest.mark.parametrize("view", list(PREFIX))
def test_the_history_csv_and_the_png_of_a_run(view, downloads):
    at = open_page(view, links.params_of(tiny(view, **{"train.seed": 1})))
    assert not at.download_button                                  # nothing to export before a run
    step(step(at, view), view)
    r = the_run(at, view)
    labels = [d.label for d in at.download_button]
    assert labels == ["History (CSV)", "Quality (CSV)",
                      {"playground": "Points (PNG)", "ae_lab": "Reconstructions (PNG)",
                       "image_gan": "Samples (PNG)"}[view]]
    snap = r.snapshot()
    hist = snap.history
    text = served(downloads, "-history.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(hist["step"]) == (2 if view == "playground" else 20)
    assert [int(x["step"]) for x in rows] == [int(s) for s in hist["step"]]
    loss = "loss_d" if "loss_d" in hist else "loss"
    assert [float(x[loss]) for x in rows] == [float(v) for v in hist[loss]]
    quality = list(csv.DictReader(io.StringIO(served(downloads, "-quality.csv"))))
    assert len(quality) == len(snap.evals["step"])
    png = served(downloads, ".png")
    if view == "playground":
        assert png_size(png) == (720, 720)
    elif view == "image_gan":
        grid = fi.tiles(snap.samples[:64], nrow=8)
        assert png_size(png) == (grid.shape[1], grid.shape[0])
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), grid)
    else:
        grid = fi.pairs_image(snap.inputs, snap.recons, None, 30, 6)
        assert png_size(png) == (grid.shape[1], grid.shape[0])


def test_history_csv_is_one_row_per_step_and_reads_back_the_numbers():
    hist = {"step": np.array([0, 1, 2, 5]), "loss_d": np.array([0.5, np.nan, 1e-9, 3.0000000000000004e-4]),
            "loss_g": np.array([1.0, 2.0, np.inf, -0.25])}
    rows = list(csv.reader(io.StringIO(export.history_csv(hist))))
    assert rows[0] == ["step", "loss_d", "loss_g"] and len(rows) == 5
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "5"]
    assert rows[2][1] == "" and rows[3][2] == "inf"                # not recorded: empty; inf stays inf
    assert float(rows[4][1]) == 3.0000000000000004e-4 and float(rows[3][1]) == 1e-9
    assert export.history_csv({"step": np.zeros(0)}) == "step\n"
    with pytest.raises(ValueError, match="loss_g"):
        export.history_csv({"step": np.arange(3), "loss_g": np.arange(2)})


def test_pngs_have_the_size_asked_for():
    rng = np.random.default_rng(0)
    assert png_size(export.points_png(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), size=(400, 300))) \
        == (400, 300)
    assert png_size(export.points_png(None, None)) == (720, 720)
    rgb = rng.integers(0, 255, size=(37, 51, 3), dtype=np.uint8)
    data = export.image_png(rgb)
    assert png_size(data) == (51, 37)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)
    assert png_size(export.image_png(np.linspace(0, 1, 20).reshape(4, 5))) == (5, 4)
    with pytest.raises(ValueError):
        export.image_png(np.zeros((2, 2, 2)))


# ---- the arena and the latent explorer ----------------------------------------------------------------------
def arena_link(**more: str) -> dict[str, str]:
    base = presets.get("ring8-vanilla", **{"train.seed": 5, "objective.r1": 0.2})
    return {**links.params_of(base), "variants": json.dumps({"ema": {"tricks.ema": 0.99}, "ls": {
        "objective.loss": "ls"}}), "seeds": "2", "steps": "500", **more}


def test_an_arena_link_sets_up_its_base_seed_variants_seeds_and_length():
    params = arena_link()
    at = open_page("arena", params)
    assert not at.warning and not at.error
    ss = at.session_state
    base = presets.get(ss["ar_preset"]).with_updates(**ss["ar_tweaks"])
    assert base == links.config_of(params) and base.train.seed == 5
    assert [v["name"] for v in ss["ar_variants"]] == ["ema", "ls"]
    assert ss["ar_variants"][1]["updates"] == {"objective.loss": "ls"}
    assert at.number_input(key="ar_seeds").value == 2 and at.select_slider(key="ar_steps").value == 500
    q = qp(at)
    assert links.config_of(q) == base and json.loads(q["variants"]) == json.loads(params["variants"])
    assert (q["seeds"], q["steps"]) == ("2", "500")
    code = [c.value for c in at.code if "variants=" in c.value]
    assert len(code) == 1 and url_params(code[0])["seeds"] == "2"
    assert links.config_of(url_params(code[0])) == base
    # the user's edits go into the URL, and are not taken for a new link
    at.select_slider(key="ar_steps").set_value(1000).run()
    assert qp(at)["steps"] == "1000" and at.select_slider(key="ar_steps").value == 1000


@pytest.mark.parametrize("more,field", [({"variants": '{"x":{"objective.loss":"magic"}}'}, "objective.loss"),
                                        ({"variants": "[1, 2"}, "variants"), ({"seeds": "9"}, "seeds"),
                                        ({"steps": "7"}, "steps"), ({"data.name": "moons"}, "data.name"),
                                        ({"variants": '{"x":{"data.name":"moons"}}'}, "data.name"),
                                        ({"model.family": "vae"}, "data.name")])
@pytest.mark.filterwarnings("ignore:GAN penalties and tricks do nothing")
def test_a_bad_arena_link_is_one_sentence(more, field):
    at = open_page("arena", arena_link(**more))
    assert len(at.warning) == 1 and field in at.warning[0].value, [w.value for w in at.warning]
    assert not at.error
    assert at.button(key="ar_start").disabled is False              # the default comparison, ready to start


def test_the_latent_explorer_opens_the_checkpoint_a_link_names():
    at = open_page("latent", {"checkpoint": "ring8-gan.pt"})
    assert at.session_state["lx_source"] == f"ckpt:{ic.checkpoint_dir() / 'ring8-gan.pt'}"
    assert qp(at)["checkpoint"] == "ring8-gan.pt" and not at.warning
    at.selectbox(key="lx_source").set_value(f"ckpt:{ic.checkpoint_dir() / 'digits-ae.pt'}").run()
    assert not at.exception and qp(at)["checkpoint"] == "digits-ae.pt"       # the choice goes into the URL
    bad = open_page("latent", {"checkpoint": "nope.pt"})
    assert len(bad.warning) == 1 and "nope.pt" in bad.warning[0].value and not bad.exception


MD_PAYLOAD = "[x](https://evil.example) ![](https://evil.example/t.png) `y`"


def test_a_checkpoint_named_in_a_link_is_quoted_in_the_sentence():
    """Before: `?checkpoint=` text went into a code span it could close, then became a live link and an image."""
    at = open_page("latent", {"checkpoint": MD_PAYLOAD})
    (w,) = [w.value for w in at.warning]
    assert f"The link's checkpoint {quote.code(MD_PAYLOAD)} is not in" in w
    assert quote.code(MD_PAYLOAD).startswith("`` ") and w.count("``") == 2        # one span, longer fence


def test_a_payload_in_an_arena_variant_name_is_text():
    """The issue's link: the name reached st.markdown(..., unsafe_allow_html=True) unescaped."""
    name = '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe> ' + MD_PAYLOAD
    at = open_page("arena", {"train.seed": "0", "variants": json.dumps({name: {"objective.r1": 2}})})
    assert not at.warning and not at.error
    row = next(m.value for m in at.markdown if "R1" in m.value and "evil.example" in m.value)
    assert f"**{quote.md(name)}**" in row and "<span" not in row
    assert not any(getattr(m, "allow_html", False) and "evil.example" in m.value for m in at.markdown)

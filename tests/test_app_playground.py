"""The GAN Playground driven through Streamlit's AppTest (no browser): buttons, errors, the run in the URL.

AppTest does not fire `run_every`, so a test calls `.run()` again to see a newer frame.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from dashboard import runtime
from ganae.config import RunConfig

torch.set_num_threads(1)

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()          # the registry's on_release stops every run and joins its thread


def playground(query: dict | None = None, owner: str | None = None) -> AppTest:
    """The Playground in a new session (a new tab); `owner`: the browser's secret it brings (its cookie)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    if owner is not None:
        at.session_state[runtime.OWNER_KEY] = owner
    at.run()
    at.switch_page("views/playground.py").run()
    assert not at.exception, at.exception
    return at


def wait_until(pred, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def run_of(at: AppTest):
    run_id = at.query_params.get("run")
    if isinstance(run_id, list):
        run_id = run_id[0]
    return runtime.registry().get(run_id)


def test_page_renders_without_a_run():
    at = playground()
    assert not at.error
    assert "run" not in at.query_params
    assert any("minimax" in m.value for m in at.markdown)
    assert at.button(key="pg_play").disabled is False


def test_play_grows_history_and_pause_stops_it():
    at = playground()
    at.button(key="pg_play").click().run()
    assert not at.exception and not at.error
    r = run_of(at)
    assert r is not None and r.status().state == "running"
    assert r.wait_for(lambda s: s.step >= 30, timeout=20)
    at.run()                                      # the next frame (run_every does not fire in AppTest)
    n1 = len(r.snapshot().history["step"])
    assert wait_until(lambda: len(r.snapshot().history["step"]) > n1 + 20)
    at.run()
    assert not at.exception
    shown = [int(m.value.split('data-step="')[1].split('"')[0]) for m in at.markdown if "data-step" in m.value]
    assert shown and shown[0] > n1                # the page shows the newer step
    assert any("training" in m.value for m in at.markdown)
    at.button(key="pg_pause").click().run()
    assert r.status().state == "paused"
    s = r.status().step
    time.sleep(0.3)
    assert r.status().step == s


def test_step_d_changes_only_d():
    at = playground()
    at.button(key="pg_step_d").click().run()       # creates the run and makes one D step
    r = run_of(at)
    assert r is not None and r.status().step == 1
    before = r.state_dict()
    at.button(key="pg_step_d").click().run()
    after = r.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("d.") for k in changed)
    at.button(key="pg_step_g").click().run()
    again = r.state_dict()
    changed = {k for k in after if not torch.equal(after[k], again[k])}
    assert changed and all(k.startswith("g.") for k in changed)
    assert r.status().step == 3


def test_the_reading_after_step_d_reads_the_game_not_a_divergence():
    """Pause, then Step D: that step logs no G loss (NaN in the history). The reading under the losses said
    "Diverged: a loss is NaN or infinite" for a healthy paused run (seen in benchmarks/classroom.py's browser
    students' pages); the page now tells the reading whether the run diverged."""
    at = playground()
    at.button(key="pg_play").click().run()
    r = run_of(at)
    assert r.wait_for(lambda s: s.step >= 60, timeout=30)
    at.button(key="pg_pause").click().run()
    at.button(key="pg_step_d").click().run()
    assert r.status().state == "paused"
    assert np.isnan(r.snapshot().history["loss_g"][-1]) and np.isfinite(r.snapshot().history["loss_d"][-1])
    readings = [c.value for c in at.caption if c.value.startswith("**Reading:**")]
    assert readings, [c.value for c in at.caption]
    assert "Diverged" not in readings[0] and "NaN" not in readings[0], readings[0]


def _layout(at: AppTest) -> dict[tuple[int, ...], str]:
    """Every position in the page's main area -> "block" or "element" (what the browser addresses updates to)."""
    from streamlit.testing.v1.element_tree import Block
    out: dict[tuple[int, ...], str] = {}

    def walk(node, path: tuple[int, ...]) -> None:
        for i, child in sorted(getattr(node, "children", {}).items()):
            out[path + (i,)] = "block" if isinstance(child, Block) else "element"
            walk(child, path + (i,))

    walk(at.main, ())
    return out


def test_the_live_frame_keeps_its_layout_whatever_the_state():
    """A queued run shows a message under its state line, a training one does not. Every position the two pages
    share must hold the same kind of thing: the browser applies a redraw's update to the part at its position, and
    an update for a block that met a message there broke the page with a class on the server ("'setIn' cannot be
    called on an ElementNode", benchmarks/classroom.py)."""
    reg = runtime.registry()
    # runs of other structures take every slot (runs of the same structure would be joined in their class cohort)
    losses = ["ls", "hinge", "wgan", "minimax"] * 8
    others = [reg.create(RunConfig().with_updates(**{"train.steps": 100_000, "objective.loss": losses[i]}),
                         session=f"other-{i}") for i in range(reg.admission.limit)]
    try:
        for o in others:
            o.play()
        at = playground()
        at.button(key="pg_play").click().run()
        r = run_of(at)
        assert r.status().state == "queued"
        assert any(i.value.startswith("Waiting for a free training slot") for i in at.info)
        queued = _layout(at)
        for o in others:
            o.pause()
        assert r.wait_for(lambda s: s.state == "running" and s.step > 0, timeout=20)
        at.run()
        assert not at.info or not any(i.value.startswith("Waiting") for i in at.info)
        running = _layout(at)
        differ = {p: (queued[p], running[p]) for p in queued.keys() & running.keys() if queued[p] != running[p]}
        assert not differ, differ
    finally:
        for o in others:
            reg.remove(o.run_id)


def test_reset_clears_history_and_applies_settings():
    at = playground()
    at.button(key="pg_step").click().run()
    at.button(key="pg_step").click().run()
    r = run_of(at)
    assert len(r.snapshot().history["step"]) == 2
    at.selectbox(key="pg:objective.loss").set_value("ls").run()
    assert any("Reset" in i.value for i in at.info)          # the change waits for Reset
    at.button(key="pg_reset").click().run()
    assert not at.exception
    assert run_of(at) is r                                     # same run id, fresh trainer
    assert r.status().step == 0 and len(r.snapshot().history["step"]) == 0
    assert r.cfg.objective.loss == "ls"


def test_invalid_learning_rate_shows_a_sentence():
    at = playground()
    at.number_input(key="pg:optim.g_lr").set_value(0.0).run()
    assert not at.exception
    assert any("optim.g_lr" in e.value and "> 0" in e.value for e in at.error)
    at.button(key="pg_play").click().run()                     # refused, nothing crashes, no run made
    assert not at.exception
    assert "run" not in at.query_params
    assert any("optim.g_lr" in e.value for e in at.error)


def test_bad_csv_shows_a_sentence():
    at = playground()
    at.selectbox(key="pg:data.name").set_value("csv").run()
    assert any("upload a CSV" in e.value for e in at.error)    # no file yet
    at.file_uploader(key="pg_upload").upload("points.csv", b"x,y\n1,2\nfoo,bar\n3,4\n", "text/csv")
    at.run()
    at.button(key="pg_play").click().run()
    assert not at.exception
    assert any("non-number" in e.value for e in at.error), [e.value for e in at.error]
    assert "run" not in at.query_params


def test_good_csv_trains():
    at = playground()
    at.selectbox(key="pg:data.name").set_value("csv").run()
    rows = "\n".join(f"{i % 7 * 0.3:.3f},{i % 5 * 0.2:.3f}" for i in range(200))
    at.file_uploader(key="pg_upload").upload("points.csv", ("x,y\n" + rows).encode(), "text/csv")
    at.run()
    at.button(key="pg_step").click().run()
    assert not at.exception and not at.error
    r = run_of(at)
    assert r is not None and r.cfg.data.name == "csv" and r.status().step == 1


def test_refresh_finds_the_run_and_its_settings():
    at = playground()
    at.number_input(key="pg:train.seed").set_value(7).run()
    at.button(key="pg_step").click().run()
    r = run_of(at)
    again = playground({"run": r.run_id})                      # a new session: a browser refresh
    assert run_of(again) is r
    assert again.number_input(key="pg:train.seed").value == 7
    assert any(f'data-step="{r.status().step}"' in m.value for m in again.markdown)


def forge_click(at: AppTest, key: str) -> AppTest:
    """Send a disabled button's click anyway (what a hand-made websocket message can do)."""
    button = at.button(key=key)
    assert button.disabled
    button.proto.disabled = False
    return button.click().run()


CONTROLS = ("pg_play", "pg_pause", "pg_step_d", "pg_step_g", "pg_step", "pg_reset")


def test_a_copied_address_watches_and_the_owner_keeps_control(monkeypatch):
    a = playground()
    a.button(key="pg_step").click().run()
    a.button(key="pg_step").click().run()
    r = run_of(a)
    owner = a.session_state[runtime.OWNER_KEY]
    assert r.status().step == 2 and r.owned_by(owner)
    assert not any(i.value.startswith("You are watching") for i in a.info)

    b = playground({"run": r.run_id})                          # another browser opens the copied address
    assert run_of(b) is r and b.session_state[runtime.OWNER_KEY] != owner
    assert any(i.value.startswith("You are watching a run started in another browser") for i in b.info)
    assert all(b.button(key=k).disabled for k in CONTROLS) and b.select_slider(key="pg_speed").disabled
    assert any(f'data-step="2"' in m.value for m in b.markdown)          # the same live view
    # a forged command (the disabled button's trigger sent anyway) is refused by the server, with a sentence
    for key in ("pg_step", "pg_reset", "pg_play"):         # Streamlit drops a disabled widget's click ...
        forge_click(b, key)
    assert r.status().step == 2 and r.status().state == "paused" and run_of(b) is r
    # ... and with the buttons on (as if the page forgot to turn them off) the run itself refuses, in a sentence
    monkeypatch.setattr(runtime, "watching", lambda obj: False)
    b.run()
    for key in ("pg_step", "pg_reset", "pg_play", "pg_step_d"):
        b.button(key=key).click().run()
        assert any("Only the browser that started this run can" in e.value for e in b.error), key
    assert r.status().step == 2 and r.status().state == "paused" and run_of(b) is r
    monkeypatch.undo()

    again = playground({"run": r.run_id}, owner=owner)          # the owner's refresh: its cookie comes back
    assert run_of(again) is r and not any(i.value.startswith("You are watching") for i in again.info)
    assert not any(again.button(key=k).disabled for k in ("pg_play", "pg_step", "pg_reset"))
    again.button(key="pg_step").click().run()
    assert r.status().step == 3


def test_make_my_own_copy_forks_the_watched_run():
    a = playground()
    for _ in range(3):
        a.button(key="pg_step").click().run()
    r = run_of(a)
    b = playground({"run": r.run_id})
    b.button(key="pg_copy").click().run()
    assert not b.exception and not b.error
    mine = run_of(b)
    assert mine is not None and mine is not r and mine.owned_by(b.session_state[runtime.OWNER_KEY])
    assert mine.status().step == 3 and mine.cfg == r.cfg
    assert list(mine.snapshot().history["step"]) == list(r.snapshot().history["step"])
    assert not any(i.value.startswith("You are watching") for i in b.info)
    assert not any(b.button(key=k).disabled for k in ("pg_play", "pg_step", "pg_reset"))
    b.button(key="pg_step").click().run()
    assert mine.status().step == 4 and r.status().step == 3            # the copy trains on its own


def test_unknown_run_says_so():
    at = playground({"run": "nosuchrun"})
    assert not at.exception
    assert any("no longer on this server" in i.value for i in at.info)


def test_diverged_run_offers_restore():
    at = playground()
    for key, value in (("pg:optim.g_opt", "sgd"), ("pg:optim.d_opt", "sgd"), ("pg:objective.loss", "ls")):
        at.selectbox(key=key).set_value(value).run()
    at.number_input(key="pg:optim.g_lr").set_value(10.0).run()
    at.number_input(key="pg:optim.d_lr").set_value(10.0).run()
    at.button(key="pg_play").click().run()
    r = run_of(at)
    assert r.wait_for(lambda s: s.state == "diverged", timeout=20)
    at.run()
    assert not at.exception
    assert any("diverged" in e.value for e in at.error)
    at.button(key="pg_restore").click().run()
    assert not at.exception
    assert r.status().state == "paused"


def test_home_starts_the_default_run():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    at.button(key="home_start").click().run()
    assert not at.exception
    r = run_of(at)
    assert r is not None and r.cfg.data.name == "ring8"
    assert r.status().state in ("running", "queued", "finished")
    r.pause(owner=at.session_state[runtime.OWNER_KEY])


def test_drawing_turns_selections_into_points():
    from dashboard import settings
    click = settings.stroke_from_selection({"points": [{"x": 1.0, "y": -1.0}]}, seed=0)
    assert click.shape == (settings.BLOB_POINTS, 2)
    assert np.allclose(click.mean(axis=0), [1.0, -1.0], atol=0.05)
    box = settings.stroke_from_selection({"box": [{"x": [0.0, 1.0], "y": [2.0, 1.0]}], "points": []}, seed=1)
    assert len(box) >= 30 and box[:, 0].min() >= 0 and box[:, 1].max() <= 2.0 and box[:, 1].min() >= 1.0
    tri = {"lasso": [{"x": [0.0, 1.0, 0.0], "y": [0.0, 0.0, 1.0]}]}
    pts = settings.stroke_from_selection(tri, seed=2)
    assert len(pts) >= 20 and np.all(pts.sum(axis=1) <= 1.0 + 1e-9) and np.all(pts >= 0)
    assert settings.stroke_from_selection({}, seed=3) is None


def test_drawn_points_train():
    at = playground()
    at.selectbox(key="pg:data.name").set_value("draw").run()
    assert not at.exception
    assert any("draw at least" in e.value for e in at.error)          # nothing drawn yet
    rng = np.random.default_rng(0)
    at.session_state["pg_strokes"] = [rng.normal([1.0, 0.0], 0.05, (60, 2)), rng.normal([-1.0, 0.5], 0.05, (60, 2))]
    at.run()
    assert not at.error and any("120 points" in c.value for c in at.caption)
    at.button(key="pg_step").click().run()
    assert not at.exception and not at.error
    r = run_of(at)
    assert r is not None and r.cfg.data.name == "csv" and len(r.real) == 96   # 80% of 120 for training


def test_a_page_redrawn_on_the_same_snapshot_builds_no_figure(monkeypatch):
    """With a class on one server most live pages are queued or paused: their redraws show a snapshot already
    drawn. Rebuilding its plotly figures was most of the server's page work (py-spy, 30 students on one core);
    a redraw of the same snapshot now reuses them, and a new snapshot builds them again."""
    from dashboard import figures
    calls = []
    for name in ("points_figure", "loss_figure", "d_output_figure", "grad_norm_figure", "quality_figure",
                 "model_diagram"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    at = playground()
    calls.clear()
    at.button(key="pg_step_d").click().run()          # a run, paused at step 1
    r = run_of(at)
    assert r is not None and r.status().state == "paused"
    first = sorted(calls)
    assert {"points_figure", "loss_figure", "model_diagram"} <= set(first)
    calls.clear()
    at.run()
    at.run()                                          # two redraws of the same snapshot
    assert calls == [] and not at.exception
    at.button(key="pg_step_d").click().run()          # a new snapshot: drawn anew
    assert sorted(calls) == first


EQUILIBRIUM_OF = {   # a phrase of each loss's own equilibrium sentence
    "minimax": "D*(x) = p_data(x) / (p_data(x) + p_g(x)), is ½ everywhere",
    "ns": "the best D is D(x) = ½ everywhere",
    "ls": "midway between its targets, 0 for generated and 1 for real",
    "wgan": "E[D(real)] − E[D(fake)] → 0, and its values themselves mean nothing",
    "hinge": "D's best loss is 2 − 2·TV(p_data, p_g)",
}


@pytest.mark.parametrize("loss", list(EQUILIBRIUM_OF))
def test_each_loss_explains_its_own_equilibrium(loss):
    """Issue #20.3: with hinge, Wasserstein or least squares the text still ended "D(x) = ½ everywhere"."""
    at = playground()
    at.selectbox(key="pg:objective.loss").set_value(loss).run()
    text = " ".join(c.value for c in at.caption if "each arrow is" in c.value)
    assert EQUILIBRIUM_OF[loss] in text
    assert all(other not in text for k, other in EQUILIBRIUM_OF.items() if k != loss)
    if loss in ("wgan", "hinge"):
        assert "½" not in text                        # their D is a raw score, not a probability

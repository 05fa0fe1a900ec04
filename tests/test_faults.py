"""Faults a class produces, on the pages (AppTest, no browser) and the runtime behind them.

- a run that turns NaN in the middle of training: the page says it diverged, offers the last good state, and the
  restored run is finite and trains on (Playground, and the image pages' own restore button);
- a refresh while a run trains: the new session finds the same run, still training, with its whole history;
- a closed tab: the session-release hook starts the grace period, the reaper then stops the run, joins its
  thread and the trainer's memory is freed (no reference left);
- MNIST asked for on a machine without the files (and without a network): a sentence, no run, no exception,
  and the bundled datasets still train.
Kills during a checkpoint save are in test_checkpoint.py (test_sigkill_mid_write_leaves_a_loadable_file).
"""
from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path
from urllib.error import URLError

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from dashboard import runtime
from ganae.runner import runner_threads

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = ROOT / "dashboard" / "views"
TIMEOUT = 60
APPTEST_SESSION = "test session id"        # every AppTest runs as this Streamlit session


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()          # the registry's on_release stops every run and joins its thread


def playground(query: dict | None = None, owner: str | None = None) -> AppTest:
    """The Playground in a new session; `owner`: the browser's secret it brings (its cookie: a refresh)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    if owner is not None:
        at.session_state[runtime.OWNER_KEY] = owner
    at.run()
    at.switch_page("views/playground.py").run()
    assert not at.exception, at.exception
    return at


def run_of(at: AppTest):
    run_id = at.query_params.get("run")
    if isinstance(run_id, list):
        run_id = run_id[0]
    return runtime.registry().get(run_id)


def shown_step(at: AppTest) -> int | None:
    for m in at.markdown:
        if 'data-step="' in m.value:
            return int(m.value.split('data-step="')[1].split('"')[0])
    return None


def poison_d(trainer) -> None:
    """Every weight of D becomes NaN: the next step's losses are NaN (as after an exploding update)."""
    with torch.no_grad():
        for p in trainer.model.d.parameters():
            p.fill_(math.nan)


def finite(runner) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in runner.state_dict().values() if v.is_floating_point())


# ---- NaN in the middle of a run -------------------------------------------------------------------------------
def test_nan_mid_run_on_the_playground_offers_the_last_good_state_and_training_goes_on():
    at = playground()
    at.button(key="pg_play").click().run()
    r = run_of(at)
    assert r is not None
    # a good state is copied every 200 healthy steps: train past the first copy after step 0
    assert r.wait_for(lambda s: (s.last_good_step or 0) >= 200, timeout=60), r.status()
    r.call(poison_d)                                  # between two chunks, on the runner's thread
    assert r.wait_for(lambda s: s.state == "diverged", timeout=20)
    good = r.status().last_good_step
    assert good >= 200
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("diverged" in e and "nan" in e.lower() for e in errors), errors
    assert at.button(key="pg_restore").label.endswith(f"(step {good:,})")
    assert at.button(key="pg_play").disabled is False          # Train is offered but refused while diverged
    at.button(key="pg_play").click().run()
    assert not at.exception and r.status().state == "diverged"

    at.button(key="pg_restore").click().run()
    assert not at.exception
    s = r.status()
    assert s.state == "paused" and s.step == good and "Restored the last good state" in s.message
    assert finite(r)
    assert shown_step(at) == good
    at.button(key="pg_play").click().run()                      # training goes on from there
    assert r.wait_for(lambda s: s.step >= good + 50, timeout=30)
    assert r.status().state == "running" and math.isfinite(r.snapshot().last["loss_d"])
    at.button(key="pg_pause").click().run()
    assert not at.exception


def test_nan_on_an_image_page_offers_its_restore_button():
    at = AppTest.from_file(str(PAGES / "ae_lab.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    at.radio(key="ae:model.arch").set_value("mlp")
    at.button(key="ae:step").click().run()                       # builds the run, trains 10 steps
    r = runtime.registry().get(at.session_state["ae_lab:run"])
    assert r is not None and r.status().step == 10
    r.call(poison_d if hasattr(r.trainer.model, "d") else _poison_all)
    at.button(key="ae:step").click().run()                       # the next steps turn NaN
    assert not at.exception
    assert r.status().state == "diverged"
    assert any("diverged" in e.value for e in at.error), [e.value for e in at.error]
    restore = [b for b in at.button if b.key == f"restore_{r.run_id}"]
    assert restore, [b.key for b in at.button]
    restore[0].click().run()
    assert not at.exception
    assert r.status().state == "paused" and r.status().step == r.status().last_good_step == 0
    assert finite(r)


def _poison_all(trainer) -> None:
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(math.nan)


# ---- a refresh while training -----------------------------------------------------------------------------------
def test_a_refresh_during_training_finds_the_run_still_training_with_its_history():
    at = playground()
    at.button(key="pg_play").click().run()
    r = run_of(at)
    assert r.wait_for(lambda s: s.step >= 100, timeout=30)
    n_before = len(r.snapshot().history["step"])
    shown_before = r.snapshot().step                             # the page shows the published snapshot's step
    step_before = r.status().step

    again = playground({"run": r.run_id}, owner=at.session_state[runtime.OWNER_KEY])   # a refresh: same browser
    assert not again.exception and not again.error
    assert run_of(again) is r
    assert r.status().state == "running"                         # the refresh did not pause it
    assert (shown_step(again) or 0) >= shown_before
    assert len(r.snapshot().history["step"]) >= n_before
    assert r.snapshot().history["step"][0] == 1                  # the history still starts at the first step
    assert r.wait_for(lambda s: s.step > step_before + 50, timeout=30)
    again.button(key="pg_pause").click().run()
    assert r.status().state == "paused"


# ---- a closed tab -------------------------------------------------------------------------------------------------
def test_a_closed_tab_frees_its_run_after_the_grace_period():
    reg = runtime.registry()
    grace = reg.grace_s
    at = playground()
    at.button(key="pg_play").click().run()
    r = run_of(at)
    assert r.wait_for(lambda s: s.step >= 20, timeout=30)
    run_id, thread = r.run_id, r.thread
    trainer_ref, runner_ref = weakref.ref(r.trainer), weakref.ref(r)
    del r
    reg.grace_s = 0.5
    try:
        from streamlit.runtime import caching
        caching.clear_session_resource_cache(APPTEST_SESSION)   # what Streamlit does when the tab's socket closes
        assert reg.reap() == []                                  # within the grace period: kept (a blip, a refresh)
        assert run_id in reg and thread.is_alive()
        time.sleep(0.6)
        assert run_id in reg.reap()          # what the reaper thread does every REAP_EVERY_S (with the session's
                                             # other runs: every AppTest shares one session id)
    finally:
        reg.grace_s = grace
    assert run_id not in reg
    assert not thread.is_alive()                                 # stopped and joined
    assert f"ganae-run-{run_id}" not in runner_threads()
    held = [x.run_id for x in reg.admission._holders] + [x.run_id for x in reg.admission._queue]
    assert run_id not in held                                    # its training slot is free (other tests' runs
                                                                 # may hold slots in this shared registry)
    del at
    gc.collect()
    assert runner_ref() is None, gc.get_referrers(runner_ref())
    assert trainer_ref() is None, "the trainer (its weights, data, history) is still referenced"


def test_the_reaper_thread_frees_runs_on_its_own():
    from ganae.config import RunConfig
    from ganae.runner import Registry
    reg = Registry(limit=1, grace_s=0.2, reap_every_s=0.05)
    reg.start_reaper()
    try:
        cfg = RunConfig().with_updates(**{"data.n": 500, "model.g_hidden": 16, "model.d_hidden": 16})
        a, b = reg.create(cfg, session="tab-a"), reg.create(cfg, session="tab-b")
        a.play()
        b.play()
        assert b.status().state == "queued" and reg.stats()["queued"] == 1
        reg.session_gone("tab-a")                     # the training tab closes: its slot goes to the queued run
        deadline = time.monotonic() + 5
        while (a.run_id in reg or a.alive) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert a.run_id not in reg and not a.alive     # removed, then stopped and joined
        assert b.wait_for(lambda s: s.state == "running", timeout=5)
        stats = reg.stats()
        assert stats["runs"] == 1 and stats["running"] == 1 and stats["runner_threads"] >= 1
        assert b.run_id in reg                        # its tab is still open
    finally:
        reg.shutdown()
    assert reg.stats()["runs"] == 0 and not b.alive


def test_runner_threads_carry_their_name_into_the_os():
    import glob
    from ganae.config import RunConfig
    from ganae.runner import Runner
    r = Runner(RunConfig().with_updates(**{"data.n": 500, "model.g_hidden": 16, "model.d_hidden": 16}))
    try:
        def names() -> list[str]:
            out = []
            for path in glob.glob("/proc/self/task/*/comm"):
                try:
                    out.append(Path(path).read_text().strip())
                except OSError:
                    pass
            return out

        if not names():
            pytest.skip("no /proc on this system")
        want = f"ganae-run-{r.run_id}"[:15]
        deadline = time.monotonic() + 5               # the thread names itself as it starts
        while want not in names() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert want in names()
    finally:
        r.stop()
    assert not r.alive


# ---- MNIST without its files ---------------------------------------------------------------------------------------
@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """Run the pages in an empty folder (no data/MNIST) with the network unreachable."""
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("view,prefix,key", [("image_gan.py", "ig:", "image_gan"), ("ae_lab.py", "ae:", "ae_lab")])
def test_offline_mnist_says_so_and_the_page_keeps_working(no_mnist, view, prefix, key):
    baseline = len(runtime.registry())
    at = AppTest.from_file(str(PAGES / view), default_timeout=TIMEOUT).run()
    assert not at.exception
    at.selectbox(key=prefix + "data.name").set_value("mnist").run()
    assert not at.exception
    assert any("MNIST is not on this machine" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key=prefix + "play").click().run()                  # Train anyway
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("MNIST files were not found" in e and "train-images-idx3-ubyte" in e for e in errors), errors
    assert len(runtime.registry()) == baseline                    # no half-built run left behind

    at.checkbox(key=prefix + "download").check().run()           # "download" without a network
    at.button(key=prefix + "play").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Downloading MNIST failed" in e and "digits or sprites" in e for e in errors), errors
    assert len(runtime.registry()) == baseline

    at.selectbox(key=prefix + "data.name").set_value("digits").run()
    if at.radio(key=prefix + "model.arch").value != "mlp":
        at.radio(key=prefix + "model.arch").set_value("mlp").run()
    at.button(key=prefix + "step").click().run()                  # the bundled digits still train
    assert not at.exception and not at.error, [e.value for e in at.error]
    r = runtime.registry().get(at.session_state[f"{key}:run"])
    assert r is not None and r.cfg.data.name == "digits" and r.status().step == 10
    runtime.registry().remove(r.run_id)


# ---- a full class: live pages redraw less often instead of starving the server -----------------------------------
def test_live_redraws_space_out_when_many_pages_are_live(monkeypatch):
    from ganae.runner import RunStatus

    def status(state: str) -> RunStatus:
        return RunStatus("r", state, "", 0, 100, 1 if state == "queued" else 0, 0, 0.0, 1, 0, "")

    class Counts:
        running = queued = 0

        def counts(self):
            return {"running": self.running, "queued": self.queued, "runs": self.running + self.queued,
                    "limit": 2}

    reg = Counts()
    monkeypatch.setattr(runtime, "registry", lambda: reg)
    monkeypatch.setattr(runtime, "REFRESH_S", 1.0)
    monkeypatch.setattr(runtime, "FRAME_COST_S", 0.15)
    monkeypatch.setattr(runtime, "REDRAW_SHARE", 0.5)             # (the default is 0.35: below)
    assert runtime.run_every(None) is None
    assert runtime.run_every(status("paused")) is None and runtime.run_every(status("finished")) is None
    # a watcher's page keeps looking at a paused run: only the owner can resume it, the watcher must notice
    assert runtime.run_every(status("paused"), watching=True) == runtime.WATCH_EVERY_S
    assert runtime.run_every(status("finished"), watching=True) == runtime.WATCH_EVERY_S
    reg.running = 1
    assert runtime.run_every(status("running")) == 1.0            # one page: the normal rate
    reg.running, reg.queued = 2, 1
    assert runtime.run_every(status("running")) == 1.0            # 3 pages x 0.15 s: half of the GIL is enough
    assert runtime.run_every(status("queued")) == 2.0             # a queued page only waits for its slot
    reg.running, reg.queued = 2, 18                                # a class of 20 on one server process
    assert runtime.run_every(status("running")) == pytest.approx(20 * 0.15 / 0.5)
    assert runtime.run_every(status("queued")) == pytest.approx(6.0)
    monkeypatch.setattr(runtime, "REDRAW_SHARE", 0.35)             # GANAE_REDRAW_SHARE: more of the core trains
    assert runtime.run_every(status("running")) == pytest.approx(round(20 * 0.15 / 0.35, 1))
    monkeypatch.setattr(runtime, "FRAME_COST_S", 0.05)             # the defaults: 30 pages every 4.3 s, 7 every 1 s
    reg.running, reg.queued = 1, 29
    assert runtime.run_every(status("running")) == pytest.approx(4.3)
    reg.running, reg.queued = 1, 6
    assert runtime.run_every(status("running")) == 1.0
    monkeypatch.setattr(runtime, "REDRAW_SHARE", 0.5)
    monkeypatch.setattr(runtime, "FRAME_COST_S", 0.0)              # GANAE_FRAME_COST_S=0: fixed intervals
    assert runtime.run_every(status("running")) == 1.0 and runtime.run_every(status("queued")) == 1.0


def test_the_redraw_share_is_read_from_the_environment_and_kept_in_range(monkeypatch):
    assert [runtime.redraw_share(v) for v in ("0.5", "", None, "7", "0")] == [0.5, 0.35, 0.35, 1.0, 0.05]
    # the module's value is the environment's, read when it is imported (one process: the others are the function's)
    code = "import dashboard.runtime as r; print(r.REDRAW_SHARE)"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root), "GANAE_REDRAW_SHARE": "0.6"}).stdout
    assert float(out.split()[-1]) == 0.6


# ---- the server's Python stays free for training -------------------------------------------------------------------
def test_no_full_garbage_collection_walks_the_server_after_every_script_run():
    """Streamlit calls gc.collect(2) after every script run unless told not to; with torch, numpy, plotly and
    streamlit loaded that walk (~230,000 objects, ~0.1-0.2 s here) held the GIL on each live redraw, and training
    with the Playground open ran at 0.63 of its headless speed (0.90+ without it: README, live overhead)."""
    import tomllib
    conf = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert conf["runner"]["postScriptGC"] is False
    st.cache_resource.clear()
    gc.unfreeze()
    try:
        runtime.registry()                      # freezes what is loaded by then: the collector skips it for good
        assert gc.get_freeze_count() > 100_000
        assert len(gc.get_objects()) < gc.get_freeze_count() / 5
    finally:
        st.cache_resource.clear()


# ---- a fresh server with two students arriving together ----------------------------------------------------------
FIRST_USE_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from streamlit.testing.v1 import AppTest
from dashboard import runtime
runtime.registry()                     # the first page of the first student makes it
time.sleep(2)                          # (its warm-up thread trains a few steps in the background)
before = {m.split(".")[0] for m in sys.modules}
app, views = sys.argv[1] + "/dashboard/app.py", sys.argv[1] + "/dashboard/views/"
at = AppTest.from_file(app, default_timeout=60)
at.run()
at.switch_page("views/playground.py").run()
at.button(key="pg_play").click().run()
time.sleep(1.0)
at.run()                               # a live redraw: the plane and the charts go through the chart component
errors = [str(e.value) for e in at.exception]
for page, key in (("ae_lab", "ae:step"), ("image_gan", "ig:step")):
    at = AppTest.from_file(views + page + ".py", default_timeout=60).run()
    at.button(key=key).click().run()
    errors += [str(e.value) for e in at.exception]
late = {m.split(".")[0] for m in sys.modules} - before
print(json.dumps({"late": sorted(m for m in late if not m.startswith("_") and m not in sys.stdlib_module_names),
                  "errors": errors}))
"""


def test_serving_the_training_pages_imports_no_package_on_first_use():
    """Two students on a fresh server: whichever page thread first touched pandas imported it while the other
    read the half-made module (Streamlit's chart component imports it; plotly peeks at sys.modules), and one
    student got "partially initialized module 'pandas' has no attribute 'Series'" instead of the plane
    (benchmarks/classroom.py --clients wire). The registry now imports such packages up front, on the script
    thread, before any run exists: drawing and training the Playground, AE Lab and Image GAN must import no
    third-party package after that."""
    import json
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", FIRST_USE_PROBE, str(root)], capture_output=True, text=True,
                          timeout=240, cwd=root)
    assert proc.returncode in (0, -6, 134) and proc.stdout.strip(), proc.stderr[-3000:]   # (torch may abort at exit)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    assert out["late"] == [], f"imported while serving, not preloaded: {out['late']}"

"""Live runs in a training process beside the server (ganae/local_host.py, GANAE_TRAIN_PROCESS=1): the registry's
runs are RemoteRunners whose Runners (and cohorts) train in one child process, off the server's GIL, with the
numbers a local trainer gives; errors raised there reach the caller as themselves; admission and reaping act in
the child; a killed process turns its runs into state "error" with a sentence and Reset starts a new process; the
process ends with the server."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ganae import local_host, placement
from ganae.config import RunConfig
from ganae.data import DataError
from ganae.local_host import LOST, ProcessPlacement
from ganae.runner import Registry, runner_threads
from placement_checks import check_remote_run

ROOT = Path(__file__).resolve().parent.parent
CFG = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 32,
                                  "data.n": 500, "train.steps": 100_000, "train.device": "cpu"})


@pytest.fixture(scope="module")
def place():
    p = ProcessPlacement(cohorts=True)
    yield p
    p.close()


def registry(place, limit=-1) -> Registry:
    return Registry(limit=limit, grace_s=60.0, placement=place)


def gone(pid: int) -> bool:
    """Exited (a zombie that nobody reaped yet counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_runs_train_in_their_own_process_with_the_numbers_of_a_local_trainer(place):
    reg = registry(place)
    try:
        r = reg.create(CFG, session="s1")
        assert isinstance(r, placement.RemoteRunner) and reg.get(r.run_id) is r
        pid = r.call(lambda t: os.getpid())
        assert pid == place.pid != os.getpid() and comm(pid) == "ganae-train"
        assert r.node == f"training process {pid}"
        check_remote_run(r, CFG, past=80)
        assert runner_threads() == [] and f"ganae-run-{r.run_id}" in place.threads()    # its thread is there
        assert r.call(lambda t: t.step_count) == r.status().step         # a page's lambda travels
        with pytest.raises(RuntimeError, match="could not be sent.*pickle"):   # an answer that cannot travel
            r.call(lambda t: threading.Lock())
        r.set_speed(5, 0.5)
        assert r.status().speed == 5
    finally:
        reg.shutdown()
    assert place.call(place.host(), "runs") == []                        # shutdown stopped it in its process


def test_a_run_that_cannot_be_built_there_raises_its_own_error_here(place):
    reg = registry(place)
    try:
        with pytest.raises(DataError, match="does not exist"):
            reg.create(CFG.with_updates(**{"data.name": "csv", "data.path": "/no/such/points.csv"}), session="s")
        assert reg.counts()["runs"] == 0
    finally:
        reg.shutdown()


def test_admission_and_queue_live_in_the_process_and_reaping_stops_the_run_there():
    p = ProcessPlacement(cohorts=False)
    reg = Registry(limit=1, grace_s=0.3, placement=p)
    try:
        a, b = reg.create(CFG, session="s1"), reg.create(CFG, session="s2")
        a.play()
        b.play()
        assert a.wait_for(lambda s: s.state == "running", 10)
        assert b.status().state == "queued" and b.status().queue_position == 1
        time.sleep(local_host.COUNTS_TTL_S)            # (the server reuses an answer that young)
        assert p.admission().counts() == (1, 1) and reg.counts()["queued"] == 1 and reg.counts()["limit"] == 1
        reg.remove(a.run_id)                           # the slot passes on, in the process
        assert b.wait_for(lambda s: s.state == "running", 10)
        assert p.call(p.host(), "runs") == [b.run_id]
        reg.session_gone("s2")                         # its tab closed: reaped after the grace period
        deadline = time.monotonic() + 10
        while reg.get(b.run_id) is not None and time.monotonic() < deadline:
            reg.reap()
            time.sleep(0.1)
        assert reg.get(b.run_id) is None and p.call(p.host(), "runs") == []
        time.sleep(local_host.COUNTS_TTL_S)
        assert p.threads() == [] and p.admission().counts() == (0, 0)
    finally:
        reg.shutdown()
        p.close()


def test_an_arena_trains_in_the_server_on_a_slot_of_the_process(place):
    """The Arena's comparison trains in the web server (an ArenaRunner) while runs train in the process: its slot is
    one of the process's (a ticket by its run id, as on Ray). With one slot a run there queues while the comparison
    trains and gets the slot when it pauses; the comparison then queues behind the run."""
    from ganae.arena import ArenaRunner
    p = place
    reg = Registry(limit=1, grace_s=30, placement=p)
    arena = ArenaRunner(CFG, seeds=[0], steps=100_000, admission=p.admission(), grace_s=None)
    try:
        assert arena.run_id == f"arena-{arena.arena_id}"
        arena.play()
        assert arena.wait_for(lambda v: v.state == "running" and v.step > 0, 30)
        run = reg.create(CFG, session="s1")
        run.play()
        time.sleep(1.0)
        assert run.status().state == "queued" and run.status().queue_position == 1
        time.sleep(local_host.COUNTS_TTL_S)
        assert p.admission().counts() == (1, 1)
        arena.pause()                                  # its slot passes on, in the process
        assert run.wait_for(lambda s: s.state == "running", 10)
        arena.play(wait=False)
        assert arena.wait_for(lambda v: v.state == "queued", 10)
        run.pause()
        assert arena.wait_for(lambda v: v.state == "running", 10)
    finally:
        arena.stop()
        reg.shutdown()


def test_a_class_of_one_structure_trains_as_one_cohort_in_the_process(place):
    reg = registry(place, limit=1)
    try:
        runs = [reg.create(CFG.with_updates(**{"train.seed": i}), session=f"s{i}") for i in range(3)]
        for r in runs:
            r.play()
        assert all(r.wait_for(lambda s: s.state == "running" and s.cohort == 3, 20) for r in runs)
        stats = reg.stats()
        assert stats["cohorts"] == 1 and stats["members"] == [3] and stats["queued"] == 0
        assert "ganae-cohort-" in " ".join(place.threads())
        steps = [r.status().step for r in runs]
        time.sleep(1.0)
        assert all(r.status().step > s for r, s in zip(runs, steps))      # all three move, one slot
        runs[0].step(1, "d")                           # a command takes that member out, alone
        assert runs[0].status().state == "paused" and runs[1].status().state == "running"
    finally:
        reg.shutdown()


def test_the_registry_counts_its_runs_without_a_call_per_run(place, monkeypatch):
    """Every page's sidebar shows the registry's counts, which read every run's state: a state heard within
    STATE_TTL_S is reused, not asked of the process again (20 pages x 20 runs were 400 calls per redraw round)."""
    reg = registry(place)
    try:
        runs = [reg.create(CFG, session="s") for _ in range(3)]
        for r in runs:
            r.status()
        calls: list[str] = []
        real = place.call
        monkeypatch.setattr(place, "call", lambda host, method, *a, **k: (calls.append(method),
                                                                          real(host, method, *a, **k))[1])
        asked = []
        real_ask = type(place.admission())._ask
        monkeypatch.setattr(type(place.admission()), "_ask", lambda self, method, *a, **k: (
            asked.append(method), real_ask(self, method, *a, **k))[1])
        time.sleep(local_host.COUNTS_TTL_S)
        for _ in range(10):
            assert reg.counts()["runs"] == 3
        assert calls.count("poll") == 0 and asked.count("counts") == 1
        time.sleep(placement.STATE_TTL_S + 0.1)
        reg.counts()
        assert calls.count("poll") == 3                # older than that: asked again, once per run
    finally:
        monkeypatch.undo()
        reg.shutdown()


def test_a_killed_process_turns_its_runs_into_an_error_and_reset_starts_a_new_one(place):
    reg = registry(place)
    try:
        r = reg.create(CFG, session="s1")
        r.step(12)
        old, started = place.pid, place.started
        os.kill(old, 9)
        deadline = time.monotonic() + 10
        while r.status().state != "error" and time.monotonic() < deadline:
            time.sleep(0.05)
        s = r.status()
        assert s.state == "error" and s.message == LOST.format(step=12)
        with pytest.raises(RuntimeError, match="training process stopped"):
            r.play()
        r.reset()                                      # a new process, the same run id
        assert place.started == started + 1 and place.pid not in (None, old)
        r.step(3)
        assert (r.status().state, r.status().step) == ("paused", 3) and reg.get(r.run_id) is r
    finally:
        reg.shutdown()


def test_the_training_process_ends_with_the_server(tmp_path):
    code = ("import sys, time; from ganae.local_host import ProcessPlacement; p = ProcessPlacement(); "
            "print(p.pid, flush=True); time.sleep(120)")
    server = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = int(server.stdout.readline())
        assert comm(child) == "ganae-train"
        server.kill()                                  # the server dies without a word
        server.wait(10)
        deadline = time.monotonic() + 15
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(child)
    finally:
        server.kill()


def test_the_dashboard_trains_in_the_process_when_asked_and_says_so(monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import runtime
    monkeypatch.setenv(placement.PROCESS_ENV, "1")
    st.cache_resource.clear()                          # a registry of its own, made with the variable set
    try:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90)
        at.run()
        at.switch_page("views/playground.py").run()
        at.button(key="pg_play").click().run()
        assert not at.exception, at.exception
        run_id = at.query_params["run"]
        r = runtime.registry().get(run_id[0] if isinstance(run_id, list) else run_id)
        assert isinstance(r, placement.RemoteRunner) and r.call(lambda t: os.getpid()) != os.getpid()
        assert r.wait_for(lambda s: s.step > 0, 20)
        at.run()
        assert any("training in its own process" in c.value for c in at.sidebar.caption)
    finally:
        st.cache_resource.clear()                      # the registry's on_release stops the run
        for p in runtime.PLACEMENT:
            p.close()
        runtime.PLACEMENT[:] = []


def test_answers_travel_as_plain_pickles_and_functions_still_travel():
    """The training process answers every page's poll; a snapshot pickled by the C pickler costs a fifth of
    cloudpickle's. Data goes as a plain pickle (no cloudpickle reconstructor in it), a function made at run time
    (a page's `runner.call(lambda ...)` may return one) still travels, by cloudpickle; both read with pickle.loads."""
    import pickle
    from ganae.runner import Runner
    r = Runner(CFG)
    try:
        r.step(3)
        status, snap = r.frame()
    finally:
        r.stop()
    blob = local_host.answer_bytes(("ok", (status, snap)))
    assert b"cloudpickle" not in blob
    kind, (status2, snap2) = pickle.loads(blob)
    assert kind == "ok" and status2 == status and snap2.step == snap.step == 3
    assert snap2.history["step"].tolist() == snap.history["step"].tolist()
    offset = 5
    made = local_host.answer_bytes(("ok", lambda x: x + offset))
    assert b"cloudpickle" in made and pickle.loads(made)[1](1) == 6

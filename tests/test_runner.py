"""Runner and Registry: the background training thread, its controls, admission, reaping, divergence."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from ganae.config import RunConfig
from ganae.runner import Registry, Runner
from ganae.trainer import Trainer

torch.set_num_threads(1)

FAST = RunConfig().with_updates(**{"data.n": 2000, "train.steps": 100_000, "model.g_hidden": 32,
                                   "model.d_hidden": 32, "train.batch_size": 64})


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@pytest.fixture
def runners():
    made: list[Runner] = []
    yield made
    for r in made:
        r.stop()
    assert all(not r.alive for r in made)


def test_play_grows_and_pause_stops(runners):
    r = Runner(FAST)
    runners.append(r)
    assert r.status().state == "idle" and r.status().step == 0
    r.play()
    assert wait_until(lambda: r.snapshot().step >= 50)
    assert r.status().state == "running"
    assert len(r.snapshot().history["step"]) > 0
    r.pause()
    assert r.status().state == "paused"
    s0 = r.status().step
    time.sleep(0.4)
    assert r.status().step == s0
    assert r.snapshot().step == s0          # pausing publishes the latest state


def test_a_frame_is_one_moment_its_status_step_is_its_snapshot_step(runners):
    """Issue #20.6: the Playground's plot title (the snapshot's step) lagged its state line (the live counter):
    "Step 1,006" over "step 1,042"."""
    r = Runner(FAST, publish_every_s=5.0)             # snapshots seldom: the trainer runs well ahead of them
    runners.append(r)
    r.play()
    assert wait_until(lambda: r.status().step > r.snapshot().step + 20, 20)
    status, snap = r.frame()
    assert status.step == snap.step and snap is r.snapshot()
    assert status.state == "running" and status.version == r.status().version
    assert r.status().step > status.step                # status() keeps counting live
    r.pause()
    status, snap = r.frame()
    assert status.state == "paused" and status.step == snap.step == r.status().step


def test_first_snapshot_after_play_has_data(runners):
    """What a page waits for after Train: a published snapshot past the step it started from, with history."""
    r = Runner(FAST)
    runners.append(r)
    r.step(3)
    assert r.snapshot().step == 3
    r.play()
    assert r.wait_for_snapshot(3, timeout=10)
    snap = r.snapshot()
    assert snap.step > 3 and snap.history["step"][-1] == snap.step
    assert r.initial.step == 0 and r.initial.history["step"].size == 0     # where the run started stays at hand
    r.pause()
    t0 = time.monotonic()                      # not active: no waiting for a snapshot that will not come
    assert r.wait_for_snapshot(r.snapshot().step, timeout=5) is False
    assert time.monotonic() - t0 < 1.0
    r.reset()
    assert r.initial is r.snapshot() and r.initial.step == 0


def test_step_d_changes_only_d(runners):
    r = Runner(FAST)
    runners.append(r)
    before = r.state_dict()
    r.step(5, "d")
    after = r.state_dict()
    assert r.status().step == 5 and r.snapshot().step == 5
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("d.") for k in changed)
    assert any(k.startswith("d.") for k in changed)
    r.step(3, "g")
    again = r.state_dict()
    changed_g = {k for k in after if not torch.equal(after[k], again[k])}
    assert changed_g and all(k.startswith("g.") for k in changed_g)


def test_reset_clears_history_and_keeps_config(runners):
    r = Runner(FAST)
    runners.append(r)
    r.step(20)
    assert len(r.snapshot().history["step"]) == 20
    r.reset()
    st = r.status()
    assert st.state == "idle" and st.step == 0
    assert len(r.snapshot().history["step"]) == 0
    assert r.cfg == FAST.validate()


def test_speed_gives_whole_frames(runners):
    r = Runner(FAST, speed=7)
    runners.append(r)
    r.play()
    assert wait_until(lambda: r.snapshot().step >= 14, timeout=5)
    r.pause()
    assert r.status().speed == 7
    assert r.snapshot().step % 7 == 0


def test_finished_state(runners):
    r = Runner(FAST.with_updates(**{"train.steps": 30}))
    runners.append(r)
    r.play()
    assert r.wait_for(lambda s: s.state == "finished", timeout=10)
    assert r.status().step == 30 and "30" in r.status().message
    r.play()                                # go on past the planned length
    assert r.wait_for(lambda s: s.step > 30, timeout=10)


def test_admission_queue_and_promotion():
    reg = Registry(limit=1)
    try:
        a, b = reg.create(FAST), reg.create(FAST)
        a.play()
        b.play()
        assert a.status().state == "running"
        assert b.status().state == "queued" and b.status().queue_position == 1
        assert reg.counts()["running"] == 1 and reg.counts()["queued"] == 1
        s = b.status().step
        time.sleep(0.3)
        assert b.status().step == s          # queued runs do not train
        a.pause()
        assert b.wait_for(lambda st: st.state == "running", timeout=5)
        assert wait_until(lambda: b.status().step > s)
        c = reg.create(FAST)
        c.play()
        assert c.status().state == "queued"
        reg.remove(b.run_id)                 # stopping frees the slot as well
        assert c.wait_for(lambda st: st.state == "running", timeout=5)
    finally:
        reg.shutdown()


def test_reaper_frees_untouched_runs_and_joins_threads():
    baseline = threading.active_count()
    reg = Registry(limit=None, grace_s=0.3, reap_every_s=0.05)
    reg.start_reaper()
    kept = reg.create(FAST, session="viewer")
    gone = reg.create(FAST)
    gone.play()
    thread = gone.thread
    assert wait_until(lambda: gone.run_id not in reg, timeout=5)
    assert wait_until(lambda: not thread.is_alive(), timeout=5)
    assert kept.run_id in reg                     # a viewer is attached: never reaped
    reg.session_gone("viewer")
    assert reg.touch(kept.run_id)                  # touched: the grace period restarts
    assert wait_until(lambda: kept.run_id not in reg, timeout=5)
    reg.shutdown()
    assert wait_until(lambda: threading.active_count() == baseline, timeout=5)


class PoisonedTrainer(Trainer):
    """A trainer whose D weights can be set to NaN: the next step's losses are NaN."""
    poison_at: int | None = None

    def step(self, n=1, part="both"):
        if self.poison_at is not None and self.step_count >= self.poison_at:
            with torch.no_grad():
                next(self.model.d.parameters()).fill_(math.nan)
        return super().step(n, part)


def test_divergence_and_restore_last_good(runners):
    r = Runner(FAST, PoisonedTrainer, good_every_steps=10)
    runners.append(r)
    r.step(40)
    r.call(lambda t: setattr(t, "poison_at", 55))
    r.play()
    assert r.wait_for(lambda s: s.state == "diverged", timeout=10)
    st = r.status()
    assert "diverged" in st.message and "nan" in st.message.lower()
    assert st.last_good_step is not None and 40 <= st.last_good_step <= 55
    assert not math.isfinite(r.snapshot().history["loss_d"][-1])
    r.play()                                      # refused while diverged
    assert r.status().state == "diverged"
    r.restore_last_good()
    st = r.status()
    assert st.state == "paused" and st.step == st.last_good_step
    params = r.state_dict()
    assert all(bool(torch.isfinite(v).all()) for v in params.values())
    r.call(lambda t: setattr(t, "poison_at", None))
    r.step(5)
    assert math.isfinite(r.snapshot().last["loss_d"])


def test_absurd_learning_rate_diverges_and_restores(runners):
    """lr = 10 with SGD blows up within a few steps: 'diverged' with a message, never a crash."""
    cfg = FAST.with_updates(**{"optim.d_opt": "sgd", "optim.g_opt": "sgd", "optim.d_lr": 10.0,
                               "optim.g_lr": 10.0, "objective.loss": "ls"})
    r = Runner(cfg)
    runners.append(r)
    r.play()
    assert r.wait_for(lambda s: s.state == "diverged", timeout=15)
    assert "Lower the learning rates" in r.status().message
    r.restore_last_good()
    assert r.status().state == "paused" and r.status().step == 0
    assert all(bool(torch.isfinite(v).all()) for v in r.state_dict().values())


def test_errors_become_a_sentence(runners):
    class Broken(Trainer):
        def step(self, n=1, part="both"):
            raise KeyError("boom")

    r = Runner(FAST, Broken)
    runners.append(r)
    r.play()
    assert r.wait_for(lambda s: s.state == "error", timeout=5)
    msg = r.status().message
    assert "boom" in msg and "Traceback" not in msg and msg.endswith(".")


def test_config_errors_reach_the_caller():
    from ganae.config import ConfigError
    baseline = threading.active_count()
    with pytest.raises(ConfigError):
        Runner(FAST.with_updates(**{"optim.g_lr": 0.0}))
    assert threading.active_count() == baseline


def test_evaluations_are_recorded(runners):
    r = Runner(FAST, eval_every_steps=50, eval_every_s=100.0)
    runners.append(r)
    r.step(120)
    evals = r.snapshot().evals
    if r.status().eval_note:
        pytest.skip(r.status().eval_note)
    assert len(evals["step"]) >= 2 and "modes" in evals


def test_stop_joins_and_refuses_more_commands():
    r = Runner(FAST)
    r.play()
    assert r.stop() and not r.alive
    with pytest.raises(RuntimeError):
        r.play()


def test_training_threads_can_run_nicer_than_the_server(runners):
    """A class server gives clicks and redraws the CPU before training steps: the training thread has its own
    niceness (Linux), a plain runner keeps the process's."""
    import os
    base = os.getpriority(os.PRIO_PROCESS, 0)
    plain, nice = Runner(FAST), Runner(FAST, nice=7)
    runners.extend([plain, nice])
    for r in (plain, nice):
        r.step(1)                                   # the thread is up and has set itself
    assert os.getpriority(os.PRIO_PROCESS, plain.thread.native_id) == base
    assert os.getpriority(os.PRIO_PROCESS, nice.thread.native_id) == min(19, base + 7)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base          # the calling thread is untouched
    reg = Registry(limit=2, runner_kwargs={"nice": 3})
    try:
        r = reg.create(FAST)
        r.step(1)
        assert os.getpriority(os.PRIO_PROCESS, r.thread.native_id) == min(19, base + 3)
    finally:
        reg.shutdown()


def training_behind_a_gate(runners, max_wait_s: float):
    """A runner that trains (20 steps done) and gives way to a gate of its own."""
    from ganae.runner import Gate
    gate = Gate(max_wait_s=max_wait_s)
    r = Runner(FAST, gate=gate)
    runners.append(r)
    r.play()
    assert wait_until(lambda: r.status().step >= 20)
    return r, gate


def test_the_gate_holds_training_back_while_a_page_is_drawn_but_not_its_commands(runners):
    r, gate = training_behind_a_gate(runners, max_wait_s=5.0)
    with gate.hold():
        assert gate.busy
        time.sleep(0.2)                               # the chunk under way ends (~20 ms)
        s0 = r.status().step
        time.sleep(0.4)
        assert r.status().step == s0                  # held back between chunks
        t0 = time.monotonic()
        r.pause()                                     # ... yet a click's command is answered at once
        assert time.monotonic() - t0 < 1.0 and r.status().state == "paused"
        step = r.snapshot().step
        r.play()                                      # the first chunk after Train is not held back
        assert r.wait_for_snapshot(step, timeout=2.0)
    assert not gate.busy
    s1 = r.status().step
    assert wait_until(lambda: r.status().step > s1 + 20)       # the gate open: training goes on


def test_the_gate_holds_back_no_longer_than_its_limit(runners):
    r, gate = training_behind_a_gate(runners, max_wait_s=0.1)
    with gate.hold():                                 # a page that never finishes must not stop training
        s0 = r.status().step
        assert wait_until(lambda: r.status().step > s0 + 5, timeout=5.0)
    gate.give_way(lambda: False)                      # not held: returns at once


# ---- ownership: the browser that started a run commands it, everyone else watches ----------------------------
def test_a_run_obeys_only_its_owner(runners):
    from ganae.runner import NotOwner
    r = Runner(FAST, owner="secret-a")
    runners.append(r)
    r.step(3, owner="secret-a")
    assert r.status().step == 3 and r.status().state == "paused"
    forged = [lambda t: r.play(owner=t), lambda t: r.pause(owner=t), lambda t: r.step(5, "d", owner=t),
              lambda t: r.reset(owner=t), lambda t: r.restore_last_good(owner=t),
              lambda t: r.set_speed(9, owner=t)]
    for command in forged:
        for token in ("secret-b", None, ""):           # a wrong token, none at all, an empty one
            with pytest.raises(NotOwner, match="Only the browser that started this run can .* you are watching"):
                command(token)
    s = r.status()
    assert (s.step, s.state, s.speed) == (3, "paused", 0)        # nothing reached the run
    assert r.owned_by("secret-a") and not r.owned_by("secret-b") and not r.owned_by(None)
    r.play(owner="secret-a")
    assert wait_until(lambda: r.status().step > 3)
    r.pause(owner="secret-a")
    assert r.status().state == "paused"


def test_a_run_without_owner_obeys_anyone(runners):
    r = Runner(FAST)                                   # a notebook, the CLI, a test
    runners.append(r)
    assert r.owned_by(None) and r.owned_by("anyone")
    r.step(2, owner="anyone")
    r.step(1)
    assert r.status().step == 3


def test_the_registry_records_the_owner_and_forks_into_an_owned_copy():
    from ganae.runner import NotOwner
    reg = Registry(limit=None)
    try:
        a = reg.create(FAST, session="sa", owner="secret-a")
        a.step(40, owner="secret-a")
        b = reg.fork(a.run_id, owner="secret-b", session="sb")
        assert b.run_id != a.run_id and reg.get(b.run_id) is b and len(reg) == 2
        assert b.owned_by("secret-b") and not b.owned_by("secret-a") and not a.owned_by("secret-b")
        with pytest.raises(NotOwner):
            a.step(1, owner="secret-b")
        # the copy is the run as it was: config, step, history, weights, optimiser state
        assert b.cfg == a.cfg and b.status().step == 40 == b.snapshot().step
        ha, hb = a.snapshot().history, b.snapshot().history
        assert list(hb["step"]) == list(ha["step"]) and len(hb["step"]) > 0
        assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
        opt_a = a.call(lambda t: t.model.optimizers["d"].state_dict()["state"])
        opt_b = b.call(lambda t: t.model.optimizers["d"].state_dict()["state"])
        assert opt_a and all(torch.equal(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"]) for i in opt_a)
        # the same next step from the same state (random state copied too) ...
        a.step(1, owner="secret-a")
        b.step(1, owner="secret-b")
        assert a.snapshot().last == b.snapshot().last
        # ... and then they are independent: training the copy leaves the source's curves as they were
        before = {k: v.copy() for k, v in a.snapshot().history.items()}
        b.step(30, owner="secret-b")
        assert b.status().step == 71 and a.status().step == 41
        after = a.snapshot().history
        assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)
        with pytest.raises(RuntimeError, match="no longer on this server"):
            reg.fork("nope", owner="secret-b")
    finally:
        reg.shutdown()


def test_a_runner_goes_on_from_a_trainer_restored_from_a_payload(runners):
    t = Trainer(FAST)
    t.step(25)
    r = Runner(Trainer.from_payload(t.payload()), owner="o")
    runners.append(r)
    s = r.status()
    assert (s.state, s.step) == ("idle", 25) and r.snapshot().step == 25 == r.initial.step
    assert list(r.snapshot().history["step"]) == list(t.history.arrays()["step"])
    r.step(5, owner="o")
    assert r.status().step == 30

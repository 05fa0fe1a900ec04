"""Class cohorts (ganae/cohort.py): the live runs of one structure train together, each exactly its solo run.

Every test here can fail on the property it names: a member whose trajectory drifts from its solo Trainer, a Step
that moves another member, a queue that admits runs by count instead of by cohort, a diverging member that stops
the others, a freed cohort that leaves a thread behind.
"""
from __future__ import annotations

import time

import pytest
import torch

from ganae import presets
from ganae import cohort as cohort_mod
from ganae.cohort import cohort_threads
from ganae.runner import Registry, runner_threads
from ganae.trainer import Trainer

from test_ensemble import assert_same_run, configs
from test_runner import wait_until

QUIET = {"eval_every_steps": 10**9, "eval_every_s": 1e9}     # no evaluations: the runs only train


def cfg(seed: int, **updates):
    return configs("ring8-vanilla", {"train.steps": 300, **updates}, seeds=(seed,))[0]


def registry(**kw) -> Registry:
    kw.setdefault("limit", 1)
    kw.setdefault("runner_kwargs", QUIET)
    return Registry(cohorts=True, grace_s=60, **kw)


def until(pred, timeout=60.0) -> bool:
    return wait_until(pred, timeout)


def solo(c, steps: int) -> Trainer:
    t = Trainer(c)
    t.step(steps)
    return t


def test_a_run_joining_and_leaving_cohorts_follows_its_solo_trajectory():
    """A trains 300 steps (its plan) while B and C come and go at other steps, with other learning rates and
    seeds; A itself leaves (Pause) and rejoins twice. Its weights, optimiser-driven curves and step equal a solo
    Trainer of its config -- with the step-dependent tricks on (linear lr decay, annealed instance noise)."""
    tricks = {"optim.lr_decay": "linear", "tricks.instance_noise": 0.2, "tricks.instance_noise_steps": 200}
    ca, cb, cc = cfg(0, **tricks), cfg(1, **{**tricks, "optim.d_lr": 5e-4}), cfg(2, **tricks, **{"optim.g_lr": 3e-4})
    reg = registry()
    try:
        a, b = reg.create(ca), reg.create(cb)
        b.step(37)                                    # B is at another step than A when they meet
        a.play(), b.play()
        assert until(lambda: a.status().cohort == 2 or a.status().step >= 300)
        assert until(lambda: a.status().step >= 60)
        a.pause()
        c = reg.create(cc)
        c.play()
        assert until(lambda: c.status().step >= 20)
        a.play()                                      # rejoins, now beside B and C
        assert until(lambda: a.status().step >= 150)
        b.pause()
        a.pause()
        a.play()
        assert until(lambda: a.status().state == "finished", timeout=120)
        assert a.status().step == 300
        reached = []
        a.call(lambda t: reached.append(t))
        assert_same_run(solo(ca, 300), reached[0])
        c.pause()
        b_now = b.status().step
        assert_same_run(solo(cb, b_now), b.copy_trainer())    # B too, stopped at a step of its own
    finally:
        reg.shutdown()


def test_step_d_acts_on_one_member_only():
    reg = registry()
    try:
        a, b = reg.create(cfg(0, **{"train.steps": 100_000})), reg.create(cfg(1, **{"train.steps": 100_000}))
        a.play(), b.play()
        assert until(lambda: a.status().cohort == 2 and b.status().cohort == 2)
        a.pause()
        at = a.status().step
        g_before = {k: v.clone() for k, v in a.call(lambda t: t.model.g.state_dict()).items()}
        d_before = {k: v.clone() for k, v in a.call(lambda t: t.model.d.state_dict()).items()}
        b_step = b.status().step
        a.step(5, "d")
        assert a.status().state == "paused" and a.status().step == at + 5
        g_after = a.call(lambda t: t.model.g.state_dict())
        d_after = a.call(lambda t: t.model.d.state_dict())
        assert all(torch.equal(g_before[k], g_after[k]) for k in g_before)          # D only: G untouched
        assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before)
        assert until(lambda: b.status().step > b_step + 20)                           # B trained on meanwhile
        assert b.status().state == "running" and b.status().cohort == 1             # alone in its cohort now
    finally:
        reg.shutdown()


def test_a_training_slot_holds_a_cohort_not_a_run(monkeypatch):
    """limit 1, cohorts of at most 2: two runs of one structure train together in the one slot; a third of that
    structure and one of another structure wait, in order; when the cohort frees its slot they go on."""
    monkeypatch.setattr(cohort_mod, "SLICE_S", 0.0)          # no turns here (next test)
    reg = registry(limit=1, cohort_size=2)
    try:
        long = {"train.steps": 100_000}
        r1, r2, r3 = (reg.create(cfg(s, **long)) for s in (0, 1, 2))
        other = reg.create(cfg(3, **{**long, "objective.loss": "ls"}))
        for r in (r1, r2, r3, other):
            r.play()
        assert until(lambda: r1.status().cohort == 2 and r2.status().cohort == 2)
        assert r3.status().state == "queued" and r3.status().queue_position == 1
        assert other.status().state == "queued" and other.status().queue_position == 2
        counts = reg.counts()
        assert counts["running"] == 1 and counts["queued"] == 2 and counts["training"] == 4
        r1.pause()                                   # the cohort keeps its slot: r2 still trains in it
        assert r3.status().state == "queued"
        r2.pause()                                   # empty: the slot goes to r3's cohort, first in line
        assert until(lambda: r3.status().state == "running")
        assert other.status().state == "queued" and other.status().queue_position == 1
        r1.play()                                    # joins r3's cohort at once (it has room): no queue
        assert until(lambda: r1.status().cohort == 2)
        assert other.status().state == "queued"
    finally:
        reg.shutdown()
    assert until(lambda: not cohort_threads() and not runner_threads(), timeout=10)


@pytest.mark.parametrize("slice_s", [0.0, 0.6])
def test_cohorts_take_turns_on_the_slots_when_other_setups_wait(monkeypatch, slice_s):
    """A mixed class, one slot: a cohort of two trains; a run of another setup waits. With turns (SLICE_S) the
    cohort gives the slot away after its turn and queues ("Taking turns"), the other setup trains, then the cohort
    again: both setups advance, one at a time. Without turns (0) the other setup waits as long as the cohort
    trains -- what a mixed class of 30 measured (276 s)."""
    monkeypatch.setattr(cohort_mod, "SLICE_S", slice_s)
    reg = registry(limit=1)
    try:
        long = {"train.steps": 1_000_000}
        a1, a2 = reg.create(cfg(0, **long)), reg.create(cfg(1, **long))
        b = reg.create(cfg(2, **{**long, "objective.loss": "ls"}))
        for r in (a1, a2):
            r.play()
        assert until(lambda: a1.status().cohort == 2 and a1.status().step > 0)
        b.play()
        assert b.status().state == "queued"
        seen_turn, most_running = set(), 0
        deadline = time.monotonic() + (8.0 if slice_s else 4.0)
        while time.monotonic() < deadline:
            for r in (a1, a2):
                s = r.status()
                if s.state == "queued":
                    seen_turn.add(s.message)
            most_running = max(most_running, reg.counts()["running"])
            time.sleep(0.05)
        assert most_running == 1                     # one slot, whoever holds it
        if not slice_s:
            assert b.status().step == 0 and b.status().state == "queued" and not seen_turn
            return
        assert b.status().step > 0                   # the other setup got its turn ...
        assert seen_turn and all(m.startswith("Taking turns") for m in seen_turn)
        a_step = a1.status().step                    # ... and the cohort gets the slot back after b's turn
        assert until(lambda: a1.status().step > a_step and a2.status().state == "running", timeout=20)
        assert reg.stats()["turns"] >= 2
    finally:
        reg.shutdown()
    assert until(lambda: not cohort_threads() and not runner_threads(), timeout=10)


def test_a_diverging_member_stops_alone():
    boom = {"optim.d_lr": 10.0, "optim.g_lr": 10.0, "optim.d_opt": "sgd", "optim.g_opt": "sgd",
            "objective.loss": "ls", "train.steps": 100_000}
    calm = {**boom, "optim.d_lr": 1e-3, "optim.g_lr": 1e-3}
    reg = registry()
    try:
        good, bad = reg.create(cfg(0, **calm)), reg.create(cfg(1, **boom))
        good.play(), bad.play()
        assert until(lambda: bad.status().state == "diverged", timeout=60)
        assert "diverged" in bad.status().message
        s = good.status().step
        assert until(lambda: good.status().step > s + 50)
        assert good.status().state == "running"
        bad.restore_last_good()                      # its own restore point, as a solo run has
        assert bad.status().state == "paused"
    finally:
        reg.shutdown()


def test_other_families_and_slow_motion_train_alone():
    reg = registry(limit=4)
    try:
        ae = reg.create(presets.get("digits-ae", **{"train.steps": 100_000, "train.device": "cpu"}))
        slow, fast = reg.create(cfg(0, **{"train.steps": 100_000})), reg.create(cfg(1, **{"train.steps": 100_000}))
        slow.set_speed(5)
        for r in (ae, slow, fast):
            r.play()
        assert until(lambda: ae.status().step > 5 and slow.status().step > 5 and fast.status().step > 5)
        assert [r.status().cohort for r in (ae, slow, fast)] == [0, 0, 1]
        assert reg.counts()["running"] == 3          # a slot each
        slow.set_speed(0)                             # now at full speed: joins the cohort of its structure
        assert until(lambda: fast.status().cohort == 2)
    finally:
        reg.shutdown()


def test_the_state_line_says_who_trains_together():
    from dashboard import runtime
    from ganae.runner import RunStatus

    def line(state, cohort):
        return runtime.state_line(RunStatus("r", state, "", 10, 100, 0, 0, 50.0, 1, 0, "", cohort))

    assert "training with 2 other runs of this setup" in line("running", 3)
    assert "training with 1 other run of this setup" in line("running", 2)
    assert "other run" not in line("running", 1) and "other run" not in line("paused", 0)


def test_a_student_who_presses_train_sees_a_frame_after_one_batched_step():
    """A run joining a cohort fresh (Train) is published after one batched step, not after a whole chunk: on a core
    shared with a class's pages a chunk is seconds of wall time, a step a few milliseconds."""
    reg = registry()
    try:
        a, b = reg.create(cfg(0, **{"train.steps": 10**6})), reg.create(cfg(1, **{"train.steps": 10**6}))
        a.play()
        assert until(lambda: a.status().step >= 300)        # A's chunks are long by now (its rate: ~50 ms of steps)
        assert cohort_mod.Cohort._chunk_size(reg.pool.cohort_of(a), [a]) > 5
        published: list[int] = []
        real = b._publish

        def spy(*args, **kwargs):
            published.append(b.trainer.step_count)
            return real(*args, **kwargs)
        b._publish = spy
        b.play()
        assert until(lambda: b.status().cohort == 2 and b.status().step > 0, 30)
        assert until(lambda: any(s > 0 for s in published), 30)     # (its status may say so before it publishes)
        assert [s for s in published if s > 0][0] == 1       # its first frame with steps: one, then the chunks go on
        assert until(lambda: b.status().step > 5, 30)
    finally:
        reg.shutdown()


def test_train_after_pause_publishes_the_snapshot_it_has(monkeypatch):
    """Train on a run whose trainer has not moved since its last snapshot (after Pause, or queued behind a full
    slot) publishes the new state with that same snapshot instead of drawing a new one: in class, Train is the most
    frequent command and its snapshot (D's heatmap, G's manifold) was a fifth of the training process's time."""
    monkeypatch.setattr(cohort_mod, "SLICE_S", 0.0)
    reg = registry(limit=1)
    try:
        a = reg.create(cfg(0, **{"train.steps": 100_000}))
        b = reg.create(cfg(1, **{"train.steps": 100_000, "objective.loss": "ls"}))    # another structure
        a.play()
        assert until(lambda: a.status().state == "running")
        b.step(2)                                        # a new snapshot: the trainer moved
        snap, version = b.snapshot(), b.status().version
        assert snap.step == 2
        calls = []
        real = b.trainer.snapshot
        monkeypatch.setattr(b.trainer, "snapshot", lambda *a_, **k: calls.append(1) or real(*a_, **k))
        b.play()                                         # the slot is a's cohort's: b waits, unchanged
        assert until(lambda: b.status().state == "queued")
        assert b.status().version > version and b.snapshot() is snap and not calls
        b.pause()
        b.step(1)                                        # it moved: a new snapshot
        assert b.snapshot().step == 3 and calls
    finally:
        reg.shutdown()


def test_members_overhead_budget_follows_the_cohorts_share_of_the_core(monkeypatch):
    """A cohort on a core shared with a class's pages gets a fraction of it; its members' publishing and evaluating
    budget (a share of the wall time) shrinks by that fraction, so they stay a small part of what the cohort
    computes. Here the cohort's thread is told it gets a quarter of the core (its CPU clock runs at 1/4)."""
    real = time.perf_counter
    reg = registry()
    try:
        a, b = (reg.create(cfg(s, **{"train.steps": 10**6})) for s in (0, 1))
        a.play(), b.play()
        assert until(lambda: a.status().cohort == 2 and b.status().cohort == 2)
        c = reg.pool.cohort_of(a)
        assert until(lambda: c.cpu_share > 0.5 and a._overhead_share > 0.25)     # its own core (about 1 / 2 each)
        monkeypatch.setattr(cohort_mod.time, "thread_time", lambda: 0.25 * real())
        assert until(lambda: abs(c.cpu_share - 0.25) < 0.05, 30)
        assert until(lambda: abs(a._overhead_share - c.cpu_share / 2) < 0.03 and b._overhead_share < 0.16, 30)
    finally:
        reg.shutdown()


def test_members_coming_and_going_regroup_the_ensemble_instead_of_rebuilding_it(monkeypatch):
    """A student pausing or pressing Train again does not rebuild the cohort's Ensemble from every member's Trainer
    (written back, then stacked again: 40 ms at 30 members, three quarters of a batched step): the Ensemble regroups, and
    only the leaver's Trainer is written back. One Ensemble is built, when the cohort first has two members."""
    built, whole = [], []

    class Counting(cohort_mod.Ensemble):
        def __init__(self, trainers):
            built.append(len(trainers))
            super().__init__(trainers)

        def views(self):
            whole.append(self.K)
            return super().views()
    monkeypatch.setattr(cohort_mod, "Ensemble", Counting)
    reg = registry()
    try:
        runs = [reg.create(cfg(s)) for s in range(3)]
        for r in runs:
            r.play()
        assert until(lambda: all(r.status().cohort == 3 for r in runs))
        for _ in range(2):
            runs[1].pause()
            assert until(lambda: runs[0].status().cohort == 2)
            runs[1].play()
            assert until(lambda: runs[1].status().cohort == 3)
        assert built in ([2], [3]) and whole == [], (built, whole)
        s0 = runs[0].status().step
        assert until(lambda: runs[0].status().step > s0 + 20)       # and the regrouped cohort trains on
        runs[0].pause()
        t = runs[0].copy_trainer()
        assert_same_run(solo(cfg(0), t.step_count), t)
    finally:
        reg.shutdown()


def test_with_cohorts_the_default_slots_let_a_mixed_class_train_all_its_setups_at_once(monkeypatch):
    """dashboard.runtime's default with cohorts is two slots per core (one without: solo runs only fight), so on
    a 2-core server a mixed class of 4 setups trains them all at once -- none queued, no turns -- where a slot per
    core made two of them wait for a turn. GANAE_MAX_TRAINING still decides when it is set."""
    from dashboard.runtime import training_slots
    assert training_slots(None, 2, cohorts=False) == 2 and training_slots("", 2, cohorts=True) == 4
    assert training_slots("3", 2, cohorts=True) == 3 and training_slots("0", 1, cohorts=True) == 2
    monkeypatch.setattr(cohort_mod, "SLICE_S", 0.6)
    setups = [{}, {"objective.loss": "ls"}, {"objective.loss": "hinge"}, {"tricks.ema": 0.999}]
    for slots, waiting in ((training_slots(None, 2, cohorts=False), 2), (training_slots(None, 2, cohorts=True), 0)):
        reg = registry(limit=slots)
        try:
            runs = [reg.create(cfg(i, **{"train.steps": 1_000_000, **u})) for i, u in enumerate(setups)]
            for r in runs:
                r.play()
            assert until(lambda: sum(r.status().state == "running" for r in runs) == min(slots, 4))
            queued = sum(r.status().state == "queued" for r in runs)
            assert queued == waiting and reg.counts()["running"] == min(slots, 4)
            if not waiting:
                assert until(lambda: all(r.status().step > 0 for r in runs))
        finally:
            reg.shutdown()
        assert until(lambda: not cohort_threads() and not runner_threads(), timeout=10)


def test_a_member_out_for_a_command_keeps_the_class_budget_and_alone_gets_the_whole_one():
    """Evaluations and snapshots take at most a share of the wall time, split among a cohort's members. A member
    that leaves for its student's Pause / Step D keeps its part of the class's budget (so the Step D a class clicks
    every few seconds does not buy each of them an evaluation); a run that trains alone again gets the whole budget.
    Here an evaluation is said to cost 1 s of CPU and the last one was 30 s ago: due with the whole budget
    (1 s / 5 % = 20 s), not with a member's part of it."""
    reg = registry(limit=2, runner_kwargs={"eval_every_steps": 10**9, "eval_every_s": 0.0})
    try:
        a, b = (reg.create(cfg(s, **{"train.steps": 10**6})) for s in (0, 1))
        a.play(), b.play()
        assert until(lambda: a.status().cohort == 2 and b.status().cohort == 2 and a.status().step > 5)
        a.pause()
        share = a._overhead_share
        assert share <= 0.55                                  # one of two (times the cohort's part of the core)
        evals = len(a.trainer.evals)
        a._eval_cost, a._last_eval_t = 1.0, time.perf_counter() - 30.0
        a.step(1, "d")
        assert a._overhead_share == share and len(a.trainer.evals) == evals           # no evaluation bought
        a.set_speed(2, frame_s=0.05)                          # slow motion trains alone, with the whole budget
        a.play()
        assert until(lambda: a._overhead_share == 1.0 and a.status().step > 20)
        a.pause()
        evals = len(a.trainer.evals)
        a._eval_cost, a._last_eval_t = 1.0, time.perf_counter() - 30.0
        a.step(1, "d")
        assert len(a.trainer.evals) == evals + 1
    finally:
        reg.shutdown()

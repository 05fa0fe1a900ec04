"""ArenaRunner: a Comparison advanced live by one thread; same seeds, fair rounds, mean ± sd over exactly K runs,
divergence of one variant reported not fatal, admission, pause / step, self-stop when nobody looks, export."""
from __future__ import annotations

import csv
import io
import math
import threading
import time

import numpy as np
import pytest

from ganae.arena import ArenaRunner, ArenaStore, describe_updates, stop_all
from ganae.compare import Variant, comparisons
from ganae.config import ConfigError, RunConfig
from ganae.runner import Admission
from ganae.trainer import DivergenceError, Trainer

BASE = RunConfig().with_updates(**{"data.n": 2000, "model.g_hidden": 16, "model.d_hidden": 16,
                                   "train.batch_size": 32, "train.device": "cpu"})
R1 = Variant("R1", {"objective.r1": 1.0})
RTOL, ATOL = 1e-4, 1e-7      # the ensemble tolerance of tests/test_ensemble.py


def assert_same_curves(solo: Trainer, run) -> None:
    """A RunView's history equals the solo Trainer's: same steps, same gaps, every curve within the tolerance."""
    ha, hb = solo.history.arrays(), run.history
    assert ha.keys() == hb.keys() and np.array_equal(ha["step"], hb["step"])
    for key, va in ha.items():
        vb = hb[key]
        gaps = np.isnan(va)
        assert np.array_equal(gaps, np.isnan(vb)) and not gaps.all(), key
        assert np.max(np.abs(va - vb)[~gaps]) <= RTOL * np.max(np.abs(va[~gaps])) + ATOL, key


@pytest.fixture
def arenas():
    made: list[ArenaRunner] = []
    yield made
    for a in made:
        a.stop()
    assert all(not a.alive for a in made)


def make(arenas, *args, **kwargs) -> ArenaRunner:
    kwargs.setdefault("grace_s", None)
    a = ArenaRunner(*args, **kwargs)
    arenas.append(a)
    return a


def finished(a: ArenaRunner, timeout: float = 30.0) -> bool:
    return a.wait_for(lambda v: v.state == "finished", timeout)


def test_two_variants_advance_together_live_and_finish(arenas):
    a = make(arenas, BASE, [R1], seeds=[0], steps=40)
    v0 = a.view()
    assert v0.state == "idle" and v0.variants == ("base", "R1") and v0.n_runs == 2
    a.play()
    assert a.wait_for(lambda v: v.state in ("running", "finished"), 5)
    assert finished(a)
    v = a.view()
    assert [r.step for r in v.runs] == [40, 40] and v.step == 40
    for r in v.runs:                                    # both curves grew to the end
        assert len(r.history["step"]) == 40 and np.isfinite(r.history["loss_d"]).all()
    rows = {r["variant"]: r for r in v.table}
    assert set(rows) == {"base", "R1"} and all(r["n"] == 1 for r in rows.values())
    assert all("js" in r and "ms_per_step" in r for r in rows.values())      # evaluated at the end
    assert v.eval_step == 40 and "Finished" in v.message
    assert set(v.samples) == {"base", "R1"} and v.samples["base"].shape == (1000, 2)
    assert v.real is not None and v.real.shape[1] == 2
    assert set(v.readings) == {"base", "R1"}


def test_k_seed_table_reports_mean_and_sd_over_exactly_k_runs(arenas):
    k = 3
    a = make(arenas, BASE, [R1], seeds=range(k), steps=25)
    a.play()
    assert finished(a)
    v = a.view()
    assert v.seeds == (0, 1, 2)
    for row in v.table:
        runs = v.runs_of(row["variant"])
        assert len(runs) == k and row["n"] == k and sorted(r.seed for r in runs) == [0, 1, 2]
        for key in ("js", "kl", "ms_per_step", "amplitude"):
            vals = np.array([r.metrics[key] for r in runs])
            assert row[key] == pytest.approx(vals.mean())
            assert row[f"{key}_sd"] == pytest.approx(vals.std(ddof=1))
        assert row["js_sd"] > 0                     # the seeds really differ
    table = list(csv.DictReader(io.StringIO(v.table_csv())))
    assert [r["variant"] for r in table] == ["base", "R1"] and {r["n"] for r in table} == {str(k)}


def test_same_seed_no_op_variant_draws_the_same_curve(arenas):
    a = make(arenas, BASE, [Variant("same", {"objective.loss": BASE.objective.loss})], seeds=[7], steps=30)
    a.step(30)
    base, same = a.view().runs
    assert base.seed == same.seed == 7
    assert np.array_equal(base.history["loss_d"], same.history["loss_d"])


def test_pause_holds_and_step_advances_every_run_by_n(arenas):
    a = make(arenas, BASE, [R1], seeds=[0], steps=100_000)
    a.play()
    assert a.wait_for(lambda v: v.step >= 10, 20)
    a.pause()
    v = a.view()
    assert v.state == "paused"
    before = [r.step for r in v.runs]
    time.sleep(0.3)
    assert [r.step for r in a.view().runs] == before
    a.step(7)
    assert [r.step for r in a.view().runs] == [s + 7 for s in before]
    assert a.view().state == "paused"


def test_a_diverging_variant_is_reported_not_fatal(arenas):
    # solo runs (ensembles off): the faults are injected into each run's own Trainer.step
    a = make(arenas, BASE, [Variant("boom", {"optim.d_lr": 0.01}), Variant("broken", {"optim.g_lr": 0.01})],
             seeds=[0], steps=30, ensembles=False)
    runs = {r.variant: r for r in a.cmp.runs}

    def diverge(n=1, part="both"):
        raise DivergenceError(3, "loss_d", math.nan)

    def crash(n=1, part="both"):
        raise RuntimeError("shape mismatch")

    runs["boom"].trainer.step = diverge
    runs["broken"].trainer.step = crash
    a.play()
    assert finished(a)
    v = a.view()
    rows = {r["variant"]: r for r in v.table}
    assert rows["base"]["diverged"] == 0 and rows["boom"]["diverged"] == 1 and rows["broken"]["diverged"] == 1
    by = {r.variant: r for r in v.runs}
    assert by["base"].step == 30 and "diverged" in by["boom"].error and "shape mismatch" in by["broken"].error
    assert "boom" in v.message and "broken" in v.message
    assert v.readings["boom"].startswith("Diverged")


def test_the_arena_trains_variants_x_seeds_as_ensembles_each_run_its_solo_run(arenas):
    a = make(arenas, BASE, [R1], seeds=[0, 1, 2], steps=40)
    a.play()
    assert finished(a)
    groups = [(idx, type(unit).__name__) for idx, unit in a.cmp.cohort.groups]
    assert groups == [([0, 1, 2], "Ensemble"), ([3, 4, 5], "Ensemble")]        # one per structure
    v = a.view()
    assert [r.step for r in v.runs] == [40] * 6 and all(not r.error for r in v.runs)
    for r, run in zip(v.runs, a.cmp.runs):
        solo = Trainer(run.solo.cfg)
        solo.step(40)
        assert len(r.history["step"]) == 40
        assert_same_curves(solo, r)
        member = a.call(lambda cmp, run=run: {k: p.clone() for k, p in run.trainer.model.state_dict().items()})
        for name, p in solo.model.state_dict().items():            # the weights too (Run.trainer is up to date)
            if p.dtype.is_floating_point:
                assert float((p - member[name]).abs().max()) <= RTOL * float(p.abs().max()) + ATOL, name
    off = make(arenas, BASE, [R1], seeds=[0, 1, 2], steps=40, ensembles=False)
    off.step(40)
    assert [len(idx) for idx, _ in off.cmp.cohort.groups] == [1] * 6
    for r_on, r_off in zip(v.runs, off.view().runs):                    # the same curves either way
        assert np.allclose(r_on.history["loss_d"], r_off.history["loss_d"], rtol=RTOL, atol=ATOL)


def test_a_diverging_ensemble_member_stops_alone_and_a_copy_trains_on():
    sgd = BASE.with_updates(**{"optim.d_opt": "sgd", "optim.g_opt": "sgd", "objective.loss": "ls",
                               "optim.d_lr": 1e-3, "optim.g_lr": 1e-3})
    boom = Variant("boom", {"optim.d_lr": 10.0, "optim.g_lr": 10.0})       # a scalar: the same ensemble
    store = ArenaStore(max_arenas=4)
    try:
        a = store.create(sgd, [boom], seeds=[0, 1], steps=60, grace_s=None)
        a.play()
        assert finished(a)
        assert [(idx, type(u).__name__) for idx, u in a.cmp.cohort.groups] == [([0, 1, 2, 3], "Ensemble")]
        v = a.view()
        by = {(r.variant, r.seed): r for r in v.runs}
        for seed in (0, 1):
            solo = Trainer(sgd.with_updates(**{"optim.d_lr": 10.0, "optim.g_lr": 10.0, "train.seed": seed}))
            with pytest.raises(DivergenceError) as e:
                solo.step(60)
            bad = by[("boom", seed)]
            assert "diverged" in bad.error and bad.error == str(e.value)           # the solo run's message
            assert 0 < bad.step < 60 and not by[("base", seed)].error and by[("base", seed)].step == 60
        assert "boom" in v.message and "Finished" in v.message
        b = store.fork(a.arena_id, grace_s=None)        # copies at different steps: the healthy ones batch again
        b.step(10)
        w = b.view()
        assert [r.step for r in w.runs] == [70, 70, by[("boom", 0)].step, by[("boom", 1)].step]
        assert [r.error for r in w.runs] == [r.error for r in v.runs]
        assert [(idx, type(u).__name__) for idx, u in b.cmp.cohort.groups] == [
            ([0, 1], "Ensemble"), ([2], "Trainer"), ([3], "Trainer")]
        solo = Trainer(sgd.with_updates(**{"train.seed": 1}))
        solo.step(70)
        assert_same_curves(solo, w.runs[1])
    finally:
        store.shutdown()
        stop_all()


def test_too_many_runs_is_refused_with_a_sentence():
    variants = [Variant(f"v{i}", {"objective.r1": float(i + 1)}) for i in range(3)]
    with pytest.raises(ConfigError, match="at most 8"):
        ArenaRunner(BASE, variants, seeds=[0, 1, 2], grace_s=None)       # 4 × 3 = 12 runs
    with pytest.raises(ConfigError, match="variant 'bad'"):
        ArenaRunner(BASE, [Variant("bad", {"objective.loss": "nope"})], grace_s=None)


class _Holder:
    def __init__(self):
        self._wake = threading.Event()


def test_waits_queued_for_a_training_slot(arenas):
    adm = Admission(1)
    other = _Holder()
    assert adm.request(other)
    a = make(arenas, BASE, [R1], seeds=[0], steps=20, admission=adm)
    a.play()
    assert a.view().state == "queued"
    time.sleep(0.3)
    assert all(r.step == 0 for r in a.view().runs)
    adm.release(other)                                   # the slot frees up: the arena takes it and trains
    assert finished(a)
    assert adm.counts() == (0, 0)                        # finished: the slot is given back


def test_an_arena_nobody_looks_at_pauses_then_stops_itself():
    adm = Admission(1)
    a = ArenaRunner(BASE, [R1], seeds=[0], steps=1_000_000, admission=adm, grace_s=0.4)
    a.play()
    a.touch()
    assert a.wait_for(lambda v: v.state == "paused", 10)
    assert "nobody looked" in a.view().message and adm.counts() == (0, 0)     # the slot is free again
    assert a.wait_for(lambda v: v.state == "stopped", 10)                    # 4 grace periods: the thread ends
    a.stop()
    assert not a.alive and adm.counts() == (0, 0)
    assert a.view().runs[0].step > 0                                         # the last view stays readable
    with pytest.raises(RuntimeError, match="stopped"):
        a.play()


def test_view_is_immutable_and_exports_parse(arenas):
    a = make(arenas, BASE, [R1], seeds=[0, 1], steps=15)
    a.step(15)
    v = a.view()
    with pytest.raises(ValueError):
        v.runs[0].history["loss_d"][0] = 1.0
    with pytest.raises(ValueError):
        v.samples["R1"][0, 0] = 1.0
    rows = list(csv.DictReader(io.StringIO(v.histories_csv())))
    assert {r["variant"] for r in rows} == {"base", "R1"} and {r["seed"] for r in rows} == {"0", "1"}
    assert max(int(r["step"]) for r in rows) == 15
    pngs = a.png_bytes()
    assert set(pngs) == {"losses.png", "samples.png"}
    assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in pngs.values())


def test_store_replaces_and_prunes():
    store = ArenaStore(max_arenas=2, keep_dead_s=0.0)
    try:
        a = store.create(BASE, [R1], seeds=[0], steps=10, grace_s=None)
        assert store.get(a.arena_id) is a and store.get("nope") is None
        b = store.create(BASE, [], seeds=[0], steps=10, replaces=a.arena_id, grace_s=None)
        assert store.get(a.arena_id) is None and not a.alive and store.ids() == [b.arena_id]
        b.stop()
        assert store.prune() == [b.arena_id] and len(store) == 0
    finally:
        store.shutdown()
        stop_all()


def test_named_comparison_runs_in_the_arena(arenas):
    what, base, variants = comparisons()["vanilla-vs-recommended"]
    a = make(arenas, base.with_updates(**{"train.device": "cpu"}), variants, seeds=[0], steps=3)
    a.step(3)
    v = a.view()
    assert v.variants == ("base", "recommended") and v.n_modes == 8 and v.kind == "points"
    assert "R1 γ 0.1" in v.changes["recommended"] and v.changes["base"] == "the base configuration"


def test_describe_updates_says_what_changed():
    text = describe_updates({"objective.loss": "ns", "tricks.ema": 0.99, "tricks.minibatch_std": True},
                            RunConfig().with_updates(**{"objective.loss": "minimax"}))
    assert text == "loss ns (was minimax) · G EMA 0.99 (was 0) · minibatch std on (was off)"
    assert describe_updates({}) == "the base configuration"


def test_the_arena_thread_can_run_nicer_than_the_server(arenas):
    import os
    base = os.getpriority(os.PRIO_PROCESS, 0)
    a = make(arenas, BASE, [R1], seeds=[0], steps=100_000, nice=4)
    a.step(1)                                         # the thread is up and has set itself
    assert os.getpriority(os.PRIO_PROCESS, a._thread.native_id) == min(19, base + 4)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_the_gate_holds_the_arena_back_except_for_its_first_round_and_commands(arenas):
    from ganae.runner import Gate
    gate = Gate(max_wait_s=5.0)
    a = make(arenas, BASE, [R1], seeds=[0], steps=100_000, gate=gate)
    with gate.hold():                                  # a page drawn after Resume waits for the first round
        a.play()
        assert a.wait_for(lambda v: min(r.step for r in v.runs) > 0, 2.0)     # the first round trained
        time.sleep(0.3)                                # that round ends; the next ones wait for the page
        before = [r.step for r in a.view().runs]
        time.sleep(0.4)
        assert [r.step for r in a.view().runs] == before
        t0 = time.monotonic()
        a.pause()                                      # a command is answered while held
        assert time.monotonic() - t0 < 1.0 and a.view().state == "paused"
    a.play()
    steps = min(r.step for r in a.view().runs)
    assert a.wait_for(lambda v: min(r.step for r in v.runs) > steps + 10, 10)


def test_an_arena_obeys_only_its_owner_and_forks_into_an_owned_copy():
    from ganae.runner import NotOwner
    store = ArenaStore(max_arenas=4)
    try:
        a = store.create(BASE, [R1], seeds=[0], steps=1000, owner="secret-a", grace_s=None)
        a.step(20, owner="secret-a")
        for token in ("secret-b", None):
            for command in (lambda: a.play(owner=token), lambda: a.pause(owner=token),
                            lambda: a.step(5, owner=token)):
                with pytest.raises(NotOwner, match="Only the browser that started this comparison"):
                    command()
        assert a.view().step == 20 and a.view().state == "paused"
        # starting another arena "in place of" someone else's leaves theirs running
        c = store.create(BASE, [], seeds=[0], steps=10, replaces=a.arena_id, owner="secret-b", grace_s=None)
        assert store.get(a.arena_id) is a and a.alive
        b = store.fork(a.arena_id, owner="secret-b", grace_s=None)
        assert b.owned_by("secret-b") and not b.owned_by("secret-a") and store.get(b.arena_id) is b
        vb, va = b.view(), a.view()
        assert vb.step == 20 and vb.variants == va.variants and vb.target == va.target and vb.state == "idle"
        for ra, rb in zip(va.runs, vb.runs):
            assert (ra.variant, ra.seed) == (rb.variant, rb.seed)
            assert np.array_equal(ra.history["loss_d"], rb.history["loss_d"], equal_nan=True)
        b.step(10, owner="secret-b")
        assert b.view().step == 30 and a.view().step == 20
        assert np.array_equal(a.view().runs[0].history["loss_d"], va.runs[0].history["loss_d"], equal_nan=True)
        # the copy's owner replaces its own arena
        d = store.create(BASE, [], seeds=[0], steps=10, replaces=c.arena_id, owner="secret-b", grace_s=None)
        assert store.get(c.arena_id) is None and store.get(d.arena_id) is d
    finally:
        store.shutdown()
        stop_all()

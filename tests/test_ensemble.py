"""Ensembles: member k of a batched ensemble follows its solo Trainer's trajectory, for every loss, penalty and trick.

Tolerance (CPU, float32): every parameter and buffer within 1e-4 of the tensor's largest magnitude, and every
recorded curve within 1e-4 of the curve's largest magnitude (plus 1e-7 absolute: a WGAN critic's loss under weight
clipping is a difference of two nearly equal means, ~1e-8, where summation order alone shows). In practice the
worst case measured is ~1e-5 (spectral norm's u, v, conv) and most are below 1e-6; MLP members are bitwise equal
(test_mlp_members_are_bitwise_their_solo_runs), which is what keeps a chaotic preset's quality numbers unchanged
after thousands of steps.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganae import presets
from ganae.compare import Comparison, Variant, train_runs
from ganae.config import RunConfig
from ganae.ensemble import Cohort, Ensemble, structure, unsupported
from ganae.trainer import DivergenceError, Trainer

ROOT = Path(__file__).resolve().parents[1]

RTOL, ATOL = 1e-4, 1e-7
SMALL_2D = {"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 16, "data.n": 500}
SMALL_IMG = {"model.channels": 4, "train.batch_size": 8, "model.latent_dim": 8}


def configs(preset: str, updates: dict, seeds=(0, 1)) -> list[RunConfig]:
    small = SMALL_2D if presets.get(preset).is_points else SMALL_IMG
    return [presets.get(preset, **{**small, **updates, "train.seed": s, "train.device": "cpu"}) for s in seeds]


def assert_same_run(solo: Trainer, member: Trainer) -> None:
    """Every parameter / buffer and every history curve of `member` equals `solo`'s within the stated tolerance."""
    assert member.step_count == solo.step_count
    a, b = solo.model.state_dict(), member.model.state_dict()
    assert a.keys() == b.keys()
    for name, p in a.items():
        q = b[name]
        if p.dtype.is_floating_point:
            scale = float(p.abs().max())
            assert float((p - q).abs().max()) <= RTOL * scale + ATOL, name
        else:
            assert torch.equal(p, q), name
    ha, hb = solo.history.arrays(), member.history.arrays()
    assert ha.keys() == hb.keys()
    for key, va in ha.items():
        vb = hb[key]
        assert va.shape == vb.shape and len(va) > 0, key
        gaps = np.isnan(va)                              # a part="g" step records no D metrics
        assert np.array_equal(gaps, np.isnan(vb)) and not gaps.all(), key
        assert np.max(np.abs(va - vb)[~gaps]) <= RTOL * np.max(np.abs(va[~gaps])) + ATOL, key


def solo_and_ensemble(cfgs: list[RunConfig], steps: int, chunks: int = 1):
    solo = [Trainer(c) for c in cfgs]
    ens = Ensemble([Trainer(c) for c in cfgs])
    for _ in range(chunks):
        for t in solo:
            t.step(steps)
        ens.step(steps)
    return solo, ens


# every family of tricks the GAN has, on the MLP (2D points) and the conv net (digits)
CASES = {
    "ring8-vanilla (minimax, Adam)": ("ring8-vanilla", {}),
    "WGAN-GP, n_critic 5": ("ring8-wgan-gp", {}),
    "WGAN clip, RMSprop": ("ring8-wgan-clip", {}),
    "ls + label smoothing + instance noise (annealed to 0)": (
        "ring8-vanilla", {"objective.loss": "ls", "tricks.label_smoothing": 0.1, "tricks.instance_noise": 0.1,
                          "tricks.instance_noise_steps": 10}),
    "hinge + spectral norm D and G + R2": (
        "ring8-vanilla", {"objective.loss": "hinge", "objective.spectral_norm": "dg", "objective.r2": 1.0}),
    "minibatch std + feature matching + D dropout": (
        "ring8-vanilla", {"tricks.minibatch_std": True, "tricks.feature_matching": True, "tricks.d_dropout": 0.2}),
    "SGD momentum + weight decay + exp decay": (
        "ring8-vanilla", {"optim.g_opt": "sgd", "optim.d_opt": "sgd", "optim.momentum": 0.9,
                          "optim.weight_decay": 1e-3, "optim.lr_decay": "exp", "optim.lr_gamma": 0.99}),
    "RMSprop momentum, n_gen 2": (
        "ring8-vanilla", {"optim.g_opt": "rmsprop", "optim.d_opt": "rmsprop", "optim.momentum": 0.5,
                          "optim.n_gen": 2}),
    "digits DCGAN (BatchNorm, conv transpose)": ("digits-vanilla", {}),
    "digits recommended (R1, EMA, linear decay)": ("digits-recommended", {}),
    "digits AC-GAN + spectral norm": ("digits-acgan", {}),
    "digits conv GP + SN dg + noise + dropout + mbstd": (
        "digits-vanilla", {"objective.gp": 1.0, "objective.spectral_norm": "dg", "tricks.instance_noise": 0.1,
                           "tricks.d_dropout": 0.1, "tricks.minibatch_std": True}),
    "digits MLP AC-GAN + feature matching": (
        "digits-vanilla", {"model.arch": "mlp", "tricks.ac": True, "tricks.feature_matching": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_member_k_follows_its_solo_trainer(case):
    preset, updates = CASES[case]
    solo, ens = solo_and_ensemble(configs(preset, updates), 12, chunks=2)
    for k, t in enumerate(solo):
        assert_same_run(t, ens.view(k))
    assert not np.array_equal(solo[0].history.arrays()["loss_d"], solo[1].history.arrays()["loss_d"])


@pytest.mark.parametrize("preset", ["ring8-vanilla", "ring8-recommended", "ring8-wgan-gp"])
def test_mlp_members_are_bitwise_their_solo_runs(preset):
    """At the presets' sizes (128-wide layers, batch 64 / 256); other widths may take another BLAS path in F.linear
    and then agree within the tolerance only."""
    cfgs = [presets.get(preset, **{"train.seed": s, "train.device": "cpu"}) for s in (0, 1)]
    solo, ens = solo_and_ensemble(cfgs, 8)
    for k, t in enumerate(solo):
        v = ens.view(k)
        for name, p in t.model.state_dict().items():
            assert torch.equal(p, v.model.state_dict()[name]), name
        for key, col in t.history.arrays().items():
            if not key.startswith("grad_"):               # gradient norms are summed in another order (display only)
                assert np.array_equal(col, v.history.arrays()[key]), key


def test_ring8_recommended_100_steps_members_differ_in_every_scalar():
    """The issue's claim: 100 steps of the ring-8 preset, members differing in seed and in each scalar knob."""
    base = configs("ring8-recommended", {"train.steps": 200}, seeds=(0,))[0]
    cfgs = [base,
            base.with_updates(**{"train.seed": 1, "optim.g_lr": 2e-3, "optim.d_lr": 5e-4, "optim.beta2": 0.9,
                                 "objective.r1": 1.0, "tricks.ema": 0.9, "tricks.label_smoothing": 0.2,
                                 "tricks.instance_noise": 0.05, "train.steps": 80}),
            base.with_updates(**{"train.seed": 2, "optim.beta1": 0.5, "optim.weight_decay": 1e-4})]
    assert len({structure(c) for c in cfgs}) == 1
    solo, ens = solo_and_ensemble(cfgs, 50, chunks=2)
    for k, t in enumerate(solo):
        assert_same_run(t, ens.view(k))
        # the EMA generator (what samples and metrics use) too
        assert torch.allclose(t.samples(), ens.view(k).samples(), rtol=0, atol=RTOL * float(t.samples().abs().max()))
    assert ens.view(1).lrs["g"] == pytest.approx(solo[1].lrs["g"]) and ens.view(1).lrs["g"] != ens.view(0).lrs["g"]
    assert [e["modes"] for e in ens.evaluate()] == [t.evaluate()["modes"] for t in solo]


def test_part_d_and_g_only_steps_match():
    cfgs = configs("ring8-vanilla", {})
    solo, ens = [Trainer(c) for c in cfgs], Ensemble([Trainer(c) for c in cfgs])
    for part in ("d", "d", "g", "both"):
        for t in solo:
            t.step(3, part=part)
        ens.step(3, part=part)
    for k, t in enumerate(solo):
        assert_same_run(t, ens.view(k))


def test_a_diverging_member_is_masked_and_the_others_go_on():
    boom = {"optim.d_lr": 10.0, "optim.g_lr": 10.0, "optim.d_opt": "sgd", "optim.g_opt": "sgd", "objective.loss": "ls"}
    calm = {**boom, "optim.d_lr": 1e-3, "optim.g_lr": 1e-3}
    cfgs = [configs("ring8-vanilla", calm, seeds=(0,))[0], configs("ring8-vanilla", boom, seeds=(1,))[0]]
    solo = [Trainer(c) for c in cfgs]
    ens = Ensemble([Trainer(c) for c in cfgs])
    solo_error = ""
    for _ in range(12):
        solo[0].step(25)
        if not solo_error:
            try:
                solo[1].step(25)
            except DivergenceError as e:
                solo_error = str(e)
        ens.step(25)
    assert solo_error and "diverged" in solo_error          # the lr-10 member really diverges
    assert ens.errors[1] == solo_error and ens.errors[0] == ""
    assert ens.view(1).step_count == solo[1].step_count < 300     # stopped where its solo run raised
    assert len(ens.view(1).history) == len(solo[1].history)      # and recorded nothing after it
    assert_same_run(solo[0], ens.view(0))                          # the other member was not touched
    assert ens.view(0).step_count == 300


def test_a_member_saved_reopens_as_a_solo_run_that_continues_identically(tmp_path):
    cfgs = configs("digits-recommended", {})
    ens = Ensemble([Trainer(c) for c in cfgs])
    ens.step(10)
    path = ens.view(1).save(tmp_path / "m1.pt")
    reopened = Trainer.load(path, device="cpu")
    twin = ens.member(1)
    solo = Trainer(cfgs[1])
    solo.step(10)
    for t in (reopened, twin, solo):
        t.step(10)
    ens.step(10)
    for t in (reopened, twin):
        assert_same_run(solo, t)
    assert_same_run(solo, ens.view(1))


@pytest.mark.parametrize("preset, updates", [("digits-recommended", {}),
                                             ("ring8-vanilla", {"optim.g_opt": "sgd", "optim.d_opt": "sgd",
                                                                "optim.momentum": 0.9, "optim.lr_decay": "exp"})])
def test_runs_join_an_ensemble_mid_run_with_their_optimiser_state(preset, updates):
    """Stacking Trainers that already trained (Adam / momentum state, decayed lr) continues them exactly."""
    cfgs = configs(preset, updates)
    solo, joined = [Trainer(c) for c in cfgs], [Trainer(c) for c in cfgs]
    for t in solo + joined:
        t.step(6)
    ens = Ensemble(joined)
    ens.step(6)
    for t in solo:
        t.step(6)
    for k, t in enumerate(solo):
        assert_same_run(t, ens.view(k))


def test_cohort_groups_by_structure_and_names_the_fallback():
    gan = configs("ring8-vanilla", {}, seeds=(0, 1, 2))
    other = gan[0].with_updates(**{"tricks.ema": 0.99})                # another structure: a group of one
    ae = presets.get("digits-ae", **SMALL_IMG, **{"train.device": "cpu"})
    assert unsupported(ae) and "solo" in unsupported(ae) and unsupported(gan[0]) is None
    cohort = Cohort.from_configs(gan + [other, ae])
    kinds = [(idx, type(unit).__name__) for idx, unit in cohort.groups]
    assert kinds == [([0, 1, 2], "Ensemble"), ([3], "Trainer"), ([4], "Trainer")]
    assert cohort.notes == [unsupported(ae)]
    cohort.step(6, chunk=4)
    assert [cohort.trainer(i).step_count for i in range(5)] == [6] * 5
    ref = Trainer(gan[2])
    ref.step(4)
    ref.step(2)
    assert_same_run(ref, cohort.trainer(2))


def test_mismatched_members_are_refused_with_a_sentence():
    a, b = configs("ring8-vanilla", {})
    with pytest.raises(ValueError, match="one structure"):
        Ensemble([Trainer(a), Trainer(b.with_updates(**{"objective.loss": "hinge"}))])
    with pytest.raises(ValueError, match="solo"):
        Ensemble([Trainer(presets.get("digits-ae", **SMALL_IMG, **{"train.device": "cpu"}))])


def test_comparison_on_ensembles_gives_the_table_of_solo_runs():
    base = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 32})
    variants = [Variant("R1", {"objective.r1": 1.0}), Variant("lr", {"optim.g_lr": 3e-3})]
    tables = []
    for batched in (True, False):
        cmp = Comparison(base, variants, seeds=[0, 1], chunk=10, ensembles=batched)
        cmp.step(30)
        cmp.evaluate()
        tables.append({r["variant"]: r for r in cmp.table()})
        if batched:
            assert len(cmp.cohort.groups) == 2        # base + lr share a structure (4 runs), R1 is another (2)
    ens, solo = tables
    assert ens.keys() == solo.keys()
    for name, row in solo.items():
        for k, v in row.items():
            if k.startswith("ms_per_step") or k == "variant":
                continue
            assert ens[name][k] == pytest.approx(v, rel=1e-4, abs=1e-6, nan_ok=True), (name, k)


def test_train_runs_is_the_same_engine_as_a_plain_function():
    cfgs = configs("ring8-vanilla", {}) + [presets.get("digits-ae", **SMALL_IMG, **{"train.device": "cpu"})]
    out = train_runs(cfgs, 8, chunk=5)
    assert [(t.step_count, err) for t, err, _ in out] == [(8, ""), (8, ""), (8, "")]
    ref = Trainer(cfgs[1])
    ref.step(8)
    assert out[1][2]["js"] == pytest.approx(ref.evaluate()["js"], rel=1e-4)
    assert "test_mse" in out[2][2]


@pytest.mark.parametrize("opt", [{}, {"optim.d_opt": "sgd", "optim.g_opt": "sgd", "optim.momentum": 0.9},
                                 {"optim.d_opt": "sgd", "optim.g_opt": "sgd"}])
def test_members_at_different_steps_each_follow_their_solo_run(opt):
    """A class cohort batches runs that started at different times: each member keeps its own step (lr decay,
    instance-noise annealing, history) and its own optimiser step count (Adam's bias correction, SGD's first
    momentum step), whichever member comes first in the ensemble."""
    tricks = {"optim.lr_decay": "linear", "tricks.instance_noise": 0.2, "tricks.instance_noise_steps": 60,
              "train.steps": 200, **opt}
    cfgs = configs("ring8-vanilla", tricks, seeds=(0, 1, 2))
    ahead = {0: 40, 1: 0, 2: 7}
    solo = [Trainer(c) for c in cfgs]
    members = [Trainer(c) for c in cfgs]
    for k, n in ahead.items():
        if n:
            solo[k].step(n)
            members[k].step(n)
    ens = Ensemble(members)
    assert ens.steps == [40, 0, 7]
    ens.step(30)
    for t in solo:
        t.step(30)
    for k in range(3):
        assert_same_run(solo[k], ens.view(k))
    ens = Ensemble([members[2], members[0], members[1]])     # restacked in another order, as a cohort does
    ens.step(20)
    for t in solo:
        t.step(20)
    for k, t in enumerate([solo[2], solo[0], solo[1]]):
        assert_same_run(t, ens.view(k))


@pytest.mark.parametrize("preset, updates", [("ring8-vanilla", {"objective.spectral_norm": "dg", "tricks.ema": 0.99}),
                                             ("digits-vanilla", {})])
def test_a_weights_only_view_reads_the_weights_and_leaves_the_optimiser_for_later(preset, updates):
    """view(k, optimizer=False) -- what a class cohort's snapshots read -- brings the weights and buffers (spectral
    norm's u / v, BatchNorm's statistics, the EMA generator) up to date, exactly as a whole view does, and not the
    optimiser's moments; the next whole view brings those too, and training on stays the solo run."""
    cfgs = configs(preset, updates)
    solo, joined = [Trainer(c) for c in cfgs], [Trainer(c) for c in cfgs]
    for tr in solo + joined:
        tr.step(3)                                          # every solo optimiser has its moments
    before = {n: {p: {k: v.clone() for k, v in s.items()} for p, s in o.state.items()}
              for n, o in joined[1].model.optimizers.items()}
    assert all(before.values())
    ens = Ensemble(joined)
    ens.step(5)
    for tr in solo:
        tr.step(5)
    t = ens.view(1, optimizer=False)
    assert_same_run(solo[1], t)
    for n, o in t.model.optimizers.items():                 # the moments were not copied out
        for p, s in o.state.items():
            for k, v in s.items():
                assert torch.equal(v, before[n][p][k]), (n, k)
    full = ens.view(1)
    ref = solo[1].model.optimizers["d"].state_dict()["state"]
    got = full.model.optimizers["d"].state_dict()["state"]
    assert ref.keys() == got.keys()
    for i in ref:
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(ref[i][k], got[i][k], rtol=1e-4, atol=1e-7), (i, k)
    for tr in solo:
        tr.step(5)
    ens.step(5)
    for k, tr in enumerate(solo):
        assert_same_run(tr, ens.view(k, optimizer=False))


def test_load_into_copies_into_the_modules_tensors_as_load_state_dict_does():
    """The fast copy (into the tensors state_dict(keep_vars=True) names, cached) equals load_state_dict's result,
    parameters and buffers alike, and the module keeps its own tensor objects."""
    cfgs = configs("digits-vanilla", {"objective.spectral_norm": "dg"})
    ens = Ensemble([Trainer(c) for c in cfgs])
    ens.step(3)
    a, b = Trainer(cfgs[0]).model.d, Trainer(cfgs[0]).model.d
    ids = [id(v) for v in a.state_dict(keep_vars=True).values()]
    for _ in range(2):                                      # the second call takes the cached path
        ens.d.load_into(1, a)
    b.load_state_dict({n: v[1].detach() for n, v in ens.d.t.items()})
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)
    assert [id(v) for v in a.state_dict(keep_vars=True).values()] == ids
    fresh = Trainer(cfgs[0]).model.d.state_dict()
    assert any(not torch.equal(sa[n], fresh[n]) for n in sa)   # (member 1 trained: the copy changed the weights)


@pytest.mark.parametrize("preset, updates", [
    ("ring8-vanilla", {"optim.lr_decay": "linear", "train.steps": 200, "tricks.ema": 0.99,
                       "objective.spectral_norm": "dg"}),
    ("ring8-vanilla", {"optim.g_opt": "sgd", "optim.d_opt": "sgd", "optim.momentum": 0.9,
                       "optim.weight_decay": 1e-3}),
    ("digits-vanilla", {})])
def test_regroup_is_the_ensemble_of_the_stayers_and_the_joiners(preset, updates):
    """A class cohort's members come and go: regroup(keep, joiners) keeps the stayers' stacked state as it is and
    stacks the joiners after them -- each member then trains exactly as its solo run (and as a fresh Ensemble of
    the up-to-date Trainers would); the leavers' Trainers are up to date, weights and optimiser."""
    cfgs = configs(preset, updates, seeds=(0, 1, 2, 3, 4))
    cfgs = [c.with_updates(**{"optim.d_lr": c.optim.d_lr * (1 + 0.1 * i)}) for i, c in enumerate(cfgs)]
    solo = [Trainer(c) for c in cfgs]
    runs = [Trainer(c) for c in cfgs]
    for t in (solo[3], runs[3]):
        t.step(4)                                  # a joiner that trained alone before (a paused student's run)
    ens = Ensemble(runs[:3])
    ens.step(5)
    for t in solo[:3]:
        t.step(5)
    ens.view(2, optimizer=False)                   # a snapshot read member 2's weights only
    ens.regroup([2, 0], [runs[3], runs[4]])        # member 1 pauses; 3 (at step 4) and 4 (fresh) press Train
    assert ens.K == 4 and ens.steps == [5, 5, 4, 0] and ens.trainers == [runs[2], runs[0], runs[3], runs[4]]
    assert_same_run(solo[1], runs[1])              # the leaver's Trainer is its solo run, optimiser included
    assert_same_run(solo[0], ens.view(1, optimizer=False))   # a stayer still reads as itself
    ref = solo[1].model.optimizers["d"].state_dict()["state"]
    got = runs[1].model.optimizers["d"].state_dict()["state"]
    assert ref.keys() == got.keys() and ref
    for i in ref:
        for k, v in ref[i].items():
            assert torch.allclose(v, got[i][k], rtol=1e-4, atol=1e-7), (i, k)
    ens.step(6)
    for t in (solo[2], solo[0], solo[3], solo[4]):
        t.step(6)
    for k, t in enumerate((solo[2], solo[0], solo[3], solo[4])):
        assert_same_run(t, ens.view(k))
    ens.regroup([3], [])                           # down to one member, then one back in
    ens.regroup([0], [runs[1]])
    ens.step(3)
    for t in (solo[4], solo[1]):
        t.step(3)
    assert_same_run(solo[4], ens.view(0))
    assert_same_run(solo[1], ens.view(1))
    assert_same_run(solo[2], runs[2])              # (they left at the first of those two regroups)
    assert_same_run(solo[0], runs[0])
    with pytest.raises(ValueError, match="structure"):
        ens.regroup([0], [Trainer(configs("ring8-vanilla", {"model.g_hidden": 32})[0])])
    assert ens.K == 2                              # refused before anything changed


FAULTS = """
import resource, sys, torch
from ganae.config import RunConfig
from ganae.ensemble import Ensemble
from ganae.trainer import Trainer
torch.set_num_threads(1)
if sys.argv[1] == "plain":                  # glibc left to itself (to see the test fail without the setting)
    import ganae.ensemble
    ganae.ensemble.keep_freed_memory = lambda: False
ens = Ensemble([Trainer(RunConfig().with_updates(**{"train.seed": s, "train.device": "cpu"})) for s in range(24)])
ens.step(10)                                # warm-up: the steady state reuses what these steps allocated
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
ens.step(20)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings (Linux)")
def test_a_cohort_sized_ensemble_step_reuses_its_memory_instead_of_faulting_pages():
    """A 24-member ensemble of the Playground's default frees and re-allocates 786 KB activations at every step;
    glibc, left to itself, gives them back to the system and faults them in again (~1,300 page faults a step on
    this machine, a fifth of the step in the kernel). The ensemble keeps freed memory (device.keep_freed_memory):
    in the steady state a step faults a few pages at most."""
    mode = os.environ.get("GANAE_TEST_FAULTS", "kept")
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120).stdout
    faults = float(out.split()[-1])
    # (what is left, 0-40 a step, is Python's own object arenas coming and going, not the tensors)
    assert faults < 100, f"{faults:.0f} page faults per step ({mode})"

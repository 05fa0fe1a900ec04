"""Comparisons: same seeds across variants, fair advancing, mean ± sd over exactly K runs, CSV/PNG export."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from ganae.compare import Comparison, Variant, comparisons
from ganae.config import ConfigError, RunConfig
from ganae.__main__ import main

BASE = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 32})


def test_k_seed_table_reports_mean_and_sd_over_exactly_k_runs():
    cmp = Comparison(BASE, [Variant("R1", {"objective.r1": 1.0})], seeds=[0, 1, 2], chunk=10)
    cmp.step(40)
    cmp.evaluate()
    rows = {r["variant"]: r for r in cmp.table()}
    assert set(rows) == {"base", "R1"} and rows["base"]["n"] == 3 and rows["R1"]["n"] == 3
    for name in rows:
        js = [cmp.evals[(name, s)]["js"] for s in (0, 1, 2)]
        assert rows[name]["js"] == pytest.approx(np.mean(js))
        assert rows[name]["js_sd"] == pytest.approx(np.std(js, ddof=1))
        assert rows[name]["js_sd"] > 0          # the seeds really differ


def test_variants_share_seeds_and_advance_together():
    cmp = Comparison(BASE, [Variant("same", {"objective.loss": "ns"})], seeds=[4], chunk=7)
    cmp.step(30)
    a, b = (r.trainer.history.arrays() for r in cmp.runs)
    assert [r.step for r in cmp.runs] == [30, 30]
    assert np.array_equal(a["loss_d"], b["loss_d"])       # a no-op variant with the same seed: same curve


def test_a_diverging_variant_is_reported_not_fatal():
    cmp = Comparison(BASE, [Variant("boom", {"optim.d_lr": 10.0, "optim.g_lr": 10.0, "optim.d_opt": "sgd",
                                             "optim.g_opt": "sgd", "objective.loss": "ls"})], seeds=[0])
    cmp.step(300)
    rows = {r["variant"]: r for r in cmp.table()}
    assert rows["base"]["diverged"] == 0
    boom = next(r for r in cmp.runs if r.variant == "boom")
    if boom.error:                                          # ls with lr 10 diverges; the base keeps going
        assert rows["boom"]["diverged"] == 1 and "diverged" in boom.error
    assert next(r for r in cmp.runs if r.variant == "base").step == 300


def test_bad_variant_is_named_in_the_error():
    with pytest.raises(ConfigError, match="variant 'bad'"):
        Comparison(BASE, [Variant("bad", {"objective.loss": "nope"})])
    with pytest.raises(ConfigError, match="same name"):
        Comparison(BASE, [Variant("x"), Variant("x")])


def test_named_comparisons_build():
    for name, (what, base, variants) in comparisons().items():
        assert what and variants
        for v in variants:
            v.config(base, 0)


def test_cli_compare_writes_table_histories_and_pngs(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--set", "model.g_hidden=16", "--set", "model.d_hidden=16", "--variant",
                 "EMA:tricks.ema=0.99", "--seeds", "2", "--steps", "20", "--out", str(out)]) == 0
    with open(out / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["base", "EMA"] and rows[0]["n"] == "2"
    with open(out / "histories.csv") as f:
        hist = list(csv.DictReader(f))
    assert {h["seed"] for h in hist} == {"0", "1"} and max(int(h["step"]) for h in hist) == 20
    for png in ("losses.png", "samples.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", "--variant", "broken"]) == 2

"""Sweeps on a real Ray cluster (a head and a second node on this machine, one CPU each): the same table, CSVs and
PNGs as a local comparison; a lost task retried once; one lost twice named in the table; a bad address one sentence.
"""
from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0, see requirements.txt)")

from ganae import cluster  # noqa: E402
from ganae.__main__ import main  # noqa: E402
from ganae.compare import Comparison, Variant  # noqa: E402
from ganae.config import RunConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 32})
VARIANTS = [Variant("EMA", {"tricks.ema": 0.99})]
SEEDS, STEPS = [0, 1], 40
TIMING = ("ms_per_step", "ms_per_step_sd")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    cmp = Comparison(BASE, VARIANTS, seeds=SEEDS)
    cmp.step(STEPS)
    cmp.evaluate()
    cmp.write(tmp_path_factory.mktemp("local"))
    return cmp


def same_numbers(a: list[dict], b: list[dict]) -> None:
    """Equal rows, key for key, except the wall-time column (NaN == NaN)."""
    assert [r["variant"] for r in a] == [r["variant"] for r in b]
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ra:
            if k in TIMING:
                continue
            both_nan = isinstance(ra[k], float) and math.isnan(ra[k]) and math.isnan(rb[k])
            assert both_nan or ra[k] == rb[k], (ra["variant"], k, ra[k], rb[k])


def test_sweep_on_two_nodes_gives_the_local_table_and_histories(ray_cluster, local, tmp_path):
    seen = []
    cmp = cluster.sweep(BASE, VARIANTS, SEEDS, STEPS, address=ray_cluster.address,
                        progress=lambda done, total: seen.append((done, total)))
    # 2 variants x 2 seeds: on 2 CPUs one task per variant (both seeds), on 3 or more one per (variant, seed)
    n = 2 * len(cluster.seed_groups(SEEDS, 2, cluster.cluster_cpus()))
    assert n == (2 if cluster.cluster_cpus() <= 2 else 4) and seen == [(i, n) for i in range(n + 1)]
    assert [(r.variant, r.seed, r.step) for r in cmp.runs] == [(r.variant, r.seed, STEPS) for r in local.runs]
    same_numbers(local.table(), cmp.table())
    assert "modes" in cmp.table()[0] and cmp.table()[0]["n"] == 2 and not cmp.failed
    assert cmp.history_rows() == local.history_rows()


def test_written_files_match_a_local_run_byte_for_byte_except_timing(ray_cluster, tmp_path):
    """One task per (variant, seed): each task trains one solo run, so the local side is solo runs too (an
    ensemble of the seeds agrees with them only within float tolerance, tests/test_ensemble.py)."""
    a, b = tmp_path / "local", tmp_path / "ray"
    solo = Comparison(BASE, VARIANTS, seeds=SEEDS, ensembles=False)
    solo.step(STEPS)
    solo.evaluate()
    solo.write(a)
    cluster.sweep(BASE, VARIANTS, SEEDS, STEPS, address=ray_cluster.address, group=1).write(b)
    assert (a / "histories.csv").read_bytes() == (b / "histories.csv").read_bytes()
    for png in ("losses.png", "samples.png"):
        assert (a / png).read_bytes() == (b / png).read_bytes()
    ta, tb = (list(csv.DictReader(open(p / "table.csv"))) for p in (a, b))
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in ta] == \
           [{k: v for k, v in r.items() if k not in TIMING} for r in tb]


def test_a_task_whose_worker_dies_is_retried_once_with_the_same_numbers(ray_cluster, local, tmp_path,
                                                                       monkeypatch):
    (tmp_path / "EMA@0,1").write_text("1")        # the first attempt of EMA's task kills its worker process
    monkeypatch.setenv(cluster.CRASH_ENV, str(tmp_path))
    cmp = cluster.sweep(BASE, VARIANTS, SEEDS, STEPS, address=ray_cluster.address, group=2)
    assert (tmp_path / "EMA@0,1").read_text() == "0"          # it did crash once ...
    assert not cmp.failed                                      # ... and the retry delivered
    same_numbers(local.table(), cmp.table())


def test_a_task_lost_twice_is_named_in_the_table_and_the_rest_reports(ray_cluster, local, tmp_path, monkeypatch,
                                                                    capsys):
    (tmp_path / "EMA@1").write_text("2")            # both attempts of (EMA, seed 1) die
    monkeypatch.setenv(cluster.CRASH_ENV, str(tmp_path))
    out = tmp_path / "out"
    code = main(["compare", "--set", "model.g_hidden=16", "--set", "model.d_hidden=16", "--set",
                 "train.batch_size=32", "--variant", "EMA:tricks.ema=0.99", "--seeds", "2", "--steps", str(STEPS),
                 "--ray", ray_cluster.address, "--ray-group", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "EMA@1").read_text() == "0"
    why = ("The Ray task for seeds 1 failed (its worker process died (or its node was lost), twice); "
           "run the comparison again or check the cluster's nodes.")
    assert err.strip().splitlines()[-1] == f"error: {why}" and "Traceback" not in err
    assert "4/4 tasks" in err                                   # the progress bar counted every task
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [(r["variant"], r["n"], r["failed"], r["note"]) for r in rows] == [("base", "2", "", ""),
                                                                              ("EMA", "1", "1", why)]
    # the base variant is whole and equal to the local one; EMA's seed 0 is there, seed 1 is not
    local_base = local.table()[0]
    assert float(rows[0]["modes"]) == pytest.approx(local_base["modes"], abs=0) and float(rows[0]["hq"]) == \
        pytest.approx(local_base["hq"], rel=1e-12)
    hist = list(csv.DictReader(open(out / "histories.csv")))
    assert {(h["variant"], h["seed"]) for h in hist} == {("base", "0"), ("base", "1"), ("EMA", "0")}


@pytest.mark.parametrize("address, words", [
    ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
    ("nonsense", "'nonsense' is not a Ray address; give HOST:PORT"),
])
def test_an_unusable_ray_address_is_one_sentence_with_exit_code_2(address, words, capsys):
    assert main(["compare", "--steps", "5", "--ray", address]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last


def test_quality_benchmark_on_ray_prints_the_local_rows(ray_cluster):
    def preset_row(extra: list[str]) -> list[str]:
        p = subprocess.run([sys.executable, "benchmarks/quality.py", "--presets", "ring8-vanilla", "--quick",
                            "--scale", "0.03", *extra],
                           cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stderr
        line = next(ln for ln in p.stdout.splitlines() if ln.startswith("| `ring8-vanilla`"))
        return line.split("|")[1:-3]          # preset, steps, seeds, modes, HQ, FD, test MSE (not the times)

    local_row = preset_row([])
    assert local_row == preset_row(["--ray", ray_cluster.address])
    assert local_row[2].strip() == "1" and local_row[3].strip() not in ("—", "")

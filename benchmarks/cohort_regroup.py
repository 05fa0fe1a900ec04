"""What does a class cohort pay when one student pauses or presses Train: a restack or a regroup?

    .venv/bin/python benchmarks/cohort_regroup.py                  # K = 10, 20, 30 members of ring-8 vanilla
    .venv/bin/python benchmarks/cohort_regroup.py --ks 30 --repeats 9

For each K it builds K + 1 Trainers (seeds 0..K), one Ensemble of the first K stepped a few times, then times,
alternately and `repeats` times each, one member leaving and another joining:
- restack (before): every member's Trainer brought up to date (Ensemble.views) and a new Ensemble stacked from them,
  what cohort._restack did;
- regroup (now): Ensemble.regroup(keep, [joiner]), the leaver written back, the stayers' stacked state kept;
and, for scale, one batched step of the K members (a plain ensemble step, the unit of a cohort's work).
It prints the medians in ms and the ratios regroup ÷ restack and restack ÷ one batched step. Nothing asserts.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganae import presets  # noqa: E402
from ganae.ensemble import Ensemble  # noqa: E402
from ganae.trainer import Trainer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", default="10,20,30")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--preset", default="ring8-vanilla")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'K':>3}  {'restack ms':>10}  {'regroup ms':>10}  {'step ms':>8}  {'regroup/restack':>15}  "
          f"{'restack/step':>12}")
    for K in [int(k) for k in args.ks.split(",")]:
        trainers = [Trainer(presets.get(args.preset, **{"train.seed": s, "train.device": "cpu"}))
                    for s in range(K + 1)]
        ens = Ensemble(trainers[:K])
        ens.step(3)
        restack, regroup, step = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ens.step(1)
            step.append(time.perf_counter() - t0)
            joiner = next(t for t in trainers if t not in ens.trainers)      # the one Trainer left over
            # before: write every member back, stack the stayers and the joiner anew
            t0 = time.perf_counter()
            ens.views()
            ens = Ensemble(ens.trainers[1:] + [joiner])
            restack.append(time.perf_counter() - t0)
            ens.step(1)
            # now: the same change (the first member out, the one left over in) as a regroup
            joiner = next(t for t in trainers if t not in ens.trainers)
            t0 = time.perf_counter()
            ens.regroup(list(range(1, ens.K)), [joiner])
            regroup.append(time.perf_counter() - t0)
        r, g, s = (1000 * statistics.median(v) for v in (restack, regroup, step))
        print(f"{K:>3}  {r:>10.1f}  {g:>10.1f}  {s:>8.1f}  {g / r:>15.2f}  {r / s:>12.2f}", flush=True)


if __name__ == "__main__":
    main()

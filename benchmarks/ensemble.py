"""How much does batching K runs into one Ensemble buy over stepping K solo Trainers one after the other?

    .venv/bin/python benchmarks/ensemble.py                       # K = 1..32, ring-8 + digits, one thread, CPU
    .venv/bin/python benchmarks/ensemble.py --ks 1,8 --steps 20 --repeats 3
    .venv/bin/python benchmarks/ensemble.py --device cuda --ks 1,8,64,256
    .venv/bin/python benchmarks/ensemble.py --arena               # + 3 variants × 5 seeds × 3000 steps, solo vs ensembles
    .venv/bin/python benchmarks/ensemble.py --cases default --ks 8,24 --plain-malloc   # glibc's malloc left as it is

For each case and K it builds K solo Trainers (seeds 0..K-1) and one Ensemble of K fresh Trainers of the same configs,
then alternately times `steps` iterations of (a) each solo Trainer in turn and (b) the ensemble, `repeats` times, and
prints the medians as
- ensemble ÷ solo: time of one ensemble step ÷ time of one solo step (how much dearer the batched step is);
- gain: K solo steps ÷ one ensemble step (throughput; the target on a CPU thread is ≥ 2 at K = 8 on ring-8, and ≥ 1
  for every K);
- page faults per ensemble step (the process's minor faults while the ensemble steps): an ensemble keeps the memory
  its steps free (ganae.device.keep_freed_memory); `--plain-malloc` leaves glibc's malloc as it is, to compare
  (the setting is process-wide, so that is a second run).
`--arena` also times a Comparison of ring-8 (base vanilla, "EMA", "recommended": three structures) × 5 seeds ×
`--arena-steps` with `ensembles=False` (every run solo, as before) and with ensembles, in the same process.
Nothing here asserts: it prints.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ganae.ensemble  # noqa: E402
from ganae import presets  # noqa: E402
from ganae.config import RunConfig  # noqa: E402
from ganae.compare import Comparison, Variant, _diff  # noqa: E402
from ganae.ensemble import Ensemble  # noqa: E402
from ganae.trainer import Trainer  # noqa: E402

CASES = {"ring-8 recommended (MLP)": "ring8-recommended", "digits DCGAN (conv)": "digits-vanilla",
         "the Playground's default (MLP)": "default"}


def config(preset: str, **updates):
    """A preset's config, or the Playground's default (`default`: RunConfig(), what a class trains)."""
    return RunConfig().with_updates(**updates) if preset == "default" else presets.get(preset, **updates)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(preset: str, k: int, steps: int, repeats: int, device: str) -> tuple[float, float, float]:
    """(median seconds per solo step, median seconds per ensemble step, page faults per ensemble step)."""
    cfgs = [config(preset, **{"train.seed": s, "train.device": device}) for s in range(k)]
    solos = [Trainer(c) for c in cfgs]
    ens = Ensemble([Trainer(c) for c in cfgs])
    for t in solos:                                        # warm-up (allocators, first-call costs)
        t.step(2)
    ens.step(2)
    solo_t, ens_t, faults = [], [], []
    for _ in range(repeats):
        solo_t.append(timed(lambda: [t.step(steps) for t in solos], device) / (steps * k))
        f0 = minor_faults()
        ens_t.append(timed(lambda: ens.step(steps), device) / steps)
        faults.append((minor_faults() - f0) / steps)
    return statistics.median(solo_t), statistics.median(ens_t), statistics.median(faults)


def arena(steps: int, seeds: int, device: str) -> None:
    base, rec = presets.get("ring8-vanilla", **{"train.device": device}), presets.get("ring8-recommended")
    variants = [Variant("EMA 0.99", {"tricks.ema": 0.99}), Variant("recommended", _diff(base, rec))]
    walls = {}
    for batched in (False, True):
        cmp = Comparison(base.with_updates(**{"train.steps": steps}), variants, seeds=range(seeds), ensembles=batched)
        walls[batched] = timed(lambda: cmp.step(steps), device)
        groups = len(cmp.cohort.groups)
        print(f"arena ring-8, 3 variants × {seeds} seeds × {steps} steps, {'ensembles' if batched else 'solo runs'}"
              f" ({groups} groups): {walls[batched]:.1f} s", flush=True)
    print(f"arena speed-up: {walls[False] / walls[True]:.2f}×")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", default="1,2,4,8,16,32", help="ensemble sizes")
    ap.add_argument("--steps", type=int, default=20, help="iterations per timing")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats (median)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default=",".join(CASES.values()), help="presets to time")
    ap.add_argument("--arena", action="store_true", help="also time the Arena-sized Comparison, solo vs ensembles")
    ap.add_argument("--arena-steps", type=int, default=3000)
    ap.add_argument("--arena-seeds", type=int, default=5)
    ap.add_argument("--plain-malloc", action="store_true",
                    help="leave glibc's malloc as it is (the ensembles keep freed memory otherwise)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.plain_malloc:
        ganae.ensemble.keep_freed_memory = lambda: False
    ks = [int(k) for k in args.ks.split(",")]
    print(f"# ganae ensemble benchmark: device {args.device}, {torch.get_num_threads()} thread(s), "
          f"{args.steps} steps × {args.repeats} alternating repeats, torch {torch.__version__}, "
          f"malloc {'as glibc leaves it' if args.plain_malloc else 'keeping freed memory'}")
    print("| case | K | solo ms/step | ensemble ms/step | ensemble ÷ solo | gain (K solo ÷ ensemble) "
          "| page faults / ensemble step |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for label, preset in CASES.items():
        if preset not in args.cases.split(","):
            continue
        for k in ks:
            solo, ens, faults = measure(preset, k, args.steps, args.repeats, args.device)
            print(f"| {label} | {k} | {1e3 * solo:.2f} | {1e3 * ens:.2f} | {ens / solo:.2f} | {k * solo / ens:.2f} "
                  f"| {faults:,.0f} |", flush=True)
    if args.arena:
        arena(args.arena_steps, args.arena_seeds, args.device)


if __name__ == "__main__":
    main()

"""Arena wall time: how long a live Arena takes to train its plan, runs solo (before) vs ensembles (after).

    .venv/bin/python benchmarks/arena_wall.py                     # ring-8, 3 variants × 5 seeds × 3000 steps, CPU
    .venv/bin/python benchmarks/arena_wall.py --steps 300 --seeds 2    # a quick look

The Arena is run headless, as the page runs it: an `ArenaRunner` (its own thread, publishing views and evaluating
as it goes), play(), then wait until its state is "finished". Variants: the ring-8 vanilla base, "EMA 0.99" and
"recommended" (three structures, so ensembles make three groups of `seeds` members). First with
`ensembles=False` (every run a solo Trainer, the Arena as it was), then with ensembles, in the same process; it
prints both wall times and the ratio. Nothing here asserts: it prints.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganae import presets  # noqa: E402
from ganae.arena import ArenaRunner  # noqa: E402
from ganae.compare import Variant, _diff  # noqa: E402


def wall(base, variants, seeds: int, steps: int, ensembles: bool) -> tuple[float, str]:
    """Seconds from play() to "finished", and how the runs were grouped."""
    arena = ArenaRunner(base, variants, seeds=range(seeds), steps=steps, max_runs=(1 + len(variants)) * seeds,
                        grace_s=None, ensembles=ensembles)
    try:
        t0 = time.perf_counter()
        arena.play()
        if not arena.wait_for(lambda v: v.state in ("finished", "error", "stopped"), timeout=3600):
            raise SystemExit("the arena did not finish within an hour")
        seconds = time.perf_counter() - t0
        view = arena.view()
        if view.state != "finished":
            raise SystemExit(f"the arena ended in state {view.state}: {view.message}")
        groups = arena.call(lambda cmp: [len(idx) for idx, _ in cmp.cohort.groups])
        diverged = sum(1 for r in view.runs if r.error)
        return seconds, f"{len(groups)} groups of {'/'.join(map(str, groups))}, {diverged} diverged"
    finally:
        arena.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="steps per run")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per variant")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, as the Arena)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base, rec = presets.get("ring8-vanilla", **{"train.device": args.device}), presets.get("ring8-recommended")
    variants = [Variant("EMA 0.99", {"tricks.ema": 0.99}), Variant("recommended", _diff(base, rec))]
    print(f"# ganae arena wall time: ring-8, 3 variants × {args.seeds} seeds × {args.steps} steps, device "
          f"{args.device}, {args.threads} thread(s), torch {torch.__version__}", flush=True)
    walls = {}
    for ensembles in (False, True):
        walls[ensembles], how = wall(base, variants, args.seeds, args.steps, ensembles)
        print(f"{'after  (ensembles)' if ensembles else 'before (solo runs)'}: {walls[ensembles]:.1f} s  ({how})",
              flush=True)
    print(f"before ÷ after: {walls[False] / walls[True]:.2f}×")


if __name__ == "__main__":
    main()

"""How much faster is the GPU? Conv-GAN training it/s on the accelerator ÷ on the CPU, in the same process.

    .venv/bin/python benchmarks/gpu_speedup.py [--steps 200] [--repeats 3] [--cpu-threads 0]

For each case (the digits DCGAN of the recommended preset at batch 64, the same at batch 256, the sprites
32×32 conv GAN at batch 128) it builds the same Trainer on the CPU (all cores unless --cpu-threads says
otherwise: the fair comparison is a whole CPU against a whole GPU) and on cuda (or mps), trains `steps`
iterations after a warm-up, `repeats` times, alternating, and prints the median it/s of each and the ratio
GPU ÷ CPU (target ≥ 10 for the conv GAN). The GPU timing synchronises before reading the clock. Where no
GPU is visible it prints the CPU figures and says so. Nothing here asserts: it prints.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganae import device as device_mod, presets  # noqa: E402
from ganae.config import ConfigWarning  # noqa: E402
from ganae.trainer import Trainer  # noqa: E402

CASES = {
    "digits DCGAN, batch 64": ("digits-recommended", {"train.batch_size": 64}),
    "digits DCGAN, batch 256": ("digits-recommended", {"train.batch_size": 256}),
    "sprites conv GAN 32×32, batch 128": ("digits-recommended", {"data.name": "sprites", "data.n": 5000,
                                                                 "train.batch_size": 128}),
}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def its(trainer: Trainer, steps: int) -> float:
    _sync(trainer.device)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        n = min(50, steps - done)
        trainer.step(n)
        done += n
    _sync(trainer.device)
    return steps / (time.perf_counter() - t0)


def build(preset: str, updates: dict, device: str) -> Trainer:
    cfg = presets.get(preset, **{**updates, "train.device": device, "train.steps": 100000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return Trainer(cfg)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-threads", type=int, default=0, help="torch threads on the CPU (0: all cores)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.cpu_threads or os.cpu_count() or 1)
    acc = device_mod.pick("auto")
    print(f"# ganae GPU speed-up: torch {torch.__version__}, CPU {torch.get_num_threads()} thread(s), "
          f"accelerator: {device_mod.describe(acc) if acc.type != 'cpu' else 'none visible'}")
    print("| case | CPU it/s | GPU it/s | GPU ÷ CPU |\n|---|--:|--:|--:|")
    for name, (preset, updates) in CASES.items():
        cpu_t = build(preset, updates, "cpu")
        gpu_t = build(preset, updates, str(acc)) if acc.type != "cpu" else None
        its(cpu_t, 10)
        if gpu_t is not None:
            its(gpu_t, 20)
        cpu_runs, gpu_runs = [], []
        for _ in range(args.repeats):
            cpu_runs.append(its(cpu_t, max(10, args.steps // 10)))     # the CPU is slow: fewer steps suffice
            if gpu_t is not None:
                gpu_runs.append(its(gpu_t, args.steps))
        c = statistics.median(cpu_runs)
        if gpu_t is None:
            print(f"| {name} | {c:.1f} | — | — |", flush=True)
        else:
            g = statistics.median(gpu_runs)
            print(f"| {name} | {c:.1f} | {g:.1f} | {g / c:.1f} |", flush=True)


if __name__ == "__main__":
    main()

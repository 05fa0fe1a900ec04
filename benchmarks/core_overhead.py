"""How much does the Trainer cost over a hand-written PyTorch loop of the same nets?

    .venv/bin/python benchmarks/core_overhead.py [--device auto] [--steps 300] [--repeats 5] [--threads 1]

For each case (ring-8 MLP GAN, digits conv GAN, digits conv AE) it builds a Trainer, then deep-copies its nets
and optimisers into a plain loop doing the same work per iteration (sample a batch, D step, G step, or the
AE step). The two run alternately in the same process, `repeats` times; it prints it/s of each (median) and the
ratio ganae ÷ plain (target ≥ 0.95). The Trainer's extra work per step -- metrics kept on the device, D(x) /
D(G(z)) means, gradient norms, history -- is included; it reads metrics back once per call of step(n).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganae import device as device_mod  # noqa: E402
from ganae.config import RunConfig  # noqa: E402
from ganae.trainer import Trainer  # noqa: E402

CASES = {
    "ring8 MLP GAN": {"data.name": "ring8", "train.batch_size": 256},
    "digits conv GAN": {"data.name": "digits", "model.arch": "conv", "model.latent_dim": 32,
                        "train.batch_size": 64},
    "digits conv AE": {"data.name": "digits", "model.family": "ae", "model.arch": "conv", "model.latent_dim": 8,
                       "train.batch_size": 64},
}


def adam_args(trainer: Trainer, name: str) -> dict:
    return {k: v for k, v in trainer.model.optimizers[name].defaults.items() if k in ("lr", "betas")}


def plain_loop(trainer: Trainer):
    """A hand-written loop over copies of the trainer's nets (same sizes, same optimiser settings)."""
    model = copy.deepcopy(trainer.model)
    x_all = trainer.data.x_train
    B, dev = trainer.cfg.train.batch_size, trainer.device
    zdim = trainer.cfg.model.latent_dim
    if trainer.cfg.model.family == "gan":
        G, D = model.g, model.d
        opt_g = torch.optim.Adam(G.parameters(), **adam_args(trainer, "g"))
        opt_d = torch.optim.Adam(D.parameters(), **adam_args(trainer, "d"))

        def run(n: int) -> None:
            for _ in range(n):
                x = x_all[torch.randint(len(x_all), (B,), device=dev)]
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                z = torch.randn(B, zdim, device=dev)
                with torch.no_grad():
                    fake = G(z)
                loss_d = F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # (2) Update G network: maximize log(D(G(z)))
                z = torch.randn(B, zdim, device=dev)
                loss_g = F.softplus(-D(G(z))).mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return run
    enc, dec = model.encoder, model.decoder
    opt = torch.optim.Adam(model.parameters(), **adam_args(trainer, "ae"))

    def run(n: int) -> None:
        for _ in range(n):
            x = x_all[torch.randint(len(x_all), (B,), device=dev)]
            loss = (dec(enc(x)) - x).pow(2).flatten(1).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return run


def measure(fn, steps: int) -> float:
    t0 = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=50, help="iterations per Trainer.step(n) call (as the runner)")
    args = ap.parse_args()
    device_mod.set_threads(args.threads)
    dev = device_mod.pick(args.device)
    print(f"device: {device_mod.describe(dev)}   torch {torch.__version__}   steps {args.steps} x {args.repeats}")
    print(f"{'case':18s} {'ganae it/s':>11s} {'plain it/s':>11s} {'ratio':>7s}")
    for name, upd in CASES.items():
        trainer = Trainer(RunConfig().with_updates(**upd), device=dev)
        plain = plain_loop(trainer)

        def ours(n: int) -> None:
            done = 0
            while done < n:
                k = min(args.chunk, n - done)
                trainer.step(k)
                done += k

        ours(20), plain(20)                  # warm-up (allocator, kernels)
        a, b = [], []
        for _ in range(args.repeats):
            a.append(measure(ours, args.steps))
            b.append(measure(plain, args.steps))
        ga, pb = statistics.median(a), statistics.median(b)
        print(f"{name:18s} {ga:11.1f} {pb:11.1f} {ga / pb:7.3f}")


if __name__ == "__main__":
    main()

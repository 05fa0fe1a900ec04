"""How much does the Trainer cost over a hand-written PyTorch loop of the same nets?

    .venv/bin/python benchmarks/core_overhead.py [--device auto] [--steps 300] [--repeats 7] [--chunk 50]

For each case (ring-8 MLP GAN, digits conv GAN, digits conv AE) it builds a Trainer, then deep-copies its nets
into a plain loop doing the same work per iteration: sample a batch, (1) a D step on the ns loss, (2) a G step on
fresh noise -- or the AE step -- with Adam at the Trainer's learning rates and betas, and one read of the losses
at the end of each chunk, as the Trainer reads its metrics. The plain loop is what a user writes: torch's default
optimiser implementation, no metrics beyond the losses. The Trainer's extra work per step -- D(x) / D(G(z))
means, gradient norms, history, the run's private generator -- is included.

The two loops alternate chunk by chunk (`chunk` iterations each, as the runner calls `step(chunk)`; the order
flips every chunk), so both see the same load. Each repeat gives one ratio ganae it/s ÷ plain it/s; the table
shows the median it/s of each, the median ratio and its spread (min-max) over the repeats, and the load
average before and after. The exit status is 1 when a median ratio is below its target (ring-8 ≥ 1.0, the
others ≥ 0.95): a run on a busy machine is then visibly marked as such, not silently recorded.
"""
from __future__ import annotations

import argparse
import copy
import os
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

CASES = {  # name -> (config updates, target ratio)
    "ring8 MLP GAN": ({"data.name": "ring8", "train.batch_size": 256}, 1.0),
    "digits conv GAN": ({"data.name": "digits", "model.arch": "conv", "model.latent_dim": 32,
                         "train.batch_size": 64}, 0.95),
    "digits conv AE": ({"data.name": "digits", "model.family": "ae", "model.arch": "conv", "model.latent_dim": 8,
                        "train.batch_size": 64}, 0.95),
}


def adam_args(trainer: Trainer, name: str) -> dict:
    return {k: v for k, v in trainer.model.optimizers[name].defaults.items() if k in ("lr", "betas")}


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def plain_loop(trainer: Trainer, tuned: bool = False):
    """A hand-written loop over copies of the trainer's nets (same sizes, same optimiser settings).

    tuned: the two savings the Trainer makes over this loop, made here too -- fused Adam, and G's backward
    computing G's gradients only -- so that the ratio shows the Trainer's bookkeeping alone."""
    fused = True if tuned else None
    model = copy.deepcopy(trainer.model)
    x_all = trainer.data.x_train
    B, dev = trainer.cfg.train.batch_size, trainer.device
    zdim = trainer.cfg.model.latent_dim
    if trainer.cfg.model.family == "gan":
        assert trainer.cfg.objective.loss == "ns" and trainer.cfg.model.noise == "normal"
        G, D = model.g, model.d
        opt_g = torch.optim.Adam(G.parameters(), **adam_args(trainer, "g"), fused=fused)
        opt_d = torch.optim.Adam(D.parameters(), **adam_args(trainer, "d"), fused=fused)
        g_params = list(G.parameters())

        def run(n: int) -> tuple[float, float]:
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
                loss_g.backward(inputs=g_params if tuned else None)
                opt_g.step()
            return loss_d.item(), loss_g.item()
        return run
    enc, dec = model.encoder, model.decoder
    opt = torch.optim.Adam(model.parameters(), **adam_args(trainer, "ae"), fused=fused)

    def run(n: int) -> tuple[float, float]:
        for _ in range(n):
            x = x_all[torch.randint(len(x_all), (B,), device=dev)]
            loss = (dec(enc(x)) - x).pow(2).flatten(1).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss.item(), 0.0
    return run


def timed(fn, n: int, dev: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) for `fn(n)`."""
    sync(dev)
    w0, c0 = time.perf_counter(), time.thread_time()
    fn(n)
    sync(dev)
    return time.perf_counter() - w0, time.thread_time() - c0


def compare(ours, plain, steps: int, chunk: int, repeats: int, dev: torch.device) -> dict[str, list[float]]:
    """Per repeat: it/s of each loop, their wall-clock ratio and their CPU-time ratio. Within a repeat the loops
    alternate chunk by chunk, the order flipping every chunk."""
    out: dict[str, list[float]] = {"ours": [], "plain": [], "ratio": [], "cpu": []}
    chunks = max(1, steps // chunk)
    for _ in range(repeats):
        wa = ca = wb = cb = 0.0
        for i in range(chunks):
            for fn in ((ours, plain) if i % 2 == 0 else (plain, ours)):
                w, c = timed(fn, chunk, dev)
                if fn is ours:
                    wa, ca = wa + w, ca + c
                else:
                    wb, cb = wb + w, cb + c
        out["ours"].append(chunks * chunk / wa)
        out["plain"].append(chunks * chunk / wb)
        out["ratio"].append(wb / wa)
        out["cpu"].append(cb / ca if ca > 0 else float("nan"))
    return out


def load_average() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=300, help="iterations of each loop per repeat")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=50, help="iterations per Trainer.step(n) call (as the runner)")
    ap.add_argument("--plain-tuned", action="store_true",
                    help="give the plain loop the Trainer's two savings (fused Adam, G-only backward)")
    ap.add_argument("--case", action="append", choices=list(CASES), help="only these cases (repeatable)")
    args = ap.parse_args(argv)
    if args.repeats < 5:
        ap.error("--repeats must be at least 5: the spread of the ratio needs them")
    device_mod.set_threads(args.threads)
    dev = device_mod.pick(args.device)
    print(f"device: {device_mod.describe(dev)}   torch {torch.__version__}   threads {torch.get_num_threads()}   "
          f"steps {args.steps} x {args.repeats} repeats, chunks of {args.chunk}, alternating"
          f"{'   plain loop: tuned (fused Adam, G-only backward)' if args.plain_tuned else ''}")
    print(f"before: {load_average()}")
    print(f"{'case':18s} {'ganae it/s':>11s} {'plain it/s':>11s} {'ratio':>7s} {'spread':>13s} {'cpu ratio':>10s} "
          f"{'target':>7s}")
    failed = []
    for name in args.case or list(CASES):
        upd, target = CASES[name]
        trainer = Trainer(RunConfig().with_updates(**upd), device=dev)
        plain = plain_loop(trainer, tuned=args.plain_tuned)
        trainer.step(20), plain(20)                  # warm-up (allocator, kernels)
        r = compare(trainer.step, plain, args.steps, args.chunk, args.repeats, dev)
        ratio = statistics.median(r["ratio"])
        mark = "" if ratio >= target else "   BELOW TARGET"
        if mark:
            failed.append(name)
        print(f"{name:18s} {statistics.median(r['ours']):11.1f} {statistics.median(r['plain']):11.1f} {ratio:7.3f} "
              f"{min(r['ratio']):6.3f}-{max(r['ratio']):.3f} {statistics.median(r['cpu']):10.3f} {target:7.2f}{mark}",
              flush=True)
    print(f"after:  {load_average()}")
    if failed:
        print(f"FAIL: {', '.join(failed)} below target (a loaded machine shows here as a low ratio: re-run quiet)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How good are the presets? Each one trained for its own `train.steps`, over several seeds, next to published anchors.

    .venv/bin/python benchmarks/quality.py                # every preset below × 5 seeds (~50 min of CPU, one core)
    .venv/bin/python benchmarks/quality.py --quick        # 1 seed, a quarter of the steps (a smoke run, ~3 min)
    .venv/bin/python benchmarks/quality.py --presets ring8-recommended,digits-ae --seeds 3
    .venv/bin/python benchmarks/quality.py --ray 127.0.0.1:6379   # every preset a Ray task (ganae/cluster.py)

For every preset it builds one Trainer per seed on the CPU (one torch thread unless --threads says otherwise), trains
the seeds together as one batched Ensemble (ganae/ensemble.py: each member exactly its solo run; `--solo` steps them
one by one instead, and presets that cannot be batched fall back to that by themselves), `train.steps` iterations,
calls `Trainer.evaluate()` and prints mean ± sd over seeds of
- 2D mixtures: modes covered and the share of high-quality samples (VEEGAN / PacGAN protocol, 2,500 samples);
- digits GANs: the Fréchet distance in the shipped classifier's standardised features (checkpoints/);
- autoencoders: the test-split reconstruction MSE per pixel on the [0, 1] scale;
- the time of training (evaluation excluded) per run: wall seconds, and the CPU seconds of this process -- with one
  thread that is what the wall time would be on an otherwise idle core (on a shared, busy machine the wall time is
  longer). For an ensemble both are its time divided by its members.

Anchors printed beside them:
- ring-8 and grid-25: the best rows of PacGAN's 2D experiments (Lin et al. 2018, same protocol): 7.9 modes /
  95.6 % HQ on the ring, 24.8 modes / 93.6 % HQ on the grid (PacGAN4);
- digits GAN: computed here, in the same features and protocol as the GANs (Trainer.evaluate draws as many images as
  the test split holds, 360, and compares them with it) -- the real-data floor (360 distinct training images vs the
  test split: a generator cannot be expected to score below it) and scikit-learn's PCA + kernel-density generator,
  as in its "Kernel Density Estimation" example (PCA with 15 components, bandwidth by a 5-fold grid search over
  logspace(-1, 1, 20), 360 samples);
- autoencoders: PCA with as many components as the code has dimensions, fitted on the training split (for digits and
  8 components, MSE ≈ 0.024 per pixel in [0, 1]).

The output is a Markdown table (paste it in the README). Nothing here asserts: it prints.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganae import data as data_mod, features, metrics, presets  # noqa: E402
from ganae.config import ConfigWarning, DataConfig  # noqa: E402
from ganae.ensemble import Cohort  # noqa: E402
from ganae.trainer import EVAL_IMAGES, Trainer  # noqa: E402

PRESETS = ["ring8-vanilla", "ring8-recommended", "grid25-vanilla", "grid25-recommended", "digits-vanilla",
           "digits-recommended", "digits-ae", "digits-vae", "sprites-ae", "sprites-vae"]
# (modes, HQ %) of the best published row (PacGAN, Lin et al. 2018)
PUBLISHED = {"ring8": ("PacGAN (Lin et al. 2018)", 7.9, 95.6), "grid25": ("PacGAN4 (Lin et al. 2018)", 24.8, 93.6)}
COLUMNS = [("modes", "modes", 1.0, "{:.1f}"), ("hq", "HQ %", 100.0, "{:.1f}"), ("fd", "FD", 1.0, "{:.2f}"),
           ("test_mse", "test MSE", 1.0, "{:.4f}"), ("seconds", "train s", 1.0, "{:.0f}"),
           ("cpu", "CPU s", 1.0, "{:.0f}")]


def mean_sd(values: list[float], fmt: str) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return f"{fmt.format(statistics.fmean(vals))} ± {fmt.format(statistics.stdev(vals))}"


def row(label: str, steps: str, n: str, cells: dict[str, str]) -> str:
    return "| " + " | ".join([label, steps, n] + [cells.get(k, "—") for k, *_ in COLUMNS]) + " |"


def header() -> str:
    names = ["preset / anchor", "steps", "seeds"] + [c[1] for c in COLUMNS]
    return "| " + " | ".join(names) + " |\n|" + "|".join(["---"] + ["--:"] * (len(names) - 1)) + "|"


def run_preset(name: str, seeds: list[int], scale: float, device: str, batched: bool = True
               ) -> list[dict[str, float]]:
    """Train the preset's seeds together (one Ensemble, or one by one) and evaluate each."""
    cfgs = []
    for seed in seeds:
        cfg = presets.get(name, **{"train.seed": seed, "train.device": device})
        steps = max(1, int(round(cfg.train.steps * scale)))
        if steps != cfg.train.steps:        # keep lr schedules ending where the (shorter) run ends
            cfg = cfg.with_updates(**{"train.steps": steps})
        cfgs.append(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cohort = Cohort([Trainer(c) for c in cfgs], batched=batched)
    for note in cohort.notes:
        print(f"  {name}: {note}", flush=True)
    c0 = time.process_time()
    cohort.step(steps, chunk=steps)
    cpu = (time.process_time() - c0) / len(seeds)
    out = []
    for i in range(len(seeds)):
        tr = cohort.trainer(i)
        r = {} if cohort.errors[i] else dict(tr.evaluate(record=False))
        r["seconds"], r["cpu"], r["steps"] = tr.seconds, cpu, steps
        out.append(r)
    return out


# ---- anchors computed here ---------------------------------------------------------------------------------
def digits_anchors(seeds: list[int], device: str) -> list[str]:
    """The real floor and scikit-learn's PCA + KDE generator, scored like the GANs (as many samples as Trainer.evaluate
    draws vs the test split)."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KernelDensity

    net = features.load_classifier("digits", device)
    if net is None:
        return []
    d = data_mod.load(DataConfig(name="digits"), device)
    n = min(EVAL_IMAGES, max(len(d.x_test), 100))
    raw = ((d.x_train.cpu().numpy().reshape(len(d.x_train), -1) + 1.0) * 8.0)   # back to 0..16, as in the example
    pca = PCA(n_components=15, whiten=False).fit(raw)
    grid = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1, 1, 20)}).fit(pca.transform(raw))
    kde = grid.best_estimator_
    floor, kde_fd = [], []
    for s in seeds:
        g = torch.Generator().manual_seed(1000 + s)
        idx = torch.randperm(len(d.x_train), generator=g)[:n].to(d.x_train.device)    # distinct images
        floor.append(features.image_metrics(net, d.x_train[idx], d.x_test)["fd"])
        z = kde.sample(n, random_state=s)
        img = np.clip(pca.inverse_transform(z), 0.0, 16.0) / 8.0 - 1.0
        fake = torch.from_numpy(img.astype(np.float32)).view(-1, *d.shape).to(d.x_train.device)
        kde_fd.append(features.image_metrics(net, fake, d.x_test)["fd"])
    bw = kde.bandwidth
    return [row("*digits: real training images (floor)*", "—", str(len(seeds)), {"fd": mean_sd(floor, "{:.2f}")}),
            row(f"*digits: PCA(15) + KDE, bandwidth {bw:.2f} (scikit-learn example)*", "—", str(len(seeds)),
                {"fd": mean_sd(kde_fd, "{:.2f}")})]


def pca_anchor(data_cfg: DataConfig, k: int, device: str) -> str:
    """PCA with k components fitted on the training split; reconstruction MSE of the test split in [0, 1] scale."""
    from sklearn.decomposition import PCA

    d = data_mod.load(data_cfg, device)
    xtr = d.x_train.cpu().numpy().reshape(len(d.x_train), -1)
    xte = d.x_test.cpu().numpy().reshape(len(d.x_test), -1)[:1000]    # the split Trainer.evaluate uses
    pca = PCA(n_components=k).fit(xtr)
    rec = pca.inverse_transform(pca.transform(xte))
    mse = metrics.recon_mse(xte, rec)
    return row(f"*{data_cfg.name}: PCA with {k} components*", "—", "—", {"test_mse": f"{mse:.4f}"})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per preset (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 seed and a quarter of each preset's steps")
    ap.add_argument("--scale", type=float, help="this share of each preset's steps (default 1, --quick 0.25)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu (default; the targets are for the CPU), cuda, auto")
    ap.add_argument("--solo", action="store_true", help="train the seeds one by one instead of as one ensemble")
    ap.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                    help="train every preset (its seeds as one ensemble) as a Ray task on this cluster (HOST:PORT or auto)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [p.strip() for p in args.presets.split(",") if p.strip()]
    for nm in names:
        presets.get(nm)                    # an unknown name fails before any training
    seeds = list(range(1 if args.quick else args.seeds))
    scale = args.scale or (0.25 if args.quick else 1.0)
    print(f"# ganae quality benchmark: {len(names)} presets × {len(seeds)} seed(s), "
          f"{'full length' if scale == 1 else f'{scale:g} of the steps'}, device {args.device}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}", flush=True)
    remote: dict[str, object] = {}
    if args.ray:                           # one task per preset (its seeds as one ensemble); the table is the same
        from ganae import cluster
        try:
            out = cluster.run_tasks(run_preset, [(nm, seeds, scale, args.device, not args.solo) for nm in names],
                                    address=args.ray, progress=cluster.text_progress())
        except cluster.ClusterError as e:
            sys.exit(f"error: {e}")
        remote = dict(zip(names, out))
    lines: list[str] = []
    for i, nm in enumerate(names):
        results = remote[nm] if args.ray else run_preset(nm, seeds, scale, args.device, batched=not args.solo)
        if not isinstance(results, list):    # a Ray task lost twice (cluster.TaskLost)
            print(f"  {nm}: no result, the Ray task failed ({results.why})", flush=True)
            continue
        for s, r in zip(seeds, results):
            print(f"  {nm} seed {s}: " + ", ".join(f"{k} {r[k]:.4g}" for k, *_ in COLUMNS if k in r), flush=True)
        if not results:
            continue
        cells = {k: mean_sd([r[k] * mul for r in results if k in r], fmt) for k, _, mul, fmt in COLUMNS}
        lines.append(row(f"`{nm}`", str(results[0]["steps"]), str(len(results)), cells))
        ds = presets.get(nm).data.name
        if i + 1 < len(names) and presets.get(names[i + 1]).data.name == ds:
            continue
        # the last preset of this dataset: its anchors follow
        group = [presets.get(n) for n in names if presets.get(n).data.name == ds]
        if ds in PUBLISHED:
            who, modes, hq = PUBLISHED[ds]
            lines.append(row(f"*{ds}: {who}*", "—", "—", {"modes": f"{modes:.1f}", "hq": f"{hq:.1f}"}))
        if ds == "digits" and any(c.is_gan for c in group):
            lines.extend(digits_anchors(seeds, args.device))
        codes = {c.model.latent_dim: c.data for c in group if c.model.family in ("ae", "vae")}
        for k in sorted(codes):
            lines.append(pca_anchor(codes[k], k, args.device))
    print()
    print(header())
    print("\n".join(lines))


if __name__ == "__main__":
    main()

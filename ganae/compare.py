"""Compare variants of a base configuration, with the same seeds, advancing together.

    cmp = Comparison(presets.get("ring8-vanilla"), [Variant("R1 + EMA", {"objective.r1": 0.1, "tricks.ema": 0.99})],
                     seeds=[0, 1, 2])
    cmp.step(500)                 # every (variant, seed) run advances 500 steps, in round-robin chunks
    cmp.table()                   # one row per variant: metric mean ± sd over exactly len(seeds) runs
    cmp.write("out/")             # table.csv, histories.csv, losses.png, samples.png

The base itself is always the first variant ("base"), so a comparison reads "what does this change do?".
Runs train as ensembles (ganae/ensemble.py): variants × seeds that share a structure are stacked into one batched
model, each member exactly its solo run; what cannot be batched trains solo (`cohort.notes` says why).
Fair share: groups advance in chunks of `chunk` steps in turn, so at any moment they differ by at most one chunk.
`train_runs(cfgs, steps)` is the same engine as a plain function (for a process pool or a Ray task).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import metrics
from .config import ConfigError, RunConfig
from .ensemble import Cohort, Ensemble
from .trainer import Trainer

# metric -> True when higher is better, False when lower is, None when it is not ranked (a period is a
# description of the oscillation, not a score)
TABLE_METRICS: dict[str, bool | None] = {
    "modes": True, "hq": True, "kl": False, "js": False, "fd": False, "precision": True, "recall": True,
    "classes": True, "test_mse": False, "amplitude": False, "period": None, "ms_per_step": False,
}


@dataclass(frozen=True)
class Variant:
    name: str
    updates: dict[str, Any] = field(default_factory=dict)

    def config(self, base: RunConfig, seed: int) -> RunConfig:
        try:
            return base.with_updates(**{**self.updates, "train.seed": seed}).validate()
        except ConfigError as e:
            raise ConfigError(e.field, f"variant '{self.name}': {str(e).split(': ', 1)[-1]}") from None


@dataclass
class Run:
    variant: str
    seed: int
    solo: Trainer                # the run's own Trainer (an ensemble member's record)
    error: str = ""              # divergence message, the run stops advancing
    ensemble: Ensemble | None = None
    index: int = 0               # its member index in `ensemble`

    @property
    def trainer(self) -> Trainer:
        """The run's Trainer, up to date (an ensemble member's weights are brought back into it)."""
        return self.ensemble.view(self.index) if self.ensemble is not None else self.solo

    @property
    def step(self) -> int:
        return self.solo.step_count


class Comparison:
    def __init__(self, base: RunConfig, variants: Iterable[Variant], seeds: Iterable[int] = (0,),
                 chunk: int = 25, device: str | None = None, *, only: str | None = None,
                 runs: Iterable[Run] | None = None, ensembles: bool = True):
        """`only`: build just that variant's runs (one part of a sweep, trained by a Ray task: ganae/cluster.py).
        `runs`: runs built or trained elsewhere, taken instead of building new ones (the parts of a sweep, or the
        copies of an arena's runs). `ensembles`: train runs of one structure as one batched Ensemble."""
        self.base = base.validate()
        self.variants = [Variant("base", {})] + [v for v in variants if v.name != "base"]
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ConfigError("variants", "two variants have the same name; give each a distinct name")
        self.seeds = list(seeds)
        if not self.seeds:
            raise ConfigError("seeds", "at least one seed is needed")
        if only is not None and only not in names:
            raise ConfigError("variants", f"there is no variant named '{only}'")
        self.chunk = int(chunk)
        cfgs = [(v.name, s, v.config(self.base, s)) for v in self.variants for s in self.seeds
                if only in (None, v.name)]
        if runs is not None:       # each given run must be the one its (variant, seed) describes
            runs = list(runs)
            want = {(name, s): c for name, s, c in cfgs}
            if any(want.get((r.variant, r.seed)) != r.solo.cfg for r in runs):
                raise ConfigError("runs", "the runs given do not match the variants and seeds")
            self.runs: list[Run] = runs
        else:
            self.runs = [Run(name, s, Trainer(c, device=device)) for name, s, c in cfgs]
        self.evals: dict[tuple[str, int], dict[str, float]] = {}
        self.failed: dict[tuple[str, int], str] = {}   # (variant, seed) -> why it has no result (a lost Ray task)
        self.ensembles = ensembles
        self.cohort: Cohort | None = None      # built at the first step()

    # ---- advancing -----------------------------------------------------------------------------
    def step(self, n: int, chunk: int | None = None) -> None:
        """Advance every healthy run by n steps: ensembles and solo runs take turns in chunks of `chunk` steps
        (default: self.chunk) -- a fair share. A run that diverges or fails stops alone (`Run.error`)."""
        if self.cohort is None:
            self.cohort = Cohort([r.solo for r in self.runs], batched=self.ensembles,
                                 errors=[r.error for r in self.runs])
            for idx, unit in self.cohort.groups:
                if isinstance(unit, Ensemble):
                    for k, i in enumerate(idx):
                        self.runs[i].ensemble, self.runs[i].index = unit, k
        self.cohort.errors = [r.error for r in self.runs]
        self.cohort.step(n, int(chunk or self.chunk))
        for r, e in zip(self.runs, self.cohort.errors):
            r.error = e

    def evaluate(self) -> None:
        for r in self.runs:
            if not r.error:
                self.evals[(r.variant, r.seed)] = r.trainer.evaluate()

    # ---- results --------------------------------------------------------------------------------
    def run_metrics(self, r: Run) -> dict[str, float]:
        """The numbers of one run: its latest evaluation, oscillation of D's loss, time per step."""
        out = dict(self.evals.get((r.variant, r.seed), {}))
        h = r.solo.history.arrays()          # the record is always up to date (no ensemble weights needed)
        if "loss_d" in h and len(h["step"]) >= 3:
            osc = metrics.oscillation(h["loss_d"], h["step"])
            out["amplitude"] = float(osc["amplitude"])
            out["period"] = float(osc["period"]) if osc["period"] else math.nan
        if r.step:
            out["ms_per_step"] = 1000.0 * r.solo.seconds / r.step
        out["diverged"] = 1.0 if r.error else 0.0
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per variant: for each metric `<m>` the mean and `<m>_sd` over the seeds, and `n` runs."""
        rows = []
        for v in self.variants:
            runs = [r for r in self.runs if r.variant == v.name]
            per = [self.run_metrics(r) for r in runs]
            row: dict[str, Any] = {"variant": v.name, "n": len(runs),
                                   "diverged": int(sum(p.get("diverged", 0) for p in per))}
            lost = [why for (name, _), why in self.failed.items() if name == v.name]
            if lost:
                row["failed"], row["note"] = len(lost), " ".join(dict.fromkeys(lost))
            keys = [k for k in TABLE_METRICS if any(k in p for p in per)]
            for k in keys:
                vals = np.array([p.get(k, math.nan) for p in per], dtype=np.float64)
                finite = vals[np.isfinite(vals)]
                row[k] = float(finite.mean()) if len(finite) else math.nan
                row[f"{k}_sd"] = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
            rows.append(row)
        return rows

    def winners(self) -> dict[str, str]:
        """metric -> the variant with the best mean (ties: the first)."""
        rows, out = self.table(), {}
        for k, higher in TABLE_METRICS.items():
            if higher is None:
                continue
            cand = [(r[k], r["variant"]) for r in rows if k in r and math.isfinite(r[k])]
            if len(cand) >= 2 and len({c[0] for c in cand}) > 1:
                out[k] = (max if higher else min)(cand, key=lambda c: c[0])[1]
        return out

    def history_rows(self) -> list[dict[str, Any]]:
        """Long format: variant, seed, step, metric, value."""
        rows = []
        for r in self.runs:
            h = r.trainer.history.arrays()
            for k, vals in h.items():
                if k == "step":
                    continue
                for s, v in zip(h["step"], vals):
                    if math.isfinite(v):
                        rows.append({"variant": r.variant, "seed": r.seed, "step": int(s), "metric": k,
                                     "value": float(v)})
        return rows

    # ---- export ----------------------------------------------------------------------------------
    def write(self, folder: str | Path) -> list[Path]:
        """table.csv, histories.csv, losses.png, samples.png in `folder`."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = [write_csv(out / "table.csv", self.table()), write_csv(out / "histories.csv", self.history_rows())]
        paths += plot_pngs(self, out)
        return paths


def train_runs(cfgs: list[RunConfig], steps: int, chunk: int = 25, device: str | None = None,
               evaluate: bool = True) -> list[tuple[Trainer, str, dict[str, float]]]:
    """Train `cfgs` for `steps` steps on one engine (ensembles by structure, solo where not): per config its
    Trainer, its divergence message ("" when healthy) and its evaluation. A plain function: a task for a pool."""
    cohort = Cohort([Trainer(c, device=device) for c in cfgs])
    cohort.step(steps, chunk)
    out = []
    for i in range(len(cfgs)):
        t, err = cohort.trainer(i), cohort.errors[i]
        out.append((t, err, t.evaluate() if evaluate and not err else {}))
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    return path


def plot_pngs(cmp: Comparison, out: Path) -> list[Path]:
    """Loss curves (one panel per variant, shared axes) and a sample panel per variant, with matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cmp.variants)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), sharex=True, sharey=True, squeeze=False)
    for ax, v in zip(axes[0], cmp.variants):
        for r in (r for r in cmp.runs if r.variant == v.name):
            h = r.trainer.history.arrays()
            for key, color in (("loss_d", "tab:blue"), ("loss_g", "tab:orange"), ("loss", "tab:green")):
                if key in h:
                    ax.plot(h["step"], h[key], color=color, lw=0.8, alpha=0.7,
                            label=key if r.seed == cmp.seeds[0] else None)
        ax.set_title(v.name, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    losses = out / "losses.png"
    fig.savefig(losses, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.0), squeeze=False)
    for ax, v in zip(axes[0], cmp.variants):
        r = next((r for r in cmp.runs if r.variant == v.name), None)
        ax.set_title(v.name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        if r is None:       # every run of this variant was lost (see Comparison.failed)
            continue
        snap = r.trainer.snapshot(visuals=False)
        imgs = snap.samples if snap.samples is not None else snap.recons
        if imgs is None:
            continue
        if snap.kind == "points":
            real = r.trainer.data.x_test[:1000].cpu().numpy()
            ax.scatter(real[:, 0], real[:, 1], s=2, c="lightgray")
            ax.scatter(imgs[:, 0], imgs[:, 1], s=2, c="tab:red")
            ax.set_aspect("equal")
        else:
            ax.imshow(image_grid(imgs[:64]), cmap="gray", vmin=0, vmax=1)
    fig.tight_layout()
    samples = out / "samples.png"
    fig.savefig(samples, dpi=110)
    plt.close(fig)
    return [losses, samples]


def image_grid(imgs: np.ndarray, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one (rows·H, nrow·W) or (…, 3) image in [0, 1]."""
    import torch
    from torchvision.utils import make_grid
    grid = make_grid(torch.as_tensor(imgs), nrow=nrow, padding=pad, normalize=True, value_range=(-1, 1),
                     pad_value=1.0)
    g = grid.permute(1, 2, 0).numpy()
    return g[..., 0] if imgs.shape[1] == 1 else g


# ---- named comparisons that reproduce known results -----------------------------------------------
def _p(name: str, **more: Any) -> RunConfig:
    from . import presets
    return presets.get(name, **more)


def _diff(base: RunConfig, other: RunConfig) -> dict[str, Any]:
    """The dotted fields where `other` differs from `base`."""
    a, b = base.to_dict(), other.to_dict()
    return {f"{s}.{k}": b[s][k] for s in a for k in a[s] if a[s][k] != b[s][k] and k != "seed"}


def comparisons() -> dict[str, tuple[str, RunConfig, list[Variant]]]:
    """name -> (what it shows, base config, variants)."""
    ring_v, ring_r = _p("ring8-vanilla"), _p("ring8-recommended")
    clip, gp = _p("ring8-wgan-clip"), _p("ring8-wgan-gp")
    dig = _p("digits-vanilla")
    pre = _p("digits-gan-pretrained")
    random_init = pre.with_updates(**{"model.gan_init": "random"})
    return {
        "vanilla-vs-recommended": ("On ring-8 the vanilla GAN collapses onto a few modes; the stabilised "
                                   "recipe covers all 8.", ring_v, [Variant("recommended", _diff(ring_v, ring_r))]),
        "wgan-clip-vs-gp": ("Weight clipping makes the critic too simple and slow; the gradient penalty "
                            "trains faster and covers the modes.", clip, [Variant("WGAN-GP", _diff(clip, gp))]),
        "spectral-norm": ("Spectral normalisation of D tames a DCGAN's oscillation.", dig,
                          [Variant("spectral norm", {"objective.spectral_norm": "d"})]),
        "generator-ema": ("Averaging G's weights smooths the samples of an oscillating game.", ring_v,
                          [Variant("EMA 0.99", {"tricks.ema": 0.99})]),
        "ae-pretrained-generator": ("Starting G from a pretrained decoder vs from random weights.", random_init,
                                    [Variant("AE-pretrained", {"model.gan_init": "ae"})]),
    }

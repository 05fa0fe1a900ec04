"""Trainer: one run, stepped from outside.

    trainer = Trainer(RunConfig())          # builds data, model and optimisers from a seed
    trainer.step(100)                       # 100 iterations (n_critic D steps + n_gen G steps each)
    trainer.step(1, part="d")               # only D
    snap = trainer.snapshot()               # an immutable, cheap copy of what a UI draws

Everything random in a run -- weights, batches, noise, dropout masks -- comes from the run's seed and its private
generator, so the same config and seed give the same curves on the CPU, even with other runs training in
other threads. Metrics stay on the device during a call of `step(n)` and are read back once at its end.
The history keeps at most `train.history` points per curve: when full, every other point is dropped and the
recording stride doubles, so memory does not grow with steps.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from . import checkpoint, data as data_mod, device as device_mod, models, nets
from .config import ConfigError, RunConfig, shorten
from .models.common import StepContext

PARTS = ("both", "d", "g")
N_POINTS_SHOWN = 1000       # generated / real 2D points in a snapshot
EVAL_SAMPLES = 2500         # samples for the 2D mode metrics (VEEGAN / PacGAN protocol)
EVAL_IMAGES = 1000          # generated images compared with the test split for FD / PRDC


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite; the message says at which step and which quantity."""

    def __init__(self, step: int, key: str, value: float):
        super().__init__(f"training diverged at step {step}: {key} became {value}. Lower the learning rates, "
                         f"add a penalty (gp / r1) or spectral norm, or restore the last good state.")
        self.step, self.key, self.value = step, key, value


class History:
    """Bounded, decimating history of scalar curves sharing one step axis."""

    def __init__(self, cap: int = 2000):
        self.cap = int(cap)
        self.stride = 1
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self.steps)

    def record(self, step: int, metrics: Mapping[str, float]) -> None:
        if step % self.stride:
            return
        n = len(self.steps)
        self.steps.append(int(step))
        for k, v in metrics.items():
            col = self.values.get(k)
            if col is None:
                col = self.values[k] = [math.nan] * n
            col.append(float(v))
        for col in self.values.values():
            if len(col) <= n:
                col.append(math.nan)
        if len(self.steps) > self.cap:
            self.stride *= 2
            keep = [i for i, s in enumerate(self.steps) if s % self.stride == 0]
            self.steps = [self.steps[i] for i in keep]
            self.values = {k: [col[i] for i in keep] for k, col in self.values.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"step": np.asarray(self.steps, dtype=np.int64)}
        out.update({k: np.asarray(v, dtype=np.float64) for k, v in self.values.items()})
        for a in out.values():
            a.setflags(write=False)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"cap": self.cap, "stride": self.stride, "steps": list(self.steps),
                "values": {k: list(v) for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        h = cls(int(d["cap"]))
        h.stride = int(d["stride"])
        h.steps = [int(s) for s in d["steps"]]
        h.values = {str(k): [float(x) for x in v] for k, v in d["values"].items()}
        return h


@dataclass(frozen=True)
class Snapshot:
    """What a page needs to draw one frame. Arrays are read-only copies; safe to hand to another thread."""
    step: int
    family: str
    kind: str                                   # "points" | "images"
    device: str
    last: Mapping[str, float]                   # metrics of the latest step
    history: Mapping[str, np.ndarray]           # "step" + one array per metric
    evals: Mapping[str, np.ndarray]             # "step" + evaluation metrics (modes, hq, kl, js, test_mse, ...)
    samples: np.ndarray | None = None           # generated from fixed noise: (N, 2) or (N, C, H, W)
    sample_labels: np.ndarray | None = None     # AC-GAN: the class each sample was asked for
    inputs: np.ndarray | None = None            # autoencoders: the fixed test batch
    noisy: np.ndarray | None = None             # denoising AE: its corrupted inputs
    recons: np.ndarray | None = None            # autoencoders: reconstructions of `inputs`
    visuals: Mapping[str, np.ndarray] = field(default_factory=dict)   # 2D GAN: heatmap, manifold, arrows
    seconds: float = 0.0                        # wall time spent in step()
    it_per_s: float = 0.0                       # iterations per second over the latest call


def _ro(a: torch.Tensor | np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    arr = a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    return arr


def plane_region(bounds: tuple[float, float, float, float], *points: torch.Tensor | np.ndarray | None,
                 pad: float = 0.05, most: float = 1.0) -> tuple[float, float, float, float]:
    """The region of the plane a 2D GAN's picture covers: the data's `bounds` (xmin, xmax, ymin, ymax) grown to
    hold every finite point of `points` plus `pad` of the larger side, by at most `most` of the data's spans on
    each side (so one sample that flew off does not shrink the data to a dot)."""
    x0, x1, y0, y1 = bounds
    pts = [np.asarray(p.detach().float().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64)
           .reshape(-1, 2) for p in points if p is not None]
    pts = [p[np.isfinite(p).all(axis=1)] for p in pts]
    pts = [p for p in pts if len(p)]
    if not pts:
        return bounds
    allp = np.concatenate(pts)
    wx, wy = (x1 - x0) * most, (y1 - y0) * most
    m = pad * max(x1 - x0, y1 - y0)
    lo, hi = allp.min(axis=0) - m, allp.max(axis=0) + m
    return (float(max(min(x0, lo[0]), x0 - wx)), float(min(max(x1, hi[0]), x1 + wx)),
            float(max(min(y0, lo[1]), y0 - wy)), float(min(max(y1, hi[1]), y1 + wy)))


class Trainer:
    def __init__(self, cfg: RunConfig, data: data_mod.Dataset | None = None,
                 device: torch.device | str | None = None):
        self.cfg = cfg.validate()
        self.device = device_mod.pick(str(device) if device is not None else cfg.train.device)
        device_mod.set_threads(cfg.train.threads)
        self.data = data if data is not None else data_mod.load(cfg.data, self.device)
        if self.data.device != self.device:
            raise ConfigError("train.device", f"the dataset lives on {self.data.device}, the run on {self.device}")
        if cfg.tricks.ac and self.data.n_classes < 2:
            raise ConfigError("tricks.ac", f"dataset '{cfg.data.name}' has no class labels for AC-GAN")
        with device_mod.seeded_init(cfg.train.seed):
            self.model = models.build(cfg, self.data.shape, self.data.n_classes).to(self.device)
        self.gen = device_mod.generator(self.device, cfg.train.seed * 7919 + 1)
        self._labels = bool(getattr(self.model, "n_classes", 0))    # only an AC-GAN's steps read the labels
        nets.set_generator(self.model, self.gen)
        self.step_count = 0
        self.prepared = False
        self.history = History(cfg.train.history)
        self.evals = History(cfg.train.history)
        self.last: dict[str, float] = {}
        self.seconds = 0.0
        self._it_per_s = 0.0
        self.schedulers = {k: self._scheduler(opt) for k, opt in self.model.optimizers.items()}
        self._make_fixed()

    # ---- construction helpers --------------------------------------------------------------
    def _scheduler(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        p, total = self.cfg.optim, self.cfg.train.steps
        if p.lr_decay == "linear":
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1.0 - t / total))
        if p.lr_decay == "exp":
            return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=p.lr_gamma)
        return None

    def _make_fixed(self) -> None:
        """Fixed noise and a fixed test batch: the frames of a run are comparable over time."""
        g = device_mod.generator(self.device, self.cfg.train.seed + 12345)
        n = N_POINTS_SHOWN if self.data.kind == "points" else self.cfg.train.n_fixed
        self.fixed_z = self.model.prior(n, g, self.device) if self.model.generative else None
        ncls = getattr(self.model, "n_classes", 0)
        self.fixed_y = (torch.arange(n, device=self.device) % ncls) if ncls else None
        k = min(self.cfg.train.n_fixed, len(self.data.x_test))
        self.fixed_x = self.data.x_test[:k]
        self.fixed_noisy = None
        if getattr(self.model, "denoise", False):
            self.fixed_noisy = self.model.corrupt(self.fixed_x, g)
        self.eval_gen_seed = self.cfg.train.seed + 54321

    def _ctx(self) -> StepContext:
        B = self.cfg.train.batch_size
        labels = self._labels
        return StepContext(self.step_count, self.gen, lambda: self.data.batch(B, self.gen, labels))

    # ---- training -----------------------------------------------------------------------------
    def prepare(self) -> dict[str, float]:
        """Once, before the first step: e.g. the autoencoder pretraining of an AE-initialised generator."""
        if self.prepared:
            return {}
        out = self.model.prepare(self._ctx())
        self.prepared = True
        return out

    def step(self, n: int = 1, part: str = "both") -> dict[str, float]:
        """Run `n` iterations updating `part` ("both", "d" or "g"); return the metrics of the last one.

        Raises DivergenceError (after recording the history) when a loss becomes NaN or infinite."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        if n < 1:
            return dict(self.last)
        t0 = time.perf_counter()
        self.prepare()
        B = self.cfg.train.batch_size
        ctx = self._ctx()
        decay = [s for s in self.schedulers.values() if s is not None]
        pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        for _ in range(n):
            ctx.step = self.step_count
            x, y = self.data.batch(B, self.gen, self._labels)
            pending.append((self.step_count + 1, self.model.train_step(x, y, part, ctx)))
            for s in decay:
                s.step()
            self.step_count += 1
        self._flush(pending)
        dt = time.perf_counter() - t0
        self.seconds += dt
        self._it_per_s = n / dt if dt > 0 else 0.0
        return dict(self.last)

    def _flush(self, pending: list[tuple[int, dict[str, torch.Tensor]]]) -> None:
        """Read the chunk's metrics (0-d tensors) back in one transfer, record them, then check for divergence."""
        if not pending:
            return
        values = iter(torch.stack([v for _, out in pending for v in out.values()]).tolist())
        bad: tuple[int, str, float] | None = None
        for step, out in pending:
            metrics = {k: next(values) for k in out}
            self.history.record(step, metrics)
            self.last = metrics
            if bad is None:
                for k, v in metrics.items():
                    if not math.isfinite(v):
                        bad = (step, k, v)
                        break
        if bad is not None:
            raise DivergenceError(*bad)

    @property
    def lrs(self) -> dict[str, float]:
        return {k: opt.param_groups[0]["lr"] for k, opt in self.model.optimizers.items()}

    # ---- what a UI draws --------------------------------------------------------------------
    @torch.no_grad()
    def samples(self) -> torch.Tensor | None:
        if self.fixed_z is None:
            return None
        return self.model.generate(self.fixed_z, self.fixed_y)

    @torch.no_grad()
    def reconstructions(self) -> torch.Tensor | None:
        if not self.model.autoencoder:
            return None
        was = self.model.training
        self.model.eval()
        try:
            return self.model.reconstruct(self.fixed_noisy if self.fixed_noisy is not None else self.fixed_x)
        finally:
            self.model.train(was)

    def visuals_2d(self, resolution: int = 60, manifold: int = 25, arrows: int = 150,
                   samples: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        """GAN on 2D points: D's output over the plane, G's image of a noise grid, and the gradient arrows.

        heatmap: D output on a resolution² grid over `plane_region` -- the data bounds grown to hold the generated
            points and the manifold, so D's verdict lies under everything drawn (probability for minimax / ns).
            heat_x / heat_y: the grid's coordinates; a new region (G moved) gives a new grid.
        manifold: (manifold, manifold, 2) -- G applied to a grid over the first two noise dimensions.
        arrows: (arrows, 4) -- x, y of a generated point (the first `arrows` of the samples drawn) and -∂L_G/∂x
            there: where G's loss pushes that sample.
        `samples`: this model's `samples()`, when the caller has them already.
        """
        m = self.model
        if self.data.kind != "points" or not isinstance(m, models.GAN):
            return {}
        from .objectives import d_output, g_loss
        was = m.d.training
        m.d.eval()
        try:
            with torch.no_grad():
                lim = 1.0 if self.cfg.model.noise == "uniform" else 2.5
                t = torch.linspace(-lim, lim, manifold, device=self.device)
                zz = torch.zeros(manifold * manifold, m.latent_dim, device=self.device)
                mesh = torch.stack(torch.meshgrid(t, t, indexing="xy"), dim=-1).reshape(-1, 2)
                zz[:, : min(2, m.latent_dim)] = mesh[:, : min(2, m.latent_dim)]
                yy = None if not m.n_classes else torch.zeros(len(zz), dtype=torch.long, device=self.device)
                man = m.generate(zz, yy).reshape(manifold, manifold, 2)
                samples = self.samples() if samples is None else samples
                x0, x1, y0, y1 = plane_region(self.data.bounds, samples, man)
                gx = torch.linspace(x0, x1, resolution, device=self.device)
                gy = torch.linspace(y0, y1, resolution, device=self.device)
                grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).reshape(-1, 2)
                heat = d_output(self.cfg.objective.loss, m.d(grid)).reshape(resolution, resolution)
                pts = samples[:arrows]             # the arrows start at the drawn samples (G of the first fixed z)
            with torch.enable_grad():
                p = pts.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(g_loss(self.cfg.objective.loss, m.d(p)) * len(p), p)
        finally:
            m.d.train(was)
        return {"heat_x": _ro(gx), "heat_y": _ro(gy), "heatmap": _ro(heat), "manifold": _ro(man),
                "arrows": _ro(torch.cat([pts, -grad], dim=1))}

    def snapshot(self, visuals: bool = True) -> Snapshot:
        """An immutable copy of the run's state for drawing (cheap: fixed-size arrays)."""
        recons, samples = self.reconstructions(), self.samples()
        return Snapshot(
            step=self.step_count, family=self.cfg.model.family, kind=self.data.kind,
            device=str(self.device), last=dict(self.last), history=self.history.arrays(),
            evals=self.evals.arrays(), samples=_ro(samples), sample_labels=_ro(self.fixed_y),
            inputs=_ro(self.fixed_x) if recons is not None else None, noisy=_ro(self.fixed_noisy),
            recons=_ro(recons), visuals=self.visuals_2d(samples=samples) if visuals else {}, seconds=self.seconds,
            it_per_s=self._it_per_s)

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, record: bool = True) -> dict[str, float]:
        """Quality numbers for the current model (deterministic: a fixed evaluation seed); recorded in `evals`."""
        from . import metrics
        out: dict[str, float] = {}
        m, d = self.model, self.data
        g = device_mod.generator(self.device, self.eval_gen_seed)
        was = m.training
        m.eval()
        try:
            if m.generative and d.kind == "points":
                z = m.prior(EVAL_SAMPLES, g, self.device)
                y = m.sample_classes(EVAL_SAMPLES, g, self.device) if isinstance(m, models.GAN) else None
                fake = m.generate(z, y).cpu().numpy()
                if d.modes is not None:
                    mm = metrics.mode_metrics(fake, d.modes.cpu().numpy(), d.mode_std)
                    out.update(modes=float(mm["modes"]), hq=float(mm["hq"]), reverse_kl=float(mm["reverse_kl"]))
                # on the data's fixed box (stray samples are clipped onto its border, their mass kept), not on the
                # picture's moving plane_region: KL / JS stay comparable across steps and across runs
                gd = metrics.grid_divergence(d.x_test.cpu().numpy(), fake, d.bounds)
                out.update(kl=float(gd["kl"]), js=float(gd["js"]))
            if m.generative and d.kind == "images":
                out.update(self._image_metrics(g))
            if m.autoencoder:
                x = d.x_test[:1000]
                x_hat = m.reconstruct(x)
                out.update(test_mse=float(metrics.recon_mse(x, x_hat)), test_psnr=float(metrics.psnr(x, x_hat)))
                if hasattr(m, "posterior"):
                    mu, logvar = m.posterior(x)
                    kl = metrics.kl_per_dim(mu, logvar)
                    out.update(test_kl=float(np.sum(kl)), active_units=float(metrics.active_units(mu)))
        finally:
            m.train(was)
        if record:
            self.evals.record(self.step_count, out)
        return out

    def _image_metrics(self, g: torch.Generator) -> dict[str, float]:
        """FD / PRDC / class coverage of generated images through the dataset's shipped classifier."""
        from . import features
        net = features.load_classifier(self.cfg.data.name, self.device)
        if net is None:
            return {}
        n = min(EVAL_IMAGES, max(len(self.data.x_test), 100))
        m = self.model
        z = m.prior(n, g, self.device)
        y = m.sample_classes(n, g, self.device) if isinstance(m, models.GAN) else None
        fake = m.generate(z, y)
        return features.image_metrics(net, fake, self.data.x_test)

    # ---- checkpoints --------------------------------------------------------------------------
    def payload(self, note: str = "", metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "state": {"model": self.model.state_dict()},
            "optim": {k: o.state_dict() for k, o in self.model.optimizers.items()},
            "sched": {k: s.state_dict() for k, s in self.schedulers.items() if s is not None},
            "history": self.history.to_dict(),
            "evals": self.evals.to_dict(),
            "step": self.step_count,
            "prepared": self.prepared,
            "rng": {"train": self.gen.get_state()},
            "metrics": dict(metrics or {}),
            "last": dict(self.last),
            "note": note,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def save(self, path: str | Path, note: str = "", metrics: Mapping[str, float] | None = None) -> Path:
        return checkpoint.save(path, self.payload(note, metrics))

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], device: torch.device | str | None = None,
                     data: data_mod.Dataset | None = None) -> "Trainer":
        try:
            cfg = RunConfig.from_dict(payload["config"])
        except ConfigError as e:
            raise checkpoint.CheckpointError(f"the checkpoint's configuration is not valid here ({e})") from None
        if device is None:
            device = device_mod.pick("auto")
        t = cls(cfg, data=data, device=device)
        try:
            t.model.load_state_dict(payload["state"]["model"])
            for k, o in t.model.optimizers.items():
                if k in payload.get("optim", {}):
                    o.load_state_dict(payload["optim"][k])
                    _keep_fast_path(o)
            for k, s in t.schedulers.items():
                if s is not None and k in payload.get("sched", {}):
                    s.load_state_dict(payload["sched"][k])
            if "train" in payload.get("rng", {}):
                try:
                    t.gen.set_state(payload["rng"]["train"])
                except RuntimeError:   # a state made on another device type: reseed deterministically
                    t.gen.manual_seed(cfg.train.seed * 7919 + 1 + int(payload["step"]))
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise _misfit(e) from None
        t.step_count = int(payload["step"])
        t.prepared = bool(payload.get("prepared", t.step_count > 0))
        if "history" in payload:
            t.history = History.from_dict(payload["history"])
        if "evals" in payload:
            t.evals = History.from_dict(payload["evals"])
        t.last = {str(k): float(v) for k, v in payload.get("last", {}).items()}
        return t

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None) -> "Trainer":
        return cls.from_payload(checkpoint.load(path), device=device)


def _keep_fast_path(o: torch.optim.Optimizer) -> None:
    """A loaded optimiser state brings the implementation flags it was saved with (older checkpoints: foreach=None,
    or foreach Adam): keep this build's path, and a fused optimiser's step counts where its kernel reads them."""
    fused = bool(o.defaults.get("fused"))
    for group in o.param_groups:
        group["foreach"], group["fused"] = o.defaults.get("foreach"), o.defaults.get("fused")
        if fused:
            for q in group["params"]:
                st = o.state.get(q)
                if st and torch.is_tensor(st.get("step")):
                    st["step"] = st["step"].to(device=q.device, dtype=torch.float32)


def _misfit(e: Exception) -> checkpoint.CheckpointError:
    return checkpoint.CheckpointError("the checkpoint's weights do not fit the model its config describes "
                                      f"({shorten(str(e), 200)})")


def check_weights(payload: Mapping[str, Any]) -> None:
    """CheckpointError unless the payload's model weights load into the model its config describes.

    The model is built on the CPU from the data's shape without loading the data (an upload is checked before it
    is kept, and its data may be a folder this server does not have); an AC-GAN's class count is read from the
    weights themselves (an AC-GAN without them cannot fit)."""
    try:
        cfg = RunConfig.from_dict(payload["config"]).validate()
    except (ConfigError, KeyError, TypeError) as e:
        raise checkpoint.CheckpointError(f"the checkpoint's configuration is not valid here ({e})") from None
    try:
        state = payload["state"]["model"]
        aux = [t for k, t in state.items() if k.endswith("aux.weight") and isinstance(t, torch.Tensor)]
        n_classes = int(aux[0].shape[0]) if aux else 2 * cfg.tricks.ac
        with device_mod.seeded_init(0):
            model = models.build(cfg, data_mod.example_shape(cfg.data), n_classes)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise _misfit(e) from None

"""Offline image metrics: a small classifier per image dataset, trained by ganae and shipped in checkpoints/.

Its penultimate layer (64 features) plays the role Inception plays for FID: the Fréchet distance, precision /
recall / density / coverage (k = 5) are computed on those features against held-out real data, and its softmax
gives class coverage with a confidence threshold. Nothing is downloaded: the classifier is trained here in a
minute on the CPU:

    python -m ganae classifier --data digits --out checkpoints/classifier-digits.pt
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import checkpoint, data as data_mod, device as device_mod, metrics
from .config import DataConfig, RunConfig

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
CONFIDENCE = 0.9        # a sample counts towards a class only when the classifier is this sure


class Classifier(nn.Module):
    """conv(32) → conv(64, stride 2) → linear(64) [features] → linear(classes)."""

    def __init__(self, shape: tuple[int, int, int], n_classes: int, width: int = 32, feat: int = 64):
        super().__init__()
        c, h, w = shape
        stages = 1 if h <= 16 else 2
        mods: list[nn.Module] = [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
        ch = width
        for _ in range(stages):
            mods += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.ReLU()]
            ch *= 2
        side = h // 2 ** stages
        self.conv = nn.Sequential(*mods, nn.Flatten())
        self.fc = nn.Linear(ch * side * side, feat)
        self.out = nn.Linear(feat, n_classes)
        self.shape, self.n_classes = tuple(shape), n_classes
        # standardisation of the features on real training data, so that distances are in units of the
        # real data's spread per feature (set by `calibrate`)
        self.register_buffer("feat_mean", torch.zeros(feat))
        self.register_buffer("feat_std", torch.ones(feat))

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer before its ReLU (64 values), standardised on the real training data."""
        return (self.raw_features(x) - self.feat_mean) / self.feat_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.raw_features(x)))

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        f = self.raw_features(x)
        self.feat_mean.copy_(f.mean(0))
        self.feat_std.copy_(f.std(0).clamp_min(1e-6))


def train_classifier(dataset: str = "digits", steps: int = 1500, seed: int = 0, device: str = "auto",
                     log=None) -> tuple[Classifier, dict[str, float], data_mod.Dataset]:
    """Train the metric classifier on the dataset's training split; returns it, its test accuracy, the data."""
    dev = device_mod.pick(device)
    d = data_mod.load(DataConfig(name=dataset), dev)
    if d.kind != "images" or d.n_classes < 2:
        raise ValueError(f"dataset '{dataset}' has no image classes to train a metric classifier on")
    with device_mod.seeded_init(seed):
        net = Classifier(d.shape, d.n_classes).to(dev)
    g = device_mod.generator(dev, seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for i in range(steps):
        x, y = d.batch(128, g)
        # small random shifts keep the features from memorising pixel positions
        dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g, device=dev))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        # outlier exposure (Hendrycks et al. 2019): noise images must get a flat prediction, so that the
        # classifier is not confident about things that are not digits
        noise = _outliers(x.shape[0] // 4, d.shape, g, dev)
        loss = F.cross_entropy(net(x), y) - 0.5 * F.log_softmax(net(noise), dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log and (i + 1) % 250 == 0:
            log(f"step {i + 1}/{steps} loss {loss.item():.4f}")
    net.eval()
    net.calibrate(d.x_train)
    with torch.no_grad():
        acc = float((net(d.x_test).argmax(1) == d.y_test).float().mean())
    return net, {"test_accuracy": acc}, d


def _outliers(n: int, shape: tuple[int, ...], g: torch.Generator, dev: torch.device) -> torch.Tensor:
    """Uniform noise, Gaussian noise and smoothed blobs in [-1, 1]."""
    u = torch.rand((n, *shape), generator=g, device=dev) * 2 - 1
    gauss = (torch.randn((n, *shape), generator=g, device=dev) * 0.5).clamp(-1, 1)
    blobs = F.avg_pool2d(torch.rand((n, *shape), generator=g, device=dev) * 2 - 1, 3, 1, 1) * 2
    pick = torch.randint(3, (n,), generator=g, device=dev).view(-1, 1, 1, 1)
    return torch.where(pick == 0, u, torch.where(pick == 1, gauss, blobs.clamp(-1, 1)))


def save_classifier(net: Classifier, path: str | Path, dataset: str, stats: dict[str, float], note: str) -> Path:
    cfg = RunConfig().with_updates(**{"data.name": dataset})
    return checkpoint.save(path, {"config": cfg.to_dict(), "state": {"classifier": net.state_dict()},
                                  "step": 0, "kind": "classifier", "shape": list(net.shape),
                                  "n_classes": net.n_classes, "metrics": stats, "note": note})


def classifier_path(dataset: str) -> Path:
    return ROOT / f"classifier-{dataset}.pt"


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Classifier:
    payload = checkpoint.load(path)
    if payload.get("kind") != "classifier":
        raise checkpoint.CheckpointError(f"{path} is a ganae checkpoint but not a metric classifier")
    net = Classifier(tuple(payload["shape"]), int(payload["n_classes"]))
    net.load_state_dict(payload["state"]["classifier"])
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def load_classifier(dataset: str, device: torch.device | str = "cpu") -> Classifier | None:
    """The shipped classifier for `dataset`, or None when there is none (metrics then skip FD & co.)."""
    path = classifier_path(dataset)
    if not path.is_file():
        return None
    return _load_cached(str(path), path.stat().st_mtime).to(device)


@torch.no_grad()
def embed(net: Classifier, x: torch.Tensor, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(features, class probabilities) of images x, as numpy arrays."""
    feats, probs = [], []
    for i in range(0, len(x), batch):
        f = net.features(x[i:i + batch].to(next(net.parameters()).device))
        feats.append(f.cpu().numpy())
        probs.append(F.softmax(net.out(F.relu(f * net.feat_std + net.feat_mean)), dim=1).cpu().numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs)


def image_metrics(net: Classifier, fake: torch.Tensor, real: torch.Tensor, k: int = 5,
                  confidence: float = CONFIDENCE) -> dict[str, float]:
    """FD, precision / recall / density / coverage and confident class coverage of `fake` against `real`."""
    f_fake, p_fake = embed(net, fake)
    f_real, _ = embed(net, real)
    pr = metrics.prdc(f_real, f_fake, k=k)
    cov = metrics.class_coverage(p_fake, threshold=confidence)
    return {"fd": float(metrics.frechet_distance(f_real, f_fake)), "precision": float(pr["precision"]),
            "recall": float(pr["recall"]), "density": float(pr["density"]), "coverage": float(pr["coverage"]),
            "classes": float(cov["classes"]), "confident": float(cov["confident_share"])}

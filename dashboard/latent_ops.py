"""Read-only model access for the image pages: encode, decode, posterior statistics, test codes.

Each function takes a `ganae.trainer.Trainer` and returns numpy arrays. On a live run they are called through
`runner.call(fn)`, so they execute on the runner's own thread between training chunks (a trainer is never
touched by two threads at once); on a loaded checkpoint they run under that model's lock. They switch the model
to eval mode for the call and restore its mode afterwards. No streamlit, no training.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ganae import metrics

MAX_CODES = 1000          # test examples encoded for a latent map


@contextlib.contextmanager
def _eval(trainer: Any) -> Iterator[Any]:
    m = trainer.model
    was = m.training
    m.eval()
    try:
        with torch.no_grad():
            yield m
    finally:
        m.train(was)


def _t(trainer: Any, a: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=trainer.device, dtype=dtype)
    return torch.tensor(np.asarray(a), dtype=dtype, device=trainer.device)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


@dataclass(frozen=True)
class ModelInfo:
    """What the Latent Explorer needs to know about a model before touching it."""
    family: str
    kind: str                      # "points" | "images"
    latent_dim: int
    can_encode: bool               # an autoencoder: codes of real inputs exist
    generative: bool               # has a prior to sample from
    n_classes: int                 # AC-GAN: classes the generator is conditioned on (0 = none)
    class_names: tuple[str, ...]   # of the dataset's labels
    noise: str                     # "normal" | "uniform"
    shape: tuple[int, ...]         # one example
    has_posterior: bool            # VAE-like: an encoder variance
    factor_names: tuple[str, ...]  # sprites: the known factors
    n_test: int
    step: int


def info(trainer: Any) -> ModelInfo:
    m, d = trainer.model, trainer.data
    return ModelInfo(family=trainer.cfg.model.family, kind=d.kind, latent_dim=int(m.latent_dim),
                     can_encode=bool(m.autoencoder), generative=bool(m.generative),
                     n_classes=int(getattr(m, "n_classes", 0) or 0), class_names=tuple(d.class_names),
                     noise=trainer.cfg.model.noise, shape=tuple(d.shape), has_posterior=hasattr(m, "posterior"),
                     factor_names=tuple(d.factor_names) if d.factors_test is not None else (),
                     n_test=int(len(d.x_test)), step=int(trainer.step_count))


def encode(trainer: Any, x: np.ndarray | torch.Tensor, batch: int = 512) -> np.ndarray:
    """Codes of inputs x: the encoder's output (a VAE's posterior mean μ)."""
    out = []
    with _eval(trainer) as m:
        xt = _t(trainer, x)
        for i in range(0, len(xt), batch):
            out.append(_np(m.encode(xt[i:i + batch])))
    return np.concatenate(out) if out else np.zeros((0, trainer.model.latent_dim), np.float32)


def decode(trainer: Any, z: np.ndarray | torch.Tensor, y: int | np.ndarray | None = None) -> np.ndarray:
    """Images (or 2D points) for latent vectors z: `decode` for an autoencoder, `generate` for a GAN (with the
    class y for an AC-GAN; class 0 when not given)."""
    with _eval(trainer) as m:
        zt = _t(trainer, np.atleast_2d(np.asarray(z, dtype=np.float32)))
        if m.autoencoder:
            return _np(m.decode(zt))
        yt = None
        if getattr(m, "n_classes", 0):
            yy = np.zeros(len(zt), np.int64) if y is None else np.broadcast_to(np.asarray(y, np.int64), (len(zt),))
            yt = _t(trainer, yy, torch.long)
        return _np(m.generate(zt, yt))


def reconstruct(trainer: Any, x: np.ndarray | torch.Tensor) -> np.ndarray:
    with _eval(trainer) as m:
        return _np(m.reconstruct(_t(trainer, x)))


def test_examples(trainer: Any, index: np.ndarray | list[int]) -> np.ndarray:
    d = trainer.data
    idx = torch.as_tensor(np.asarray(index, dtype=np.int64), device=d.x_test.device)
    return _np(d.x_test[idx])


def test_set(trainer: Any, n: int = MAX_CODES) -> dict[str, Any]:
    """The first n test examples with their labels (and sprite factors), plus their codes when there is an encoder."""
    d = trainer.data
    n = min(n, len(d.x_test))
    out: dict[str, Any] = {"labels": d.y_test[:n].cpu().numpy().copy(), "class_names": tuple(d.class_names),
                           "factors": None if d.factors_test is None else _np(d.factors_test[:n])}
    if trainer.model.autoencoder:
        out["codes"] = encode(trainer, d.x_test[:n])
    return out


def posterior_stats(trainer: Any, x: np.ndarray | torch.Tensor | None = None) -> dict[str, Any] | None:
    """VAE-like models: KL per latent dim and Var_x(μ) on a batch (default: the run's fixed test batch)."""
    m = trainer.model
    if not hasattr(m, "posterior"):
        return None
    with _eval(trainer):
        xt = trainer.fixed_x if x is None else _t(trainer, x)
        mu, logvar = m.posterior(xt)
    mu_n, lv_n = _np(mu), _np(logvar)
    return {"kl": metrics.kl_per_dim(mu_n, lv_n), "var_mu": mu_n.var(axis=0),
            "active": metrics.active_units(mu_n), "step": int(trainer.step_count)}


def prior(trainer: Any, n: int, seed: int) -> np.ndarray:
    """n latent vectors from the model's prior (N(0, I) or U(-1, 1)), seeded."""
    g = torch.Generator().manual_seed(int(seed))
    dim = trainer.model.latent_dim
    if trainer.cfg.model.noise == "uniform":
        return (torch.rand(n, dim, generator=g) * 2 - 1).numpy()
    return torch.randn(n, dim, generator=g).numpy()


def real_points(trainer: Any, n: int = 1000) -> np.ndarray | None:
    d = trainer.data
    if d.kind != "points":
        return None
    return _np(d.x_train[:n])


def selection_target(selection: Any) -> tuple[str, Any] | None:
    """What a plotly selection on the latent map asks to decode (st.plotly_chart(on_select="rerun") state):

    ("box", (x, y))   the centre of a drawn box,
    ("code", index)   a clicked code (customdata >= 0 is the test index),
    ("spot", (x, y))  a clicked spot of the invisible grid (customdata -1) or a point without customdata,
    None              nothing selected (or a selection it cannot read)."""
    try:
        sel = selection["selection"]
        box = list(sel.get("box") or [])
        pts = list(sel.get("points") or [])
    except (KeyError, TypeError, AttributeError):
        return None
    if box:
        bx, by = box[0].get("x") or [], box[0].get("y") or []
        if len(bx) >= 2 and len(by) >= 2:
            return "box", (float(np.mean(bx[:2])), float(np.mean(by[:2])))
    if pts:
        pt = pts[0]
        cd = pt.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        try:
            if cd is not None and int(cd) >= 0:
                return "code", int(cd)
        except (TypeError, ValueError):
            pass
        x, y = pt.get("x"), pt.get("y")
        if x is not None and y is not None:
            return "spot", (float(x), float(y))
    return None


__all__ = ["selection_target", "ModelInfo", "info", "encode", "decode", "reconstruct", "test_examples", "test_set",
           "posterior_stats",
           "prior", "real_points", "MAX_CODES"]

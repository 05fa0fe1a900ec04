"""Behaviour of the GAN family on the CPU with fixed seeds: every loss × {none, WGAN-GP, R1, spectral norm} trains
on ring-8, and an AC-GAN on digits draws the digit it is asked for (judged by a classifier trained here)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from ganae.config import ConfigWarning, RunConfig
from ganae.trainer import Trainer

pytestmark = pytest.mark.slow

LOSSES = ["minimax", "ns", "ls", "wgan", "hinge"]
PENALTIES = {
    "none": {},
    "gp": {"objective.gp": 0.1},                     # λ scaled to 2D data of radius 1 (as the ring8-wgan-gp preset)
    "r1": {"objective.r1": 0.1},
    "sn": {"objective.spectral_norm": "d"},
}
STEPS = 300


def make_trainer(updates: dict) -> Trainer:
    cfg = RunConfig().with_updates(**updates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)     # "wgan without a constraint" is legal, only unusual
        return Trainer(cfg, device="cpu")


def nearest_mode_distance(tr: Trainer) -> float:
    """Mean distance from the fixed-noise samples to the closest of the 8 ring centres."""
    s = tr.samples()
    return torch.cdist(s, tr.data.modes.to(s.dtype)).min(dim=1).values.mean().item()


@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_and_penalty_trains_on_ring8(loss, penalty):
    tr = make_trainer({"data.name": "ring8", "data.n": 2000, "objective.loss": loss, "model.g_hidden": 32,
                       "model.d_hidden": 32, "train.batch_size": 64, "train.seed": 0, **PENALTIES[penalty]})
    g0 = [p.detach().clone() for p in tr.model.g.parameters()]
    d0 = [p.detach().clone() for p in tr.model.d.parameters()]
    dist0 = nearest_mode_distance(tr)
    tr.step(STEPS)                                 # raises DivergenceError on a NaN / Inf metric
    h = tr.history.arrays()
    assert len(h["step"]) == STEPS
    for key in ("loss_d", "loss_g", "grad_d", "grad_g"):
        assert np.isfinite(h[key]).all(), key
    for p in tr.model.parameters():
        assert torch.isfinite(p).all()

    # D actually trains: its loss moves (a frozen or dead D gives a flat curve)
    loss_d = h["loss_d"]
    assert loss_d.std() > 1e-3 and np.ptp(loss_d) > 0.05
    # every weight matrix of D moved (not every bias: under wgan D's output bias cancels out of f - r)
    assert all(not torch.allclose(a, b) for a, b in zip(d0, tr.model.d.parameters()) if a.dim() > 1)
    # ... and so does G: its weights moved and its samples came closer to the ring's modes
    assert any(not torch.allclose(a, b) for a, b in zip(g0, tr.model.g.parameters()))
    dist1 = nearest_mode_distance(tr)
    assert dist1 < 0.85 * dist0, (dist0, dist1)

    # the penalty is switched on exactly when asked for
    if penalty in ("gp", "r1"):
        assert np.isfinite(h["penalty"]).all() and h["penalty"].mean() > 0
    else:
        assert "penalty" not in h or (h["penalty"] == 0).all()
    if penalty == "sn":
        for m in tr.model.d.modules():
            if isinstance(m, nn.Linear):
                sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
                assert sigma == pytest.approx(1.0, abs=0.05)


def test_ac_gan_on_digits_draws_the_requested_class():
    from sklearn.linear_model import LogisticRegression

    tr = make_trainer({"data.name": "digits", "model.arch": "mlp", "model.latent_dim": 16, "model.g_hidden": 128,
                       "model.d_hidden": 128, "tricks.ac": True, "train.batch_size": 64, "train.seed": 0})
    d = tr.data
    # an independent judge: logistic regression on the pixels of the real training digits
    clf = LogisticRegression(max_iter=500).fit(d.x_train.flatten(1).numpy(), d.y_train.numpy())
    assert clf.score(d.x_test.flatten(1).numpy(), d.y_test.numpy()) > 0.9

    per_class = 50
    y = torch.arange(10).repeat_interleave(per_class)
    z = tr.model.prior(len(y), torch.Generator().manual_seed(1), torch.device("cpu"))

    def accuracy() -> float:
        x = tr.model.generate(z, y)
        assert x.shape == (len(y), 1, 8, 8) and torch.isfinite(x).all()
        return float((clf.predict(x.flatten(1).numpy()) == y.numpy()).mean())

    before = accuracy()
    tr.step(1000)
    after = accuracy()
    assert before < 0.3                 # an untrained G is near chance (0.1): the judge is not fooled by noise
    assert after >= 0.5, (before, after)

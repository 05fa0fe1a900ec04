"""Autoencoders inside GANs, on the CPU with fixed seeds: the adversarial autoencoder pulls its codes toward the
prior, the AE-pretrained generator starts from the decoder it pretrained and then trains, VAE-GAN trains and
reconstructs better."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganae.config import RunConfig
from ganae.trainer import Trainer

pytestmark = pytest.mark.slow

BASE = {"data.name": "digits", "model.arch": "mlp", "model.g_hidden": 64, "model.d_hidden": 64,
        "train.batch_size": 64, "train.seed": 0}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of two Gaussians fitted to samples: ‖μa - μb‖² + tr(Ca + Cb - 2 (Ca Cb)^½)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * root))


def test_frechet_helper_by_hand():
    # N(0, I) vs N(m, 4I) in 2D: ‖m‖² + tr(I + 4I - 2·2I) = ‖m‖² + 2
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 2))
    b = np.array([1.0, 2.0]) + 2 * rng.normal(size=(200_000, 2))
    assert frechet(a, b) == pytest.approx(5.0 + 2.0, rel=0.02)


def recon_mse(model, x: torch.Tensor) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = (model.reconstruct(x) - x).pow(2).mean().item()
    model.train(was)
    return out


# ---- adversarial autoencoder -----------------------------------------------------------------
def test_aae_codes_move_toward_the_prior():
    latent, steps = 4, 600

    def run(family: str) -> tuple[float, float, float, float]:
        tr = Trainer(RunConfig().with_updates(**BASE, **{"model.family": family, "model.latent_dim": latent}),
                     device="cpu")
        x = tr.data.x_test
        prior = torch.randn(len(x), latent, generator=torch.Generator().manual_seed(5)).numpy()

        def distance() -> float:
            with torch.no_grad():
                return frechet(tr.model.encode(x).numpy(), prior)

        d0, mse0 = distance(), recon_mse(tr.model, x)
        tr.step(steps)
        assert np.isfinite(tr.history.arrays()["mse"]).all()
        return d0, distance(), mse0, recon_mse(tr.model, x)

    d0, d1, mse0, mse1 = run("aae")
    assert d1 < 0.2 * d0, (d0, d1)             # the codes' Gaussian fit approaches N(0, I)
    assert mse1 < 0.5 * mse0                    # while it still learns to reconstruct
    # control: the same autoencoder without the latent discriminator drifts away from the prior
    _, d_ae, _, _ = run("ae")
    assert d_ae > 10 * d1, (d_ae, d1)


def test_aae_discriminator_sees_prior_as_real_and_codes_as_fake():
    tr = Trainer(RunConfig().with_updates(**BASE, **{"model.family": "aae", "model.latent_dim": 4}), device="cpu")
    m = tr.model
    assert m.d.body[0].in_features == 4        # D lives on the code, not on the image
    tr.step(50, part="d")                      # train only D_z: codes start near 0, the prior is spread
    x = tr.data.x_test[:256]
    with torch.no_grad():
        on_prior = torch.sigmoid(m.d(torch.randn(256, 4, generator=torch.Generator().manual_seed(1)))).mean()
        on_codes = torch.sigmoid(m.d(m.encode(x))).mean()
    assert on_prior.item() > 0.6 and on_codes.item() < 0.4, (on_prior.item(), on_codes.item())


# ---- AE-pretrained generator -----------------------------------------------------------------
def test_ae_pretrained_generator_starts_from_the_decoder_and_trains():
    upd = {**BASE, "model.latent_dim": 8, "tricks.ema": 0.9}
    tr = Trainer(RunConfig().with_updates(**upd, **{"model.gan_init": "ae", "model.pretrain_steps": 300}),
                 device="cpu")
    fresh = Trainer(RunConfig().with_updates(**upd), device="cpu")     # random init, same seed
    g, g_fresh = tr.model.g, fresh.model.g
    assert tr.model.pretrained_state is None
    for a, b in zip(g.state_dict().values(), g_fresh.state_dict().values()):
        assert torch.equal(a, b)                # before pretraining: the same seeded random init

    out = tr.prepare()
    assert tr.prepare() == {}                   # once only
    state = g.state_dict()
    assert set(state) == set(tr.model.pretrained_state)
    for k, v in state.items():
        assert torch.equal(v, tr.model.pretrained_state[k]), k
    assert any(not torch.equal(state[k], v) for k, v in g_fresh.state_dict().items())
    for a, b in zip(tr.model.g_ema.state_dict().values(), state.values()):
        assert torch.equal(a, b)                # the EMA copy starts from the pretrained G too

    # pretraining reduced the reconstruction error far below what a random decoder achieves
    x = tr.data.x_train
    z = tr.model.prior(len(x), torch.Generator().manual_seed(0), torch.device("cpu"))
    with torch.no_grad():
        random_decoder_mse = (g_fresh(z) - x).pow(2).mean().item()
        mean_image_mse = (x - x.mean(0)).pow(2).mean().item()          # the best data-independent output
        # G fed the prior already draws digit-like images: their mean is the data's mean image
        mean_gap_pre = (g(z).mean(0) - x.mean(0)).pow(2).mean().item()
        mean_gap_fresh = (g_fresh(z).mean(0) - x.mean(0)).pow(2).mean().item()
    pretrain_mse = out["pretrain_mse"]
    assert np.isfinite(pretrain_mse)
    assert pretrain_mse < 0.25 * random_decoder_mse, (pretrain_mse, random_decoder_mse)
    assert pretrain_mse < 0.5 * mean_image_mse, (pretrain_mse, mean_image_mse)
    assert mean_gap_pre < 0.1 * mean_gap_fresh, (mean_gap_pre, mean_gap_fresh)

    # then the adversarial game runs from there without NaN and moves G
    tr.step(300)
    h = tr.history.arrays()
    assert np.isfinite(h["loss_d"]).all() and np.isfinite(h["loss_g"]).all()
    assert h["loss_d"].std() > 1e-3
    assert any(not torch.equal(v, tr.model.pretrained_state[k]) for k, v in g.state_dict().items())
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_random_init_gan_skips_pretraining():
    tr = Trainer(RunConfig().with_updates(**BASE, **{"model.latent_dim": 8}), device="cpu")
    before = {k: v.clone() for k, v in tr.model.g.state_dict().items()}
    assert tr.prepare() == {}
    assert tr.model.pretrained_state is None
    assert all(torch.equal(before[k], v) for k, v in tr.model.g.state_dict().items())


# ---- VAE-GAN ---------------------------------------------------------------------------------
def test_vaegan_trains_and_reconstructs_better():
    tr = Trainer(RunConfig().with_updates(**BASE, **{"model.family": "vaegan", "model.latent_dim": 8}),
                 device="cpu")
    x = tr.data.x_test
    mse0 = recon_mse(tr.model, x)
    tr.step(500)
    h = tr.history.arrays()
    for key in ("loss_d", "loss_g", "recon", "kl", "mse"):
        assert np.isfinite(h[key]).all(), key
    assert h["loss_d"].std() > 1e-3             # D plays
    assert h["kl"][-50:].mean() > 0             # the posterior is a real distribution, not a point
    mse1 = recon_mse(tr.model, x)
    assert mse1 < 0.4 * mse0, (mse0, mse1)
    # and its decoder is a generator: prior samples are images in [-1, 1]
    s = tr.model.generate(torch.randn(16, 8))
    assert s.shape == (16, 1, 8, 8) and s.abs().max() <= 1.0

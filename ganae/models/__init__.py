"""Model families, one file each: ae.py (AE, denoising AE), vae.py (VAE, β-VAE), gan.py (GAN + every loss and
trick, AE-pretrained generator), hybrids.py (adversarial AE, VAE-GAN)."""
from __future__ import annotations

from ..config import RunConfig
from .ae import Autoencoder
from .common import Family, StepContext
from .gan import GAN
from .hybrids import VAEGAN, AdversarialAE
from .vae import VAE


def build(cfg: RunConfig, shape: tuple[int, ...], n_classes: int = 0) -> Family:
    """The family named by `cfg.model.family`, sized for examples of `shape`."""
    fam = cfg.model.family
    if fam == "gan":
        return GAN(cfg, shape, n_classes)
    if fam in ("ae", "dae"):
        return Autoencoder(cfg, shape)
    if fam == "vae":
        return VAE(cfg, shape)
    if fam == "aae":
        return AdversarialAE(cfg, shape)
    if fam == "vaegan":
        return VAEGAN(cfg, shape)
    raise ValueError(f"unknown model family '{fam}'")


__all__ = ["build", "Family", "StepContext", "GAN", "Autoencoder", "VAE", "AdversarialAE", "VAEGAN"]

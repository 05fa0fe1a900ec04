"""Autoencoder and denoising autoencoder: x -> encoder -> code z -> decoder -> x̂.

    L = E_x ‖x̂ - x‖²  (+ λ₁ ‖z‖₁ for a sparse code)        denoising: x̂ = dec(enc(x + ε)), ε ~ N(0, σ²)

Regularisers from the lectures are switches: weight decay (optim.weight_decay), dropout on hidden layers
(model.dropout), an L1 sparsity penalty on the code (model.sparsity), and the optimiser (optim.g_opt).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import nets, objectives
from ..config import RunConfig
from .common import Codec, Family, StepContext, generator_step, make_optimizer


def build_encoder(cfg: RunConfig, shape: tuple[int, ...], out_dim: int) -> nn.Module:
    m = cfg.model
    body, feat = nets.body(shape, cfg.arch, m.d_hidden, m.d_layers, m.channels, m.d_activation, m.dropout)
    return nn.Sequential(body, nn.Linear(feat, out_dim))


def build_decoder(cfg: RunConfig, shape: tuple[int, ...]) -> nn.Module:
    m = cfg.model
    return nets.decoder(m.latent_dim, shape, cfg.arch, m.g_hidden, m.g_layers, m.channels, m.activation,
                        m.dropout)


class Autoencoder(Codec, Family):
    parts = ("ae",)
    autoencoder = True

    def __init__(self, cfg: RunConfig, shape: tuple[int, ...]):
        super().__init__(cfg)
        self.shape = tuple(shape)
        self.denoise = cfg.model.family == "dae"
        self.encoder = build_encoder(cfg, self.shape, cfg.model.latent_dim)
        self.decoder = build_decoder(cfg, self.shape)
        p = cfg.optim
        self.optimizers = {"ae": make_optimizer(p.g_opt, self.parameters(), p.g_lr, p)}

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The denoising AE's input: x + N(0, σ²) noise (identity for a plain AE)."""
        if not self.denoise:
            return x
        return x + self.cfg.model.denoise_std * torch.randn(x.shape, generator=generator, device=x.device)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        # Encode the (possibly corrupted) input, decode, compare with the clean input
        z = self.encoder(self.corrupt(x, ctx.generator))
        x_hat = self.decoder(z)
        recon = objectives.recon_loss(m.recon_loss, x_hat, x).mean()
        loss = recon
        out = {"recon": recon.detach()}
        if m.sparsity:
            sparsity = z.abs().sum(dim=1).mean()               # L1 penalty pushes code units to exactly 0
            loss = recon + m.sparsity * sparsity
            out["code_l1"] = sparsity.detach()
        out["grad_g"] = generator_step(self.optimizers["ae"], loss)
        out.update(loss=loss.detach(), mse=(x_hat.detach() - x).pow(2).mean())
        return out

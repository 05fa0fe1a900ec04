"""Stabilisation tricks as switches on the training step.

Each is a few lines so a student can read what it really does:
- spectral normalisation: every weight W of D (and optionally G) is divided by its largest singular value,
  estimated by power iteration (Miyato et al. 2018), via torch's parametrization;
- weight clipping: after each D step every parameter of D is clamped to [-c, c] (WGAN, Arjovsky et al. 2017);
- instance noise: Gaussian noise of std σ_t = σ₀ · max(0, 1 - t / T) on D's inputs, real and generated
  (Sønderby et al. 2017; Arjovsky & Bottou 2017);
- generator EMA: θ_ema ← β θ_ema + (1 - β) θ after each G step; samples come from θ_ema (Yazıcı et al. 2019);
- one-sided label smoothing: D's real target is 1 - s (Salimans et al. 2016).
Minibatch standard deviation and the auxiliary classifier live in `nets.Critic`; feature matching in
`objectives.feature_matching`.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrizations


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every Linear / Conv / ConvTranspose weight inside `module` (in place)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) and not parametrizations_applied(m):
            dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
            parametrizations.spectral_norm(m, dim=dim)
    return module


def parametrizations_applied(m: nn.Module) -> bool:
    return hasattr(m, "parametrizations") and "weight" in m.parametrizations


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    for p in module.parameters():
        p.clamp_(-c, c)


def instance_noise_sigma(sigma0: float, step: int, anneal_steps: int) -> float:
    """σ_t = σ₀ · max(0, 1 - t / T): linear annealing to zero over T steps."""
    return float(sigma0) * max(0.0, 1.0 - step / max(1, anneal_steps))


def add_instance_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None) -> torch.Tensor:
    if sigma <= 0:
        return x
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of `module` to hold its exponential moving average."""
    ema = copy.deepcopy(module)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, module: nn.Module, beta: float) -> None:
    """θ_ema ← β θ_ema + (1 - β) θ for parameters; buffers (BatchNorm statistics) are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(module.parameters()), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), module.buffers()):
        b_ema.copy_(b)


def real_target(label_smoothing: float) -> float:
    """One-sided label smoothing: the target for real data is 1 - s; generated data keeps target 0."""
    return 1.0 - float(label_smoothing)

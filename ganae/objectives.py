"""GAN losses and penalties as small pure functions, named as in the papers.

Notation: D outputs a logit (or critic value) `r = D(x)` on real data and `f = D(G(z))` on generated data;
σ is the logistic sigmoid and softplus(t) = log(1 + e^t), so -log σ(t) = softplus(-t), -log(1 - σ(t)) = softplus(t).

| loss      | D minimises                                   | G minimises              | paper                     |
|-----------|-----------------------------------------------|--------------------------|---------------------------|
| minimax   | -log σ(r) - log(1 - σ(f))                      | log(1 - σ(f))            | Goodfellow et al. 2014    |
| ns        | same as minimax                               | -log σ(f)                | Goodfellow et al. 2014    |
| ls        | ½(r - 1)² + ½ f²                              | ½(f - 1)²                | Mao et al. 2017 (LSGAN)   |
| wgan      | f - r                                         | -f                       | Arjovsky et al. 2017      |
| hinge     | max(0, 1 - r) + max(0, 1 + f)                 | -f                       | Lim & Ye 2017; Miyato 2018|

All functions return the batch mean: the mean over the last axis, so logits (K, N) of an ensemble's K members give
K losses, and one run's (N,) a 0-d tensor. One-sided label smoothing (Salimans et al. 2016) replaces the real target 1
by `real_target` (e.g. 0.9) in the losses that have targets (minimax, ns, ls).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Discriminator / critic loss on real logits `real` and generated logits `fake`."""
    if kind in ("minimax", "ns"):
        t = real_target
        if not torch.is_tensor(t) and t == 1.0:  # no smoothing: skip the (1 - t) term, which is exactly 0
            return F.softplus(-real).mean(-1) + F.softplus(fake).mean(-1)
        return (t * F.softplus(-real) + (1 - t) * F.softplus(real)).mean(-1) + F.softplus(fake).mean(-1)
    if kind == "ls":
        return 0.5 * ((real - real_target) ** 2).mean(-1) + 0.5 * (fake ** 2).mean(-1)
    if kind == "wgan":
        return fake.mean(-1) - real.mean(-1)
    if kind == "hinge":
        return F.relu(1.0 - real).mean(-1) + F.relu(1.0 + fake).mean(-1)
    raise ValueError(f"unknown GAN loss '{kind}'")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss on the logits D gives its samples."""
    if kind == "minimax":
        return -F.softplus(fake).mean(-1)       # = mean log(1 - σ(f)): saturates when D rejects G's samples
    if kind == "ns":
        return F.softplus(-fake).mean(-1)       # = mean -log σ(f)
    if kind == "ls":
        return 0.5 * ((fake - 1.0) ** 2).mean(-1)
    if kind in ("wgan", "hinge"):
        return -fake.mean(-1)
    raise ValueError(f"unknown GAN loss '{kind}'")


def d_output(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """What a student reads as "D(x)": a probability σ(logit) for the log losses, the raw output otherwise."""
    return torch.sigmoid(logits) if kind in ("minimax", "ns") else logits


def _input_grad(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, create_graph: bool = True
                ) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
    return grad.flatten(1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, target: float = 1.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖ - 1)²], x̂ = α x + (1 - α) x̃ with ONE α ~ U(0, 1) per example
    (not per pixel). Multiply by λ (typically 10) yourself."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], generator=generator, device=real.device, dtype=real.dtype)
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
    norms = _input_grad(critic, x_hat).norm(2, dim=1)
    return ((norms - target) ** 2).mean()


def zero_centered_penalty(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """E[‖∇D(x)‖²] on real data (R1) or generated data (R2) (Mescheder et al. 2018). The penalty added to D's loss
    is γ/2 times this."""
    return _input_grad(critic, x).pow(2).sum(dim=1).mean()


def feature_matching(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """‖E[f(x)] - E[f(G(z))]‖² over D's penultimate features (Salimans et al. 2016); features (N, F) or (K, N, F)."""
    return (f_real.detach().mean(-2) - f_fake.mean(-2)).pow(2).sum(-1)


def ac_loss(class_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """AC-GAN auxiliary term (Odena et al. 2017): cross-entropy of D's class prediction."""
    return F.cross_entropy(class_logits, y)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dims, per example: ½ Σ (μ² + σ² - log σ² - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1)


def recon_loss(kind: str, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss per example, summed over the example's values.

    mse: Σ (x̂ - x)²; bce on images mapped from [-1, 1] to [0, 1]: -Σ [p log p̂ + (1-p) log(1-p̂)]."""
    if kind == "mse":
        return (x_hat - x).pow(2).flatten(1).sum(dim=1)
    p_hat = ((x_hat + 1) / 2).clamp(1e-6, 1 - 1e-6)
    p = (x + 1) / 2
    return F.binary_cross_entropy(p_hat, p, reduction="none").flatten(1).sum(dim=1)

"""What every model family shares: the step context, optimisers, noise, and the critic update.

A family is an `nn.Module` with `optimizers` (name -> torch optimiser), a tuple `parts` of what `train_step`
can update, and `train_step(x, y, part, ctx) -> {metric: 0-d tensor}`. Generative families implement
`generate(z, y=None)`, autoencoders `encode(x)`, `decode(z)` and `reconstruct(x)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .. import objectives, tricks
from ..config import OptimConfig, RunConfig


@dataclass
class StepContext:
    """What a family's train_step may use besides its batch."""
    step: int                                                   # iterations done before this one
    generator: torch.Generator                                  # the run's private randomness
    batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]     # a fresh training batch (for n_critic > 1)


def make_optimizer(kind: str, params, lr: float, p: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser of one player, on torch's fastest exact path for small nets.

    Adam is `fused=True`: one kernel call doing the whole update of all its tensors (on the CPU 2.5x faster than
    the foreach path for a 128-wide MLP, which itself beats the default Python loop over tensors); its rounding differs from
    the loop's by an ulp, and it is elementwise, so an ensemble's stacked members get exactly their solo update
    (ensemble.StackedOptimizer). SGD and RMSprop are `foreach=True`: bitwise the loop's arithmetic (tested)."""
    params = [q for q in params if q.requires_grad]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(p.beta1, p.beta2), weight_decay=p.weight_decay, fused=True)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=p.momentum, weight_decay=p.weight_decay, foreach=True)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=p.momentum, weight_decay=p.weight_decay, foreach=True)
    raise ValueError(f"unknown optimiser '{kind}'")


def sample_noise(n: int, dim: int, kind: str, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """z ~ N(0, I) or U(-1, 1)^dim."""
    if kind == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, dim, generator=generator, device=device)


def grad_norm(params) -> torch.Tensor:
    """‖∇θ‖₂ over the parameters that have a gradient (one fused reduction, no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def drop_grads(params) -> None:
    """opt.zero_grad(set_to_none=True) for one optimiser's parameters, without its per-call bookkeeping."""
    for q in params:
        q.grad = None


def critic_step(d: nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
                cfg: RunConfig, ctx: StepContext, extra: Callable[..., torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
    """(1) Update D: minimise the chosen D loss + penalties on one real and one generated batch.

    `d(x)` returns logits; a `Critic` also returns features and class logits via `forward_all`. Instance noise
    is added to both inputs; the gradient penalties see the same noisy inputs D sees. `extra(real_out,
    fake_out)` adds family-specific terms (the AC-GAN class loss) and receives both `forward_all` outputs.
    """
    o, t = cfg.objective, cfg.tricks
    sigma = tricks.instance_noise_sigma(t.instance_noise, ctx.step, t.instance_noise_steps)
    real_in = tricks.add_instance_noise(real.detach(), sigma, ctx.generator)
    fake_in = tricks.add_instance_noise(fake.detach(), sigma, ctx.generator)
    forward_all = getattr(d, "forward_all", None)
    real_out = forward_all(real_in) if forward_all else (d(real_in), None, None)
    fake_out = forward_all(fake_in) if forward_all else (d(fake_in), None, None)
    r, f = real_out[0], fake_out[0]
    loss = objectives.d_loss(o.loss, r, f, tricks.real_target(t.label_smoothing))
    penalty = None
    if o.gp:
        penalty = o.gp * objectives.gradient_penalty(d, real_in, fake_in, ctx.generator)
    if o.r1:
        r1 = o.r1 / 2 * objectives.zero_centered_penalty(d, real_in)
        penalty = r1 if penalty is None else penalty + r1
    if o.r2:
        r2 = o.r2 / 2 * objectives.zero_centered_penalty(d, fake_in)
        penalty = r2 if penalty is None else penalty + r2
    total = loss if penalty is None else loss + penalty
    if extra is not None:
        total = total + extra(real_out, fake_out)
    params = opt.param_groups[0]["params"]
    drop_grads(params)
    total.backward()
    gnorm = grad_norm(params)
    opt.step()
    if o.clip:
        tricks.clip_weights(d, o.clip)
    out = {
        "loss_d": total.detach(),
        "d_real": objectives.d_output(o.loss, r.detach()).mean(),
        "d_fake": objectives.d_output(o.loss, f.detach()).mean(),
        "grad_d": gnorm,
    }
    if penalty is not None:
        out["penalty"] = penalty.detach()
    return out


def generator_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """(2) Update G (or an autoencoder): backpropagate `loss`, step the optimiser, return ‖∇θ‖ of its parameters.

    The backward pass computes gradients for this optimiser's parameters only: `loss` usually passes through D,
    whose weight gradients would be thrown away at D's next zero_grad (autograd still backpropagates through D's
    layers to reach G, it just skips their weight-gradient products)."""
    params = opt.param_groups[0]["params"]
    drop_grads(params)
    loss.backward(inputs=params)
    gnorm = grad_norm(params)
    opt.step()
    return gnorm


class Codec:
    """Encoder / decoder plumbing shared by the autoencoder families (needs `self.encoder`, `self.decoder`)."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode prior samples (meaningful for the VAE and the AAE, whose codes are pushed towards the prior)."""
        return self.decoder(z)


class Family(nn.Module):
    """Base class: the families override what applies to them."""

    parts: tuple[str, ...] = ("both",)
    generative: bool = False      # has generate(z)
    autoencoder: bool = False     # has encode / decode / reconstruct

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.latent_dim = cfg.model.latent_dim
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def prepare(self, ctx: StepContext) -> dict[str, float]:
        """Work done once before the first step (e.g. pretraining); returns metrics to report."""
        return {}

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def prior(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return sample_noise(n, self.latent_dim, self.cfg.model.noise, generator, device)

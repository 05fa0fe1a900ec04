"""Building blocks sized from the data shape: MLPs for 2D points and small images, conv nets for images.

Every net here is plain `nn.Module`; the families in `ganae.models` wire them together. Two details matter for
teaching and reproducibility:
- `Dropout` draws its mask from the run's own `torch.Generator` (set by the trainer), so two runs training side by
  side in threads stay reproducible.
- Discriminators expose `features(x)` (the penultimate layer) for feature matching and the metrics, and an optional
  auxiliary class head (AC-GAN).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(0.2),
        "tanh": nn.Tanh(),
        "elu": nn.ELU(),
        "gelu": nn.GELU(),
        "sigmoid": nn.Sigmoid(),
    }[name]


class Dropout(nn.Module):
    """Inverted dropout whose mask comes from `self.generator` (None -> torch's global generator)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, act: str, dropout: float = 0.0) -> nn.Sequential:
    """`layers` hidden layers of `hidden` units (0 layers = a linear map)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), activation(act)]
        if dropout:
            mods.append(Dropout(dropout))
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def conv_plan(size: int) -> tuple[int, int]:
    """(number of stride-2 stages, smallest spatial size) for an image side: 8 -> (2, 2), 28 -> (2, 7), 32 -> (3, 4)."""
    stages, s = 0, size
    while stages < 3 and s % 2 == 0 and s // 2 >= 2:
        s //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image side {size} cannot be halved; use a size divisible by 4 (8, 16, 28, 32, 64)")
    return stages, s


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


# ---- generators / decoders -------------------------------------------------------------------
def decoder(in_dim: int, shape: tuple[int, ...], arch: str, hidden: int, layers: int, channels: int, act: str,
            dropout: float = 0.0, batchnorm: bool = True) -> nn.Module:
    """Map a code of `in_dim` to one example of `shape`: points are unbounded, images end in tanh ([-1, 1])."""
    if len(shape) == 1:
        return mlp(in_dim, shape[0], hidden, layers, act, dropout)
    if arch == "mlp":
        return nn.Sequential(mlp(in_dim, math.prod(shape), hidden, layers, act, dropout), nn.Tanh(),
                             Unflatten(shape))
    c, h, w = shape
    stages, s0 = conv_plan(h)
    ch = channels * 2 ** (stages - 1)
    mods: list[nn.Module] = [nn.Linear(in_dim, ch * s0 * s0), Unflatten((ch, s0, s0))]
    if batchnorm:
        mods.append(nn.BatchNorm2d(ch))
    mods.append(activation(act))
    for i in range(stages):
        last = i == stages - 1
        out = c if last else ch // 2
        mods.append(nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=last or not batchnorm))
        if not last:
            if batchnorm:
                mods.append(nn.BatchNorm2d(out))
            mods.append(activation(act))
            if dropout:
                mods.append(Dropout(dropout))
        ch = out
    mods.append(nn.Tanh())
    return nn.Sequential(*mods)


# ---- encoders / discriminator bodies ---------------------------------------------------------
def body(shape: tuple[int, ...], arch: str, hidden: int, layers: int, channels: int, act: str,
         dropout: float = 0.0) -> tuple[nn.Module, int]:
    """A feature extractor for one example of `shape`; returns (module, feature size). No normalisation layers
    (a discriminator body must allow per-example gradient penalties)."""
    if len(shape) == 1 or arch == "mlp":
        in_dim = math.prod(shape)
        mods: list[nn.Module] = [] if len(shape) == 1 else [Flatten()]
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), activation(act)]
            if dropout:
                mods.append(Dropout(dropout))
            d = hidden
        return (nn.Sequential(*mods) if mods else nn.Identity()), d
    c, h, w = shape
    stages, s0 = conv_plan(h)
    mods, ch_in = [], c
    for i in range(stages):
        ch_out = channels * 2 ** i
        mods += [nn.Conv2d(ch_in, ch_out, 4, 2, 1), activation(act)]
        if dropout:
            mods.append(Dropout(dropout))
        ch_in = ch_out
    mods.append(Flatten())
    feat = ch_in * s0 * (w // 2 ** stages)
    return nn.Sequential(*mods), feat


class MinibatchStd(nn.Module):
    """Append one feature: the standard deviation of each feature over the batch, averaged (Karras et al. 2018).

    out = [f, mean_j sqrt(Var_batch(f_j) + 1e-8)] -- a D that sees batch diversity can spot a collapsed G.
    """

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(f.var(dim=0, unbiased=False) + 1e-8).mean()
        return torch.cat([f, std.expand(f.shape[0], 1)], dim=1)


class Critic(nn.Module):
    """Discriminator / critic: body -> features -> [minibatch std] -> one logit (+ optional class logits)."""

    def __init__(self, body_net: nn.Module, feat_dim: int, n_classes: int = 0, minibatch_std: bool = False):
        super().__init__()
        self.body = body_net
        self.mbstd = MinibatchStd() if minibatch_std else None
        head_in = feat_dim + (1 if minibatch_std else 0)
        self.head = nn.Linear(head_in, 1)
        self.aux = nn.Linear(head_in, n_classes) if n_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(logits (N,), features (N, F), class logits (N, C) or None)."""
        f = self.body(x)
        h = self.mbstd(f) if self.mbstd is not None else f
        aux = self.aux(h) if self.aux is not None else None
        return self.head(h).squeeze(1), f, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[0]


class Generator(nn.Module):
    """z (and, for AC-GAN, a class) -> one example. The class enters as a one-hot vector concatenated to z."""

    def __init__(self, net: nn.Module, latent_dim: int, n_classes: int = 0):
        super().__init__()
        self.net = net
        self.latent_dim = latent_dim
        self.n_classes = n_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            if y is None:
                raise ValueError("this generator is class-conditional: pass the classes y")
            z = torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1)
        return self.net(z)


def set_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    """Point every `Dropout` inside `module` at the run's generator."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.generator = generator


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

"""Ensemble: K runs of one structure trained as one batched model, each member exactly its solo Trainer.

    ens = Ensemble([Trainer(cfg.with_updates(**{"train.seed": s})) for s in range(8)])
    ens.step(500)                      # one batched step advances all 8 members
    ens.view(3).history                # member 3: the same curves its solo Trainer would have drawn
    ens.member(3).save("m3.pt")        # an ordinary solo Trainer (weights, optimiser state, rng, history)
    cohort = Cohort.from_configs(cfgs) # any configs: grouped by structure, a solo fallback named per group

Members share a structure (`structure(cfg)`: family, arch, widths, loss, which tricks are on, the optimiser
kinds, n_critic / n_gen, batch size) and may differ in their seed and in every scalar: learning rates, betas,
momentum, weight decay, lr-decay length and factor, GP / R1 / R2 weights, clip value, label smoothing,
instance-noise σ and its annealing, EMA β and the AC-GAN weight.

How (and why this way, measured on this 2-core CPU with torch 2.14):
- Parameters live stacked (K, ...) as leaf tensors. The members' solo modules are still there (inside their
  Trainers) and serve as the *template*: `Stacked` walks the template tree and runs each layer batched --
  Linear as `BatchedLinear` on (K, N, F): one baddbmm forward and torch's own addmm backward formulas, so that
  on the CPU an MLP member of the ring-8 presets is BITWISE its solo run (tested for vanilla / recommended /
  WGAN-GP; other widths may take another BLAS path in F.linear and agree within 1e-6 only; a plain baddbmm backward computes ∂W as (xᵀg)ᵀ and differs in the last bit, which a chaotic GAN
  amplifies to other mode counts after 3000 steps). Conv2d / ConvTranspose2d run as grouped convolutions with
  the members on the channel axis (N, K·C, H, W): faster than K convolutions, but their backward rounds
  differently (≤ 1e-6 relative after 24 steps, not bitwise). BatchNorm over that channel layout keeps
  per-member statistics for free. torch.func (`stack_module_state` + `functional_call` + `vmap`) was the alternative; it
  cannot draw each member's dropout masks from the member's own generator inside the vmapped call, nor update
  BatchNorm running statistics or the spectral-norm vectors u, v in place, and those are what exactness needs.
- The batched loss is the SUM of the member losses (each the batch mean, as solo), so plain autograd gives
  every member exactly its solo gradient, and the input-gradient penalties (GP, R1, R2) stay per member.
- Randomness: member k draws from its own Trainer's generator, in the solo order (batch indices, z, classes,
  instance noise, GP α, dropout masks), so it reproduces the solo trajectory.
- Optimisers: Adam runs torch's fused kernel (as the solo runs do) on the stacked tensors, one call per set of
  members with the same hyperparameters and step; SGD and RMSprop follow torch's single-tensor CPU code operation
  by operation, with the per-member hyperparameters as (K, 1, ...) tensors; lr decay reproduces LambdaLR / ExponentialLR per member;
  spectral norm does torch's one power iteration per forward, per member.
Exactness is tested (tests/test_ensemble.py): every loss and parameter after the steps, every trick, MLP and conv.
What is not batched falls back to solo runs, with the reason (`unsupported`): the autoencoder families and the
AE-pretrained generator.

Members fail alone: a member whose metrics turn NaN / infinite gets the solo DivergenceError message in
`errors[k]`, its Trainer keeps the state at the end of that chunk (as a solo run that raised), and it is masked
out -- its slot still computes (members are independent, nothing leaks) but is never recorded again.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.adam import adam as adam_functional

from . import nets, objectives, tricks
from .config import RunConfig
from .device import keep_freed_memory
from .trainer import PARTS, DivergenceError, Snapshot, Trainer

log = logging.getLogger(__name__)
SN = "parametrizations.weight."                  # where torch's spectral_norm keeps a weight's pieces


# ---- which runs can share an ensemble ---------------------------------------------------------------
def unsupported(cfg: RunConfig) -> str | None:
    """Why `cfg` trains as a solo run instead of in an ensemble (None when it can be batched)."""
    if cfg.model.family != "gan":
        return f"the '{cfg.model.family}' family trains as solo runs (only GANs have a batched step so far)"
    if cfg.model.gan_init == "ae":
        return "an AE-pretrained generator trains as a solo run (its pretraining is not batched)"
    return None


def structure(cfg: RunConfig) -> tuple:
    """Everything that changes tensor shapes, the graph or the random draws: runs with equal keys can be batched."""
    o, t, p = cfg.objective, cfg.tricks, cfg.optim
    return (cfg.data, cfg.model, cfg.arch, o.loss, o.spectral_norm, o.gp > 0, o.r1 > 0, o.r2 > 0, o.clip > 0,
            t.ema > 0, t.minibatch_std, t.feature_matching, t.d_dropout, t.ac, p.g_opt, p.d_opt,
            p.momentum > 0, p.n_critic, p.n_gen, p.lr_decay, cfg.train.batch_size, cfg.train.device)


# ---- K copies of one module tree, run as one batched forward -----------------------------------------
class BatchedLinear(torch.autograd.Function):
    """y_k = x_k W_kᵀ + b_k for (K, N, I) inputs, computed so that every member's values and gradients are bitwise
    those of F.linear: the forward is one baddbmm (F.linear's addmm, batched; a single output column goes member by
    member, as F.linear then takes a matrix-vector path), the backward uses torch's addmm formulas for a
    transposed weight (∂W = gᵀx, not (xᵀg)ᵀ, which rounds differently). Differentiable twice (R1 / GP).

    It computes only the products its caller needs, as torch's own addmm backward does: no ∂x for an input that
    needs none (data, noise), and no ∂W, ∂b when `weight_grads` is False -- D's layers in G's step and in the
    input-gradient pass of a penalty, whose weight gradients nobody reads (a Python Function cannot see that from
    `needs_input_grad`, which ignores `backward(inputs=...)` / `autograd.grad`). About a tenth of ring-8's step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, weight_grads: bool = True) -> torch.Tensor:
        ctx.save_for_backward(x if weight_grads else None, w)
        ctx.weight_grads = weight_grads
        if w.shape[1] == 1:
            return torch.stack([torch.addmm(b[k], x[k], w[k].t()) for k in range(len(w))])
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        wg = ctx.weight_grads
        return (torch.bmm(g, w) if need_x else None, torch.bmm(g.transpose(1, 2), x) if need_w and wg else None,
                g.sum(1) if need_b and wg else None, None)


class Stacked:
    """The state of K structurally equal modules stacked (K, ...), and a batched forward over the template tree.

    Layouts: features (K, N, F); images (N, K·C, H, W) -- the members side by side on the channel axis."""

    def __init__(self, modules: Sequence[nn.Module], generators: Sequence[torch.Generator], grad: bool = True):
        self.template = modules[0]
        self.K = len(modules)
        states = [m.state_dict() for m in modules]
        self.t = {k: torch.stack([s[k] for s in states]) for k in states[0]}
        self.param_names = [n for n, _ in self.template.named_parameters()]
        self.buffer_names = [n for n in self.t if n not in set(self.param_names)]
        self.grad = grad
        for n in self.param_names:
            self.t[n].requires_grad_(grad)
        self.generators = list(generators)
        self.training = True
        self.weight_grads = True                 # False: a pass whose weight gradients nobody reads (see inputs_only)
        self._targets: dict[int, tuple[nn.Module, list]] = {}   # id(solo module) -> (it, [(its tensor, stacked)])

    def params(self) -> list[torch.Tensor]:
        return [self.t[n] for n in self.param_names]

    def regroup(self, keep: Sequence[int], modules: Sequence[nn.Module], generators: Sequence[torch.Generator]) -> None:
        """Members `keep` (in that order) stay as they are stacked, `modules` are stacked after them."""
        idx = torch.tensor(list(keep), dtype=torch.long, device=next(iter(self.t.values())).device)
        states = [m.state_dict() for m in modules]
        with torch.no_grad():
            self.t = {n: torch.cat([v.index_select(0, idx), *[st[n].unsqueeze(0) for st in states]])
                      for n, v in self.t.items()}
        for n in self.param_names:
            self.t[n].requires_grad_(self.grad)
        self.generators = [self.generators[i] for i in keep] + list(generators)
        self.K = len(self.generators)
        self._targets = {}                       # (it held the old stacked tensors)

    @contextlib.contextmanager
    def inputs_only(self):
        """Forwards inside this block record no weight-gradient products for the Linear layers: for graphs that
        are differentiated with respect to their inputs or another net's weights only."""
        self.weight_grads = False
        try:
            yield
        finally:
            self.weight_grads = True

    def load_into(self, k: int, module: nn.Module) -> None:
        """Copy member k's slice into a solo module of the same structure (what load_state_dict does -- a copy
        into each parameter and buffer, without gradient -- minus its per-call key matching: a class cohort's
        members are synced this way for every snapshot)."""
        dst = self._targets.get(id(module))
        if dst is None or dst[0] is not module:
            sd = module.state_dict(keep_vars=True)
            if set(sd) != set(self.t):
                module.load_state_dict({n: v[k].detach() for n, v in self.t.items()})   # its own error message
                return
            dst = self._targets[id(module)] = (module, [(sd[n], self.t[n]) for n in self.t])
        with torch.no_grad():
            for d, v in dst[1]:
                d.copy_(v[k])

    # -- per-member broadcasting and layouts --
    def per(self, v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A (K,) tensor shaped to broadcast over `like` in its layout."""
        if like.dim() == 4:                      # images: (N, K·C, H, W)
            return v.repeat_interleave(like.shape[1] // self.K).view(1, -1, 1, 1)
        return v.view(-1, *([1] * (like.dim() - 1)))

    def stack(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """K solo tensors (N, ...) -> the batched layout."""
        return torch.stack(xs, 1).flatten(1, 2) if xs[0].dim() == 4 else torch.stack(xs)

    def unstack(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() == 4:
            return list(x.view(x.shape[0], self.K, -1, *x.shape[2:]).unbind(1))
        return list(x.unbind(0))

    def per_example(self, x: torch.Tensor) -> torch.Tensor:
        """(K, N, D): each member's examples flattened (for the input-gradient penalties)."""
        if x.dim() == 4:
            return x.view(x.shape[0], self.K, -1).transpose(0, 1)
        return x.flatten(2)

    # -- layers --
    def weight(self, prefix: str, transposed: bool = False) -> torch.Tensor:
        """The (K, ...) weight; spectrally normalised as torch does it: one power iteration in training mode."""
        if prefix + "weight" in self.t:
            return self.t[prefix + "weight"]
        w = self.t[prefix + SN + "original"]
        u, v = self.t[prefix + SN + "0._u"], self.t[prefix + SN + "0._v"]
        mat = (w.transpose(1, 2) if transposed else w).flatten(2)           # (K, h, w)
        if self.training:
            with torch.no_grad():
                u.copy_(F.normalize(torch.bmm(mat, v.unsqueeze(2)).squeeze(2), dim=1, eps=1e-12))
                v.copy_(F.normalize(torch.bmm(mat.transpose(1, 2), u.unsqueeze(2)).squeeze(2), dim=1, eps=1e-12))
        u, v = u.clone(), v.clone()              # the next forward updates them in place
        sigma = (u * torch.bmm(mat, v.unsqueeze(2)).squeeze(2)).sum(1)
        return w / sigma.view(-1, *([1] * (w.dim() - 1)))

    def __call__(self, mod: nn.Module, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
        K = self.K
        if isinstance(mod, nn.Sequential):
            for name, child in mod.named_children():
                x = self(child, x, f"{prefix}{name}.")
            return x
        if isinstance(mod, nn.Linear):
            return BatchedLinear.apply(x, self.weight(prefix), self.t[prefix + "bias"], self.weight_grads)
        if isinstance(mod, nn.Conv2d):
            w, b = self.weight(prefix), self.t[prefix + "bias"]
            return F.conv2d(x, w.flatten(0, 1), b.flatten(), mod.stride, mod.padding, groups=K)
        if isinstance(mod, nn.ConvTranspose2d):
            w, b = self.weight(prefix, transposed=True), self.t.get(prefix + "bias")
            return F.conv_transpose2d(x, w.flatten(0, 1), None if b is None else b.flatten(), mod.stride,
                                      mod.padding, groups=K)
        if isinstance(mod, nn.BatchNorm2d):
            mean, var = self.t[prefix + "running_mean"], self.t[prefix + "running_var"]
            if self.training:
                self.t[prefix + "num_batches_tracked"].add_(1)
            return F.batch_norm(x, mean.view(-1), var.view(-1), self.t[prefix + "weight"].flatten(),
                                self.t[prefix + "bias"].flatten(), self.training, mod.momentum, mod.eps)
        if isinstance(mod, nets.Dropout):
            if not self.training or mod.p == 0.0:
                return x
            shape = self.unstack(x)[0].shape
            keep = self.stack([torch.rand(shape, generator=g, device=x.device, dtype=x.dtype) for g in
                               self.generators]) >= mod.p
            return x * keep / (1.0 - mod.p)
        if isinstance(mod, nets.Flatten):        # (N, K·C, H, W) -> (K, N, C·H·W)
            return x.view(x.shape[0], K, -1).transpose(0, 1)
        if isinstance(mod, nets.Unflatten):      # (K, N, C·H·W) -> (N, K·C, H, W)
            c, h, w = mod.shape
            return x.transpose(0, 1).reshape(x.shape[1], K * c, h, w)
        if isinstance(mod, nn.Identity):
            return x
        if isinstance(mod, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.ELU, nn.GELU, nn.Sigmoid)):
            return mod(x)                        # elementwise: the same op, whatever the layout
        raise TypeError(f"no batched form of {type(mod).__name__} yet")

    # -- the two nets of a GAN --
    def critic(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """nets.Critic.forward_all, batched: logits (K, N), features (K, N, F), class logits (K, N, C) or None."""
        c = self.template
        f = self(c.body, x, "body.")
        h = f
        if c.mbstd is not None:                  # minibatch std, per member
            std = torch.sqrt(f.var(dim=1, unbiased=False) + 1e-8).mean(-1)
            h = torch.cat([f, std.view(-1, 1, 1).expand(f.shape[0], f.shape[1], 1)], dim=2)
        aux = self(c.aux, h, "aux.") if c.aux is not None else None
        return self(c.head, h, "head.").squeeze(2), f, aux

    def generator(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """nets.Generator.forward, batched: z (K, N, L), classes (K, N)."""
        g = self.template
        if g.n_classes:
            z = torch.cat([z, F.one_hot(y, g.n_classes).to(z.dtype)], dim=2)
        return self(g.net, z, "net.")


# ---- optimisers on stacked parameters, as torch's own code -------------------------------------------
class StackedOptimizer:
    """torch.optim.Adam / SGD / RMSprop over stacked (K, ...) parameters with per-member hyperparameters.

    Adam calls torch's fused kernel, as the solo runs' optimiser does. SGD and RMSprop repeat torch's single-tensor
    CPU path operation by operation; a per-member scalar that torch passes as `value=` / `alpha=` is folded into
    the tensor operand first (the same product, the same rounding)."""

    EPS = {"adam": 1e-8, "rmsprop": 1e-8}
    RMS_ALPHA = 0.99

    def __init__(self, kind: str, params: list[torch.Tensor], solo: Sequence[torch.optim.Optimizer],
                 cfgs: Sequence[RunConfig]):
        self.kind, self.params = kind, params
        if kind == "adam" and not all(o.defaults.get("fused") for o in solo):
            raise ValueError("an ensemble's Adam members must use torch's fused Adam, as models.common builds them")
        self.fused = kind == "adam"
        self.wd_each = [float(c.optim.weight_decay) for c in cfgs]
        self.lr = [o.param_groups[0]["lr"] for o in solo]               # current lr of each member (python floats)
        self.beta1 = [c.optim.beta1 for c in cfgs]
        self.beta2 = [c.optim.beta2 for c in cfgs]
        self.momentum = [c.optim.momentum for c in cfgs]
        self._vectors()
        self.steps, self.sgd_started = self._counts(solo)   # each member's optimiser step count (members may
        self.state: list[dict[str, torch.Tensor]] = [self._import(i, solo) for i in range(len(params))]  # differ)

    def _vectors(self) -> None:
        """The per-member weight decay and momentum as (K,) tensors (weight decay None when no member has any)."""
        p = self.params[0]
        vec = lambda xs: torch.tensor([float(x) for x in xs], dtype=p.dtype, device=p.device)  # noqa: E731
        self.wd = vec(self.wd_each) if any(self.wd_each) else None
        self.mom = vec(self.momentum)

    @staticmethod
    def _counts(solo: Sequence[torch.optim.Optimizer]) -> tuple[list[int], list[bool]]:
        """Each solo optimiser's step count and whether its momentum buffer exists (read at its last parameter)."""
        per = [o.state.get(o.param_groups[0]["params"][-1], {}) for o in solo]
        return [int(s["step"]) if "step" in s else 0 for s in per], [s.get("momentum_buffer") is not None for s in per]

    def _import(self, i: int, solo: Sequence[torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """Stack the members' torch optimiser state of parameter i (zeros for a fresh optimiser)."""
        per = [o.state.get(o.param_groups[0]["params"][i], {}) for o in solo]
        names = {"adam": ("exp_avg", "exp_avg_sq"), "sgd": ("momentum_buffer",),
                 "rmsprop": ("square_avg", "momentum_buffer")}[self.kind]
        p = self.params[i]
        out = {}
        for n in names:
            vals = [s.get(n) for s in per]
            out[n] = torch.stack([v if v is not None else torch.zeros_like(p[0]) for v in vals]).detach()
        return out

    def regroup(self, keep: Sequence[int], params: list[torch.Tensor], solo: Sequence[torch.optim.Optimizer],
                cfgs: Sequence[RunConfig]) -> None:
        """Members `keep` stay with their state as it is; the members of `solo` (their torch optimisers, with
        `cfgs`) join after them. `params`: the regrouped stacked parameters."""
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731   (Ensemble.regroup checked the joiners' Adam)
        self.params = params
        self.lr = pick(self.lr) + [o.param_groups[0]["lr"] for o in solo]
        self.beta1 = pick(self.beta1) + [c.optim.beta1 for c in cfgs]
        self.beta2 = pick(self.beta2) + [c.optim.beta2 for c in cfgs]
        self.momentum = pick(self.momentum) + [c.optim.momentum for c in cfgs]
        self.wd_each = pick(self.wd_each) + [float(c.optim.weight_decay) for c in cfgs]
        steps, started = self._counts(solo) if solo else ([], [])
        self.steps, self.sgd_started = pick(self.steps) + steps, pick(self.sgd_started) + started
        self._vectors()
        idx = torch.tensor(list(keep), dtype=torch.long, device=params[0].device)
        self.state = [{n: torch.cat([v.index_select(0, idx), *([new[n]] if solo else [])])
                       for n, v in old.items()}
                      for old, new in zip(self.state, [self._import(i, solo) if solo else {}
                                                       for i in range(len(params))])]

    def export(self, k: int, opt: torch.optim.Optimizer) -> None:
        """Write member k's state into its solo torch optimiser (what opt.state_dict() then saves)."""
        opt.param_groups[0]["lr"] = self.lr[k]
        for p, s in zip(opt.param_groups[0]["params"], self.state):
            if self.steps[k] == 0:
                opt.state.pop(p, None)
                continue
            st: dict[str, Any] = {}
            if self.kind in ("adam", "rmsprop"):   # where torch keeps it: on the device for fused, else on the CPU
                st["step"] = torch.tensor(float(self.steps[k]), device=p.device if self.fused else None)
            for n, v in s.items():
                if n == "momentum_buffer" and not self.momentum[k]:
                    if self.kind == "sgd":
                        st[n] = None
                    continue
                st[n] = v[k].detach().clone()
            opt.state[p] = st

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def per(self, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (p.dim() - 1)))

    @torch.no_grad()
    def step(self) -> None:
        self.steps = [t + 1 for t in self.steps]
        if self.fused:
            return self._fused_adam()
        ts = self.steps
        vec = lambda xs: torch.tensor(xs, dtype=self.params[0].dtype, device=self.params[0].device)  # noqa: E731
        neg_lr = vec([-lr for lr in self.lr])
        first = [k for k, t in enumerate(ts) if t == 1 and not self.sgd_started[k]] if self.kind == "sgd" else []
        for p, s in zip(self.params, self.state):
            g = p.grad
            if self.wd is not None:
                g = g.add(p * self.per(self.wd, p))
            if self.kind == "sgd":
                buf = s["momentum_buffer"]
                if len(first) == len(ts):
                    buf.copy_(g)
                else:
                    buf.mul_(self.per(self.mom, p)).add_(g)
                    for k in first:             # a member's first step: its buffer is its gradient (as torch)
                        buf[k].copy_(g[k])
                p.add_(buf * self.per(neg_lr, p))
            else:                                # rmsprop (momentum > 0 is part of the structure)
                s["square_avg"].mul_(self.RMS_ALPHA).addcmul_(g, g, value=1 - self.RMS_ALPHA)
                avg = s["square_avg"].sqrt().add_(self.EPS["rmsprop"])
                if self.momentum[0] > 0:
                    s["momentum_buffer"].mul_(self.per(self.mom, p)).addcdiv_(g, avg)
                    p.add_(s["momentum_buffer"] * self.per(neg_lr, p))
                else:
                    p.addcdiv_(g * self.per(neg_lr, p), avg)

    def _fused_adam(self) -> None:
        """torch's fused Adam kernel on the stacked tensors, one call per set of members that share lr, betas,
        weight decay and step (usually all of them: then on the whole (K, ...) tensors). The kernel is elementwise,
        so a member's slice gets bitwise its solo update."""
        K = len(self.steps)
        sets: dict[tuple, list[int]] = {}
        for k in range(K):
            key = (self.lr[k], self.beta1[k], self.beta2[k], self.wd_each[k], self.steps[k])
            sets.setdefault(key, []).append(k)
        for (lr, b1, b2, wd, t), ks in sets.items():
            part = (lambda x: [x]) if len(ks) == K else (lambda x: [x[k] for k in ks])  # noqa: E731
            ps, grads, m, v = [], [], [], []
            for p, s in zip(self.params, self.state):
                ps += part(p)
                grads += part(p.grad)
                m += part(s["exp_avg"])
                v += part(s["exp_avg_sq"])
            steps = [torch.tensor(float(t - 1), device=p.device) for p in ps]   # the kernel call adds the 1
            adam_functional(ps, grads, m, v, [], steps, fused=True, amsgrad=False, beta1=b1, beta2=b2, lr=lr,
                            weight_decay=wd, eps=self.EPS["adam"], maximize=False)


def grad_norms(params: list[torch.Tensor]) -> torch.Tensor:
    """(K,): each member's ‖∇θ‖₂ over its parameters, as models.common.grad_norm does for one run."""
    norms = torch.stack([p.grad.flatten(1).norm(dim=1) for p in params if p.grad is not None])
    return torch.linalg.vector_norm(norms, dim=0)


# ---- the ensemble ---------------------------------------------------------------------------------------
class Ensemble:
    """K GAN Trainers of one structure stepped as one batched model. Their Trainers stay the members' records:
    generator, history, step count, fixed noise; `view(k)` brings member k's weights back into its Trainer."""

    def __init__(self, trainers: Sequence[Trainer]):
        if not trainers:
            raise ValueError("an ensemble needs at least one member")
        self.trainers = list(trainers)
        keys = {structure(t.cfg) for t in self.trainers}
        for t in self.trainers:
            why = unsupported(t.cfg)
            if why:
                raise ValueError(why)
        if len(keys) > 1:
            raise ValueError("the members of an ensemble must share one structure (see ensemble.structure)")
        keep_freed_memory()                       # K-fold activations: reuse freed memory, fault no pages per step
        first = self.trainers[0]
        self.cfgs = [t.cfg for t in self.trainers]
        self.cfg, self.data, self.device = first.cfg, first.data, first.device
        self.K = len(self.trainers)
        gens = [t.gen for t in self.trainers]
        models = [t.model for t in self.trainers]
        self.g = Stacked([m.g for m in models], gens)
        self.d = Stacked([m.d for m in models], gens)
        self.g_ema = Stacked([m.g_ema for m in models], gens, grad=False) if models[0].g_ema is not None else None
        self.opt = {"d": StackedOptimizer(self.cfg.optim.d_opt, self.d.params(),
                                          [m.optimizers["d"] for m in models], self.cfgs),
                    "g": StackedOptimizer(self.cfg.optim.g_opt, self.g.params(),
                                          [m.optimizers["g"] for m in models], self.cfgs)}
        self.base_lr = {k: [t.schedulers[k].base_lrs[0] if t.schedulers[k] is not None else o.lr[i]
                            for i, t in enumerate(self.trainers)] for k, o in self.opt.items()}
        self.n_classes = models[0].n_classes
        self._hyper()
        self.errors: list[str] = [""] * self.K
        self.steps = [t.step_count for t in self.trainers]   # members may be at different steps (a class cohort)
        self.seconds = 0.0
        self._stale: set[int] = set()             # members whose Trainer's weights lag the stacked state
        self._stale_opt: set[int] = set()         # ... whose optimiser state lags it

    def _hyper(self) -> None:
        """The members' per-member scalars as (K,) tensors."""
        vec = lambda f: torch.tensor([float(f(c)) for c in self.cfgs], device=self.device)  # noqa: E731
        self.h = {"gp": vec(lambda c: c.objective.gp), "r1": vec(lambda c: c.objective.r1 / 2),
                  "r2": vec(lambda c: c.objective.r2 / 2), "clip": vec(lambda c: c.objective.clip),
                  "target": vec(lambda c: tricks.real_target(c.tricks.label_smoothing)).view(-1, 1),
                  "ac": vec(lambda c: c.tricks.ac_weight), "ema": vec(lambda c: 1.0 - c.tricks.ema)}

    def regroup(self, keep: Sequence[int], joiners: Sequence[Trainer] = ()) -> None:
        """Members `keep` (indices, in this order) stay, `joiners` come in after them, and the others leave with
        their Trainers brought up to date. The members that stay are not written back and stacked again: their
        stacked weights and optimiser state are kept as they are (indexed), the joiners' stacked onto them -- the
        same ensemble as Ensemble([the stayers' views..., *joiners]) (tests/test_ensemble.py compares the two),
        for the joiners' cost instead of every member's. A class cohort regroups whenever a student pauses or
        presses Train: restacking all 30 members each time took 40 ms, three quarters of their batched step
        (benchmarks/cohort_regroup.py; regrouping: 8 ms)."""
        keep = list(keep)
        if sorted(set(keep)) != sorted(keep) or any(not 0 <= i < self.K for i in keep):
            raise ValueError(f"keep must name distinct members of 0..{self.K - 1}, got {keep}")
        if not keep and not joiners:
            raise ValueError("an ensemble needs at least one member")
        for t in joiners:
            why = unsupported(t.cfg)
            if why:
                raise ValueError(why)
            if structure(t.cfg) != structure(self.cfg):
                raise ValueError("the members of an ensemble must share one structure (see ensemble.structure)")
            nets = [(self.g, t.model.g), (self.d, t.model.d)] + \
                ([(self.g_ema, t.model.g_ema)] if self.g_ema is not None else [])
            for stacked, module in nets:             # (checked before anything changes: all or nothing)
                sd = module.state_dict()
                if sd.keys() != stacked.t.keys() or any(v.shape != stacked.t[n].shape[1:] for n, v in sd.items()):
                    raise ValueError("a joining member's networks do not match the ensemble's")
            if any(self.opt[n].fused and not t.model.optimizers[n].defaults.get("fused") for n in self.opt):
                raise ValueError("an ensemble's Adam members must use torch's fused Adam, as models.common builds them")
        for k in sorted(set(range(self.K)) - set(keep)):
            self.view(k)                               # a leaver's Trainer: up to date, as a restack left it
        models = [t.model for t in joiners]
        gens = [t.gen for t in joiners]
        self.g.regroup(keep, [m.g for m in models], gens)
        self.d.regroup(keep, [m.d for m in models], gens)
        if self.g_ema is not None:
            self.g_ema.regroup(keep, [m.g_ema for m in models], gens)
        cfgs = [t.cfg for t in joiners]
        for name, params in (("d", self.d.params()), ("g", self.g.params())):
            self.opt[name].regroup(keep, params, [m.optimizers[name] for m in models], cfgs)
            self.base_lr[name] = [self.base_lr[name][i] for i in keep] + [
                t.schedulers[name].base_lrs[0] if t.schedulers[name] is not None else
                m.optimizers[name].param_groups[0]["lr"] for t, m in zip(joiners, models)]
        new_index = {old: new for new, old in enumerate(keep)}
        self._stale = {new_index[k] for k in self._stale if k in new_index}
        self._stale_opt = {new_index[k] for k in self._stale_opt if k in new_index}
        self.trainers = [self.trainers[i] for i in keep] + list(joiners)
        self.errors = [self.errors[i] for i in keep] + [""] * len(joiners)
        self.steps = [self.steps[i] for i in keep] + [t.step_count for t in joiners]
        self.cfgs = [t.cfg for t in self.trainers]
        first = self.trainers[0]
        self.cfg, self.data, self.device = first.cfg, first.data, first.device
        self.K = len(self.trainers)
        self._hyper()

    # ---- random draws, member by member in the solo order --------------------------------------------
    def _each(self, draw) -> list[torch.Tensor]:
        return [draw(t) for t in self.trainers]

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's minibatch as its solo run draws it (its indices from its generator), gathered at once."""
        B, data = self.cfg.train.batch_size, self.data
        idx = torch.stack(self._each(lambda t: data.indices(B, t.gen)))          # (K, B)
        x = data.x_train[idx]                                                    # (K, B, ...)
        return (x.transpose(0, 1).flatten(1, 2) if x.dim() == 5 else x), data.y_train[idx]

    def _prior(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.stack(self._each(lambda t: t.model.prior(n, t.gen, self.device)))
        y = torch.stack(self._each(lambda t: t.model.sample_classes(n, t.gen, self.device))) \
            if self.n_classes else None
        return z, y

    @property
    def step_count(self) -> int:
        """The step of the members when they are all at one step (ensembles built from configs); else the most."""
        return max(self.steps)

    def _noise(self, x: torch.Tensor, steps: Sequence[int]) -> torch.Tensor:
        """Instance noise: member k adds σ_k(t_k)·ε from its generator, or nothing when its σ is 0 (as solo)."""
        sig = [tricks.instance_noise_sigma(c.tricks.instance_noise, t, c.tricks.instance_noise_steps)
               for c, t in zip(self.cfgs, steps)]
        if not any(s > 0 for s in sig):
            return x
        parts = self.d.unstack(x)
        eps = self.d.stack([torch.randn(p.shape, generator=t.gen, device=p.device, dtype=p.dtype) if s > 0
                            else torch.zeros_like(p) for p, s, t in zip(parts, sig, self.trainers)])
        return x + self.d.per(torch.tensor(sig, device=x.device, dtype=x.dtype), x) * eps

    def _input_grads(self, x: torch.Tensor) -> torch.Tensor:
        """(K, N, D): ∂D(x)/∂x per example, with the graph kept (the penalties are differentiated again)."""
        x = x.detach().requires_grad_(True)
        with self.d.inputs_only():               # the penalty reaches D's weights through ∂D/∂x, not through D(x)
            out = self.d.critic(x)[0]
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return self.d.per_example(grad)

    # ---- one iteration, as models.gan.GAN.train_step + common.critic_step ------------------------------
    def _critic_step(self, real: torch.Tensor, real_y: torch.Tensor, fake: torch.Tensor, fake_y,
                     step: Sequence[int]) -> dict[str, torch.Tensor]:
        o, h = self.cfg.objective, self.h
        real_in, fake_in = self._noise(real.detach(), step), self._noise(fake.detach(), step)
        real_out, fake_out = self.d.critic(real_in), self.d.critic(fake_in)
        r, f = real_out[0], fake_out[0]
        loss = objectives.d_loss(o.loss, r, f, h["target"])
        penalty = None
        if o.gp:
            alpha = torch.stack(self._each(lambda t: torch.rand(self.cfg.train.batch_size, generator=t.gen, device=real.device,
                                                                dtype=real.dtype)))       # (K, N)
            if real.dim() == 4:                  # images: one α per (example, member), over its C·H·W values
                N, _, H, W = real.shape
                a = alpha.t().reshape(N, self.K, 1, 1, 1)
                x_hat = (a * real_in.view(N, self.K, -1, H, W) + (1 - a) * fake_in.view(N, self.K, -1, H, W)
                         ).view(real.shape)
            else:
                a = alpha.unsqueeze(2)
                x_hat = a * real_in + (1 - a) * fake_in
            norms = self._input_grads(x_hat).norm(2, dim=2)
            penalty = h["gp"] * ((norms - 1.0) ** 2).mean(-1)
        if o.r1:
            r1 = h["r1"] * self._input_grads(real_in).pow(2).sum(dim=2).mean(-1)
            penalty = r1 if penalty is None else penalty + r1
        if o.r2:
            r2 = h["r2"] * self._input_grads(fake_in).pow(2).sum(dim=2).mean(-1)
            penalty = r2 if penalty is None else penalty + r2
        total = loss if penalty is None else loss + penalty
        if self.n_classes:
            total = total + h["ac"] * (self._ac(real_out[2], real_y) + self._ac(fake_out[2], fake_y))
        opt = self.opt["d"]
        opt.zero_grad()
        total.sum().backward()
        gnorm = grad_norms(opt.params)
        opt.step()
        if o.clip:
            with torch.no_grad():
                for p in opt.params:
                    c = opt.per(h["clip"], p)
                    p.clamp_(-c, c)
        out = {"loss_d": total.detach(), "d_real": objectives.d_output(o.loss, r.detach()).mean(-1),
               "d_fake": objectives.d_output(o.loss, f.detach()).mean(-1), "grad_d": gnorm}
        if penalty is not None:
            out["penalty"] = penalty.detach()
        return out

    @staticmethod
    def _ac(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        K, N, C = logits.shape
        return F.cross_entropy(logits.reshape(K * N, C), y.reshape(-1), reduction="none").view(K, N).mean(-1)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, part: str) -> dict[str, torch.Tensor]:
        cfg, t, step = self.cfg, self.cfg.tricks, self.steps
        n = self.cfg.train.batch_size
        out: dict[str, torch.Tensor] = {}
        if part in ("both", "d"):
            for k in range(cfg.optim.n_critic):
                real, real_y = (x, y) if k == 0 else self._batch()
                # (1) Update D: push D(x) up on real data and D(G(z)) down on generated data
                z, fake_y = self._prior(n)
                with torch.no_grad():
                    fake = self.g.generator(z, fake_y)
                out.update(self._critic_step(real, real_y, fake, fake_y, step))
        if part in ("both", "g"):
            for _ in range(cfg.optim.n_gen):
                # (2) Update G: make D(G(z)) look real (or match D's features of real data)
                z, fake_y = self._prior(n)
                fake = self.g.generator(z, fake_y)
                with self.d.inputs_only():       # G's step backpropagates through D to G's weights only
                    logits, f_fake, aux = self.d.critic(self._noise(fake, step))
                if t.feature_matching:
                    with torch.no_grad():
                        f_real = self.d(self.d.template.body, self._noise(x, step), "body.")
                    loss = objectives.feature_matching(f_real, f_fake)
                else:
                    loss = objectives.g_loss(cfg.objective.loss, logits)
                if self.n_classes:
                    loss = loss + self.h["ac"] * self._ac(aux, fake_y)
                opt = self.opt["g"]
                opt.zero_grad()
                loss.sum().backward(inputs=opt.params)
                out["grad_g"] = grad_norms(opt.params)
                opt.step()
                out["loss_g"] = loss.detach()
                if self.g_ema is not None:
                    self._ema_update()
        return out

    @torch.no_grad()
    def _ema_update(self) -> None:
        """tricks.ema_update per member: θ_ema ← θ_ema + (1 - β_k)(θ - θ_ema); buffers copied."""
        for n in self.g.param_names:
            e = self.g_ema.t[n]
            e.lerp_(self.g.t[n], self.g.per(self.h["ema"], e))
        for n in self.g.buffer_names:
            self.g_ema.t[n].copy_(self.g.t[n])

    def _schedule(self) -> None:
        """The members' LambdaLR (linear to 0 at train.steps) / ExponentialLR, one step."""
        kind = self.cfg.optim.lr_decay
        if kind == "none":
            return
        for name, opt in self.opt.items():
            for i, c in enumerate(self.cfgs):
                if kind == "linear":
                    opt.lr[i] = self.base_lr[name][i] * max(0.0, 1.0 - (self.steps[i] + 1) / c.train.steps)
                else:
                    opt.lr[i] = opt.lr[i] * c.optim.lr_gamma

    # ---- the Trainer-like surface ------------------------------------------------------------------------
    def step(self, n: int = 1, part: str = "both") -> list[dict[str, float]]:
        """Run `n` batched iterations; return each member's latest metrics. Diverged members are masked out."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        if n < 1:
            return [dict(t.last) for t in self.trainers]
        t0 = time.perf_counter()
        pending: list[tuple[tuple[str, ...], torch.Tensor]] = []
        for _ in range(n):
            x, y = self._batch()
            out = self._train_step(x, y, part)
            self._schedule()
            self.steps = [t + 1 for t in self.steps]
            pending.append((tuple(out), torch.stack(list(out.values()))))
        self._stale = set(range(self.K))
        self._stale_opt = set(range(self.K))
        self._flush(pending, n)
        dt = time.perf_counter() - t0
        self.seconds += dt
        alive = [t for t, e in zip(self.trainers, self.errors) if not e] or self.trainers
        for t in alive:
            t.seconds += dt / len(alive)          # each member's share of the batched step
            t._it_per_s = n / dt if dt > 0 else 0.0
        return [dict(t.last) for t in self.trainers]

    def _flush(self, pending: list[tuple[tuple[str, ...], torch.Tensor]], n: int) -> None:
        """Read the chunk back in one transfer; record each live member's history as its solo Trainer would."""
        values = [v.tolist() for _, v in pending]          # n × metrics × K
        for k, tr in enumerate(self.trainers):
            if self.errors[k]:
                continue
            first = self.steps[k] - n + 1
            bad = None
            for i, ((keys, _), rows) in enumerate(zip(pending, values)):
                metrics = {key: row[k] for key, row in zip(keys, rows)}
                tr.history.record(first + i, metrics)
                tr.last = metrics
                if bad is None:
                    bad = next(((first + i, key, v) for key, v in metrics.items() if not math.isfinite(v)), None)
            tr.step_count = self.steps[k]
            tr.prepared = True
            if bad is not None:
                self.errors[k] = str(DivergenceError(*bad))
                self._sync(k)                      # its Trainer keeps the state it diverged with
        self._stale -= {k for k, e in enumerate(self.errors) if e}
        self._stale_opt -= {k for k, e in enumerate(self.errors) if e}

    def _sync(self, k: int, optimizer: bool = True) -> None:
        tr = self.trainers[k]
        m = tr.model
        if k in self._stale or not optimizer:
            self._stale.discard(k)
            self.g.load_into(k, m.g)
            self.d.load_into(k, m.d)
            if self.g_ema is not None:
                self.g_ema.load_into(k, m.g_ema)
            for name, opt in self.opt.items():
                s = tr.schedulers[name]
                if s is not None:
                    s.last_epoch = self.steps[k]
                    s._last_lr = [opt.lr[k]]
        if optimizer:
            self._stale_opt.discard(k)
            for name, opt in self.opt.items():
                opt.export(k, m.optimizers[name])

    def view(self, k: int, optimizer: bool = True) -> Trainer:
        """Member k's own Trainer, brought up to date (weights, optimiser and scheduler state). Read it, evaluate
        it, draw it; stepping it directly would leave the ensemble behind -- use member(k) for an independent run.
        `optimizer=False`: the weights only (what a snapshot or an evaluation reads; copying the optimiser's
        moments too doubled a class cohort's cost of publishing); its optimiser follows when next viewed whole."""
        if k in self._stale or (optimizer and k in self._stale_opt):
            self._sync(k, optimizer)
        return self.trainers[k]

    def views(self) -> list[Trainer]:
        return [self.view(k) for k in range(self.K)]

    def snapshot(self, visuals: bool = True) -> list[Snapshot]:
        return [t.snapshot(visuals) for t in self.views()]

    def evaluate(self, record: bool = True) -> list[dict[str, float]]:
        return [t.evaluate(record) for t in self.views()]

    def payload(self, k: int, note: str = "", metrics=None) -> dict[str, Any]:
        return self.view(k).payload(note, metrics)

    def member(self, k: int) -> Trainer:
        """An independent solo Trainer continuing member k exactly (the checkpoint path: payload -> Trainer)."""
        return Trainer.from_payload(self.payload(k), device=self.device, data=self.data)

    @classmethod
    def from_configs(cls, cfgs: Sequence[RunConfig], device=None) -> "Cohort":
        """K configs of any structures -> a Cohort: one Ensemble per structure, solo Trainers where it cannot."""
        return Cohort.from_configs(cfgs, device=device)


# ---- several runs of any structures ---------------------------------------------------------------------
class Cohort:
    """Runs of any configs, grouped: each structure shared by 2+ batchable runs becomes one Ensemble, the rest
    stay solo Trainers (`notes` says why). `trainer(i)` is run i's Trainer in the order given."""

    def __init__(self, trainers: Sequence[Trainer], batched: bool = True, errors: Sequence[str] | None = None):
        """`errors`: runs that already stopped (diverged or failed before, e.g. copies of an arena's runs) stay
        solo and never advance. Runs at different steps batch together (each member keeps its own step)."""
        self.trainers = list(trainers)
        self.errors: list[str] = list(errors) if errors is not None else [""] * len(self.trainers)
        self.groups: list[tuple[list[int], Ensemble | Trainer]] = []
        self.notes: list[str] = []
        by: dict[tuple, list[int]] = {}
        for i, t in enumerate(self.trainers):
            why = unsupported(t.cfg) if batched else "ensembles are off"
            if why or self.errors[i]:
                self.groups.append(([i], t))
                if why and why not in self.notes:
                    self.notes.append(why)
            else:
                by.setdefault(structure(t.cfg), []).append(i)
        for idx in by.values():
            ts = [self.trainers[i] for i in idx]
            self.groups.append((idx, Ensemble(ts) if len(ts) > 1 else ts[0]))
        self.groups.sort(key=lambda g: g[0][0])

    @classmethod
    def from_configs(cls, cfgs: Sequence[RunConfig], device=None) -> "Cohort":
        return cls([Trainer(c, device=device) for c in cfgs])

    def step_group(self, g: int, n: int) -> None:
        """Advance group g by n steps (one batched call for an Ensemble); record divergence per run. Any other
        failure stops that group's runs only (its message in `errors`); the other groups go on."""
        idx, unit = self.groups[g]
        try:
            unit.step(n)
        except DivergenceError as e:               # a solo run (an Ensemble masks its diverged members instead)
            self.errors[idx[0]] = str(e)
        except Exception as e:                     # a broken run must not stop the others
            text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            why = f"stopped by an error ({type(e).__name__}{': ' + text if text else ''})"
            log.warning("cohort group %s failed: %s", idx, why)
            for k, i in enumerate(idx):
                self.errors[i] = self.errors[i] or why
                if isinstance(unit, Ensemble):
                    unit.errors[k] = unit.errors[k] or why
        if isinstance(unit, Ensemble):
            for i, e in zip(idx, unit.errors):
                self.errors[i] = e

    def healthy(self, g: int) -> bool:
        return any(not self.errors[i] for i in self.groups[g][0])

    def step(self, n: int, chunk: int = 25) -> None:
        """Every healthy run advances n steps; groups take turns in chunks (a fair share of the machine)."""
        left = [n] * len(self.groups)
        while True:
            todo = [g for g in range(len(self.groups)) if left[g] > 0 and self.healthy(g)]
            if not todo:
                return
            for g in todo:
                k = min(chunk, left[g])
                self.step_group(g, k)
                left[g] -= k

    def trainer(self, i: int) -> Trainer:
        """Run i's Trainer, up to date (for an ensemble member: its view)."""
        for idx, unit in self.groups:
            if i in idx:
                return unit.view(idx.index(i)) if isinstance(unit, Ensemble) else unit
        raise IndexError(i)

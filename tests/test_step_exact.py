"""The Trainer's fast step computes exactly what the textbook loop computes.

Each test builds a Trainer, copies its nets, generator state and learning rates into a hand-written loop written
the plain way -- torch.optim.Adam (with fused=True, the implementation the Trainer picks: its rounding differs
from torch's for-loop Adam by an ulp, which a bitwise test must not hide), a full backward pass through D for G's loss, the
label-smoothed D loss with its (1 - t) term, `opt.zero_grad()` -- and draws the same random numbers in the same
order: batch indices, then D's noise, then G's noise. After 50 iterations (taken in chunks of 7 and 43, as a
runner would) every recorded metric and every weight must be bitwise equal. A change that reorders the random
draws, or an optimisation that changes a rounding, fails here.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ganae.config import RunConfig
from ganae.trainer import Trainer

STEPS = 50
SMALL = {"model.g_hidden": 32, "model.d_hidden": 32, "train.batch_size": 64}


def plain_norm(params) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params
                                                 if p.grad is not None]))


def plain_update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    opt.zero_grad()
    loss.backward()
    norm = plain_norm(opt.param_groups[0]["params"])
    opt.step()
    return norm


def plain_optimizer(trainer: Trainer, name: str, params) -> torch.optim.Optimizer:
    d = trainer.model.optimizers[name].defaults
    return torch.optim.Adam(params, lr=d["lr"], betas=d["betas"], fused=True)


def train(trainer: Trainer) -> None:
    trainer.step(7)
    trainer.step(STEPS - 7)


def fork(trainer: Trainer) -> torch.Generator:
    g = torch.Generator(device=trainer.device)
    g.set_state(trainer.gen.get_state())
    return g


def assert_same(trainer: Trainer, reference: dict[str, list[float]], model: torch.nn.Module) -> None:
    h = trainer.history.arrays()
    assert list(h["step"]) == list(range(1, STEPS + 1))
    assert sorted(reference) == sorted(k for k in h if k != "step")
    for k, v in reference.items():
        assert np.array_equal(h[k], np.asarray(v, dtype=np.float64)), k
    ours = trainer.model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(ours[k], v), k


@pytest.mark.parametrize("loss, smoothing", [("ns", 0.0), ("minimax", 0.1)])
def test_gan_step_is_bitwise_the_plain_loop(loss, smoothing):
    t = Trainer(RunConfig().with_updates(**SMALL, **{"objective.loss": loss, "tricks.label_smoothing": smoothing}),
                device="cpu")
    model = copy.deepcopy(t.model)
    G, D = model.g, model.d
    opt_d, opt_g = plain_optimizer(t, "d", D.parameters()), plain_optimizer(t, "g", G.parameters())
    gen, x_all = fork(t), t.data.x_train
    B, zdim, s = t.cfg.train.batch_size, t.cfg.model.latent_dim, 1.0 - smoothing
    ref: dict[str, list[float]] = {k: [] for k in ("loss_d", "d_real", "d_fake", "grad_d", "loss_g", "grad_g")}
    for _ in range(STEPS):
        x = x_all[torch.randint(0, len(x_all), (B,), generator=gen)]
        # (1) D step
        z = torch.randn(B, zdim, generator=gen)
        with torch.no_grad():
            fake = G(z)
        r, f = D(x), D(fake)
        loss_d = (s * F.softplus(-r) + (1 - s) * F.softplus(r)).mean() + F.softplus(f).mean()
        ref["grad_d"].append(plain_update(opt_d, loss_d).item())
        ref["loss_d"].append(loss_d.item())
        ref["d_real"].append(torch.sigmoid(r.detach()).mean().item())
        ref["d_fake"].append(torch.sigmoid(f.detach()).mean().item())
        # (2) G step, backpropagating through D (whose gradients the next zero_grad drops)
        logits = D(G(torch.randn(B, zdim, generator=gen)))
        loss_g = F.softplus(-logits).mean() if loss == "ns" else -F.softplus(logits).mean()
        ref["grad_g"].append(plain_update(opt_g, loss_g).item())
        ref["loss_g"].append(loss_g.item())
    train(t)
    assert_same(t, ref, model)


def test_autoencoder_step_is_bitwise_the_plain_loop():
    t = Trainer(RunConfig().with_updates(**{"data.name": "digits", "model.family": "ae", "model.arch": "mlp",
                                            "model.latent_dim": 8, "train.batch_size": 32}), device="cpu")
    model = copy.deepcopy(t.model)
    opt = plain_optimizer(t, "ae", model.parameters())
    gen, x_all = fork(t), t.data.x_train
    ref: dict[str, list[float]] = {k: [] for k in ("recon", "grad_g", "loss", "mse")}
    for _ in range(STEPS):
        x = x_all[torch.randint(0, len(x_all), (32,), generator=gen)]
        x_hat = model.decoder(model.encoder(x))
        loss = (x_hat - x).pow(2).flatten(1).sum(dim=1).mean()
        ref["grad_g"].append(plain_update(opt, loss).item())
        for k in ("recon", "loss"):
            ref[k].append(loss.item())
        ref["mse"].append((x_hat.detach() - x).pow(2).mean().item())
    train(t)
    assert_same(t, ref, model)


def test_gan_step_leaves_d_without_the_generator_loss_gradient():
    """G's update computes G's gradients only: D's .grad still holds D's own last update, untouched by G's loss."""
    t = Trainer(RunConfig().with_updates(**SMALL), device="cpu")
    t.step(1, part="d")
    before = [p.grad.clone() for p in t.model.d.parameters()]
    t.step(1, part="g")
    assert all(torch.equal(a, p.grad) for a, p in zip(before, t.model.d.parameters()))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.model.g.parameters())


def test_ae_pretrained_generator_is_reproducible_whatever_the_global_rng():
    """The pretraining encoder is initialised from the run's seed, not from torch's global generator."""
    upd = {**SMALL, "model.gan_init": "ae", "model.pretrain_steps": 20}
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        t = Trainer(RunConfig().with_updates(**upd), device="cpu")
        torch.manual_seed(global_seed + 10)
        runs.append((t.prepare(), t.step(10)))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("saved", [{"foreach": None, "fused": None}, {"foreach": True, "fused": None}])
def test_a_checkpoint_from_before_fused_adam_resumes_on_the_fused_path(saved):
    """Checkpoints saved before this change hold foreach=None (the oldest) or foreach Adam; resumed, they step on
    the fused path and continue exactly as the uninterrupted run."""
    t = Trainer(RunConfig().with_updates(**SMALL), device="cpu")
    t.step(3)
    payload = copy.deepcopy(t.payload())            # as saved: its optimiser state no longer t's own tensors
    for state in payload["optim"].values():
        for group in state["param_groups"]:
            group.update(saved)
    resumed = Trainer.from_payload(payload, device="cpu")
    groups = [g for o in resumed.model.optimizers.values() for g in o.param_groups]
    assert all(g["fused"] is True and not g["foreach"] for g in groups)
    t.step(5), resumed.step(5)
    for k, v in t.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k

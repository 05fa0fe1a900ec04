"""Autoencoder regularisers from the lectures do what they say: L1 sparsity, weight decay, dropout, optimiser."""
from __future__ import annotations

import pytest
import torch

from ganae.config import RunConfig
from ganae.trainer import Trainer

AE = {"data.name": "digits", "model.family": "ae", "model.arch": "mlp", "model.latent_dim": 16,
      "train.batch_size": 64, "optim.g_lr": 2e-3, "optim.beta1": 0.9}


def trained(steps: int = 300, **updates) -> Trainer:
    t = Trainer(RunConfig().with_updates(**{**AE, **updates}))
    t.step(steps)
    return t


def codes(t: Trainer) -> torch.Tensor:
    t.model.eval()
    with torch.no_grad():
        return t.model.encode(t.data.x_test)


def test_l1_sparsity_penalty_makes_the_code_sparser():
    plain, sparse = trained(), trained(**{"model.sparsity": 0.5})
    near_zero = lambda z: float((z.abs() < 0.05).float().mean())
    assert near_zero(codes(sparse)) > near_zero(codes(plain)) + 0.3
    assert "code_l1" in sparse.last and "code_l1" not in plain.last


def test_weight_decay_shrinks_the_weights():
    norm = lambda t: float(sum(p.detach().pow(2).sum() for n, p in t.model.named_parameters() if "weight" in n))
    assert norm(trained(**{"optim.weight_decay": 0.05, "optim.g_opt": "sgd", "optim.g_lr": 0.05,
                           "optim.momentum": 0.9})) < \
        0.8 * norm(trained(**{"optim.g_opt": "sgd", "optim.g_lr": 0.05, "optim.momentum": 0.9}))


def test_dropout_is_active_in_training_only():
    t = Trainer(RunConfig().with_updates(**{**AE, "model.dropout": 0.5}))
    x = t.data.x_test[:8]
    t.model.train()
    a, b = t.model.reconstruct(x), t.model.reconstruct(x)
    assert not torch.equal(a, b)
    t.model.eval()
    assert torch.equal(t.model.reconstruct(x), t.model.reconstruct(x))


@pytest.mark.parametrize("opt, lr", [("adam", 2e-3), ("sgd", 0.05), ("rmsprop", 1e-3)])
def test_each_optimiser_trains_the_autoencoder(opt, lr):
    t = Trainer(RunConfig().with_updates(**{**AE, "optim.g_opt": opt, "optim.g_lr": lr, "optim.momentum": 0.9
                                            if opt == "sgd" else 0.0}))
    assert type(t.model.optimizers["ae"]).__name__.lower() == opt
    first = t.step(1)["mse"]
    t.step(300)
    assert t.last["mse"] < 0.6 * first

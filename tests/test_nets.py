"""Nets size themselves from the data shape: 2D points, 8×8, 28×28 and 32×32 images, MLP and conv."""
from __future__ import annotations

import pytest
import torch

from ganae import nets
from ganae.config import RunConfig
from ganae.models import build


@pytest.mark.parametrize("side, plan", [(8, (2, 2)), (28, (2, 7)), (32, (3, 4)), (16, (3, 2)), (64, (3, 8))])
def test_conv_plan(side, plan):
    assert nets.conv_plan(side) == plan


def test_conv_plan_refuses_odd_sides():
    with pytest.raises(ValueError, match="divisible"):
        nets.conv_plan(7)


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (1, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_decoder_and_body_fit_every_shape(shape, arch):
    if len(shape) == 1 and arch == "conv":
        pytest.skip("points always use an MLP")
    dec = nets.decoder(5, shape, arch, hidden=32, layers=2, channels=8, act="relu")
    x = dec(torch.randn(4, 5))
    assert x.shape == (4, *shape)
    if len(shape) > 1:
        assert x.abs().max() <= 1.0           # images come out of tanh
    body, feat = nets.body(shape, arch, hidden=32, layers=2, channels=8, act="leaky_relu")
    critic = nets.Critic(body, feat, n_classes=3, minibatch_std=True)
    logits, f, aux = critic.forward_all(x)
    assert logits.shape == (4,) and f.shape == (4, feat) and aux.shape == (4, 3)


@pytest.mark.parametrize("family", ["gan", "ae", "dae", "vae", "aae", "vaegan"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (1, 32, 32)])
def test_every_family_builds_for_every_image_size(family, shape):
    cfg = RunConfig().with_updates(**{"data.name": "digits", "model.family": family, "model.latent_dim": 4,
                                      "model.channels": 8})
    m = build(cfg, shape, n_classes=10)
    z = torch.randn(3, 4)
    if m.generative:
        y = torch.arange(3) if getattr(m, "n_classes", 0) else None
        assert m.generate(z, y).shape == (3, *shape)
    if m.autoencoder:
        x = torch.rand(3, *shape) * 2 - 1
        assert m.encode(x).shape == (3, 4)
        assert m.reconstruct(x).shape == (3, *shape)


def test_mlp_hidden_layers_and_neurons_are_what_was_asked():
    net = nets.mlp(2, 2, hidden=17, layers=3, act="tanh")
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [l.out_features for l in linears] == [17, 17, 17, 2]
    assert nets.n_params(net) == (2 * 17 + 17) + 2 * (17 * 17 + 17) + (17 * 2 + 2)

"""Stabilisation tricks and building blocks against hand computations: spectral norm, weight clipping, instance
noise, generator EMA, minibatch std, dropout, the class-conditional generator and the AC-GAN loss wiring."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganae import nets, objectives, tricks
from ganae.config import RunConfig
from ganae.models.common import StepContext
from ganae.trainer import Trainer


def top_singular_value(m: nn.Module) -> float:
    """σ_max of the weight as spectral norm sees it: (out, in·k·k); ConvTranspose2d has in/out swapped."""
    w = m.weight.detach()
    if isinstance(m, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


# ---- spectral normalisation ------------------------------------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(20, 30), (4, 20)),
    (lambda: nn.Conv2d(3, 16, 4, 2, 1), (2, 3, 8, 8)),
    (lambda: nn.ConvTranspose2d(16, 8, 4, 2, 1), (2, 16, 4, 4)),
])
def test_spectral_norm_top_singular_value_is_one(make, shape):
    torch.manual_seed(0)
    m = make()
    with torch.no_grad():
        m.weight.mul_(5.0)                     # a weight whose σ_max is far from 1
    assert top_singular_value(m) > 1.5
    tricks.apply_spectral_norm(m)
    assert tricks.parametrizations_applied(m)
    x = torch.randn(shape)
    # an optimiser step moves the raw weight; power iteration (one step per training forward) must follow
    with torch.no_grad():
        orig = m.parametrizations.weight.original
        orig.add_(0.5 * torch.randn_like(orig))
    for _ in range(50):
        m(x)
    assert top_singular_value(m) == pytest.approx(1.0, abs=2e-3)


def test_spectral_norm_on_a_whole_critic():
    torch.manual_seed(1)
    body, feat = nets.body((1, 8, 8), "conv", 32, 2, 8, "leaky_relu")
    critic = nets.Critic(body, feat, n_classes=10, minibatch_std=True)
    layers = [m for m in critic.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 4        # two convs, the head and the class head
    assert any(abs(top_singular_value(m) - 1) > 0.2 for m in layers)
    tricks.apply_spectral_norm(critic)
    tricks.apply_spectral_norm(critic)      # idempotent: no double parametrization
    assert all(len(m.parametrizations.weight) == 1 for m in layers)
    x = torch.randn(16, 1, 8, 8)
    for _ in range(10):
        critic(x)
    for m in layers:
        assert top_singular_value(m) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("sn, g_too", [("d", False), ("dg", True), ("none", None)])
def test_spectral_norm_config_reaches_d_and_optionally_g(sn, g_too):
    cfg = RunConfig().with_updates(**{"objective.spectral_norm": sn, "data.n": 500})
    m = Trainer(cfg, device="cpu").model
    d_layers = [x for x in m.d.modules() if isinstance(x, nn.Linear)]
    g_layers = [x for x in m.g.modules() if isinstance(x, nn.Linear)]
    if sn == "none":
        assert not any(tricks.parametrizations_applied(x) for x in d_layers + g_layers)
        return
    assert all(tricks.parametrizations_applied(x) for x in d_layers)
    assert all(tricks.parametrizations_applied(x) for x in g_layers) == g_too
    assert any(tricks.parametrizations_applied(x) for x in g_layers) == g_too


# ---- weight clipping -------------------------------------------------------------------------
def test_clip_weights_bounds_and_leaves_small_weights_alone():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -0.005, 0.02], [-2.0, 0.0, 0.01]]))
        lin.bias.copy_(torch.tensor([-0.3, 0.004]))
    tricks.clip_weights(lin, 0.01)
    assert torch.allclose(lin.weight, torch.tensor([[0.01, -0.005, 0.01], [-0.01, 0.0, 0.01]]))
    assert lin.bias.tolist() == pytest.approx([-0.01, 0.004])


def test_trainer_clips_d_after_every_step():
    c = 0.02
    cfg = RunConfig().with_updates(**{"objective.loss": "wgan", "objective.clip": c, "data.n": 500,
                                      "train.batch_size": 32})
    tr = Trainer(cfg, device="cpu")
    tr.step(3)
    ps = torch.cat([p.detach().flatten() for p in tr.model.d.parameters()])
    assert ps.abs().max().item() == pytest.approx(c)          # some weights hit the bound ...
    assert bool((ps.abs() <= c + 1e-7).all())                  # ... none exceeds it
    g = torch.cat([p.detach().flatten() for p in tr.model.g.parameters()])
    assert g.abs().max().item() > 10 * c                       # G is not clipped


# ---- instance noise --------------------------------------------------------------------------
def test_instance_noise_schedule_values():
    s0, T = 0.4, 200
    assert tricks.instance_noise_sigma(s0, 0, T) == pytest.approx(0.4)
    assert tricks.instance_noise_sigma(s0, T // 2, T) == pytest.approx(0.2)
    assert tricks.instance_noise_sigma(s0, 150, T) == pytest.approx(0.1)
    assert tricks.instance_noise_sigma(s0, T, T) == 0.0
    assert tricks.instance_noise_sigma(s0, 2 * T, T) == 0.0
    assert tricks.instance_noise_sigma(0.0, 0, T) == 0.0


def test_add_instance_noise_by_hand():
    x = torch.arange(6.0).view(3, 2)
    assert tricks.add_instance_noise(x, 0.0, None) is x
    out = tricks.add_instance_noise(x, 0.5, torch.Generator().manual_seed(7))
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(out, x + 0.5 * eps)


# ---- generator EMA ---------------------------------------------------------------------------
def test_ema_equals_manual_running_average_and_copies_buffers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    ema = tricks.make_ema(net)
    assert all(not p.requires_grad for p in ema.parameters())
    beta = 0.9
    manual = [p.detach().clone().double() for p in net.parameters()]
    for k in range(5):
        with torch.no_grad():                    # "a training step": move every parameter
            for p in net.parameters():
                p.add_(torch.randn_like(p) * (k + 1))
        net(torch.randn(8, 3))                   # BatchNorm's running statistics move too
        tricks.ema_update(ema, net, beta)
        manual = [beta * m + (1 - beta) * p.detach().double() for m, p in zip(manual, net.parameters())]
    for p_ema, m, p in zip(ema.parameters(), manual, net.parameters()):
        assert torch.allclose(p_ema.double(), m, atol=1e-5)
        assert not torch.allclose(p_ema, p, atol=1e-3)          # it is an average, not a copy
    bn, bn_ema = net[1], ema[1]
    assert torch.equal(bn_ema.running_mean, bn.running_mean)
    assert torch.equal(bn_ema.running_var, bn.running_var)
    assert int(bn_ema.num_batches_tracked) == 5


def test_trainer_ema_tracks_generator_and_is_used_for_samples():
    beta = 0.8
    cfg = RunConfig().with_updates(**{"tricks.ema": beta, "data.n": 500, "train.batch_size": 32})
    tr = Trainer(cfg, device="cpu")
    m = tr.model
    manual = [p.detach().clone().double() for p in m.g.parameters()]
    for _ in range(4):
        tr.step(1)
        manual = [beta * a + (1 - beta) * p.detach().double() for a, p in zip(manual, m.g.parameters())]
    for p_ema, a in zip(m.g_ema.parameters(), manual):
        assert torch.allclose(p_ema.double(), a, atol=1e-6)
    z = torch.randn(5, m.latent_dim)
    with torch.no_grad():
        assert torch.allclose(m.generate(z), m.g_ema(z))
        assert not torch.allclose(m.generate(z), m.g(z))
        assert torch.allclose(m.generate(z, ema=False), m.g(z))


# ---- minibatch standard deviation ------------------------------------------------------------
def test_minibatch_std_values_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    # per-feature std over the batch (population): col 0 {1, 3} -> 1; col 1 {2, 6} -> 2; mean 1.5
    out = nets.MinibatchStd()(f)
    assert out.shape == (2, 3)
    assert out[:, :2].tolist() == f.tolist()
    assert out[:, 2].tolist() == pytest.approx([1.5, 1.5], abs=1e-6)
    # three examples: col 0 {0, 0, 3} mean 1 var (1+1+4)/3 = 2; col 1 constant -> sqrt(1e-8)
    f3 = torch.tensor([[0.0, 5.0], [0.0, 5.0], [3.0, 5.0]])
    expect = (math.sqrt(2.0 + 1e-8) + math.sqrt(1e-8)) / 2
    assert nets.MinibatchStd()(f3)[:, 2].tolist() == pytest.approx([expect] * 3, rel=1e-5)


def test_critic_with_minibatch_std_feeds_it_to_the_head():
    torch.manual_seed(0)
    critic = nets.Critic(nn.Identity(), 2, minibatch_std=True)
    assert critic.head.in_features == 3
    with torch.no_grad():
        critic.head.weight.copy_(torch.tensor([[0.0, 0.0, 1.0]]))
        critic.head.bias.zero_()
    f = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert critic(f).tolist() == pytest.approx([1.5, 1.5], abs=1e-6)


# ---- dropout ---------------------------------------------------------------------------------
def test_dropout_is_seeded_and_scaled():
    p = 0.25
    d = nets.Dropout(p)
    x = torch.full((200, 50), 2.0)
    d.generator = torch.Generator().manual_seed(11)
    a = d(x)
    d.generator = torch.Generator().manual_seed(11)
    b = d(x)
    assert torch.equal(a, b)                                        # same seed -> same mask
    keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(11)) >= p
    assert torch.equal(a, torch.where(keep, torch.full_like(x, 2.0 / (1 - p)), torch.zeros_like(x)))
    assert a.unique().tolist() == pytest.approx([0.0, 2.0 / 0.75])
    assert (a == 0).float().mean().item() == pytest.approx(p, abs=0.02)
    assert a.mean().item() == pytest.approx(2.0, rel=0.03)          # inverted dropout keeps the mean
    c = d(x)
    assert not torch.equal(a, c)                                    # the generator advances
    d.eval()
    assert d(x) is x


def test_set_generator_reaches_every_dropout():
    net = nets.mlp(2, 1, 8, 3, "relu", dropout=0.5)
    drops = [m for m in net.modules() if isinstance(m, nets.Dropout)]
    assert len(drops) == 3
    g = torch.Generator()
    nets.set_generator(net, g)
    assert all(m.generator is g for m in drops)


# ---- class-conditional generator and AC-GAN ----------------------------------------------------
def test_class_conditional_generator_appends_one_hot():
    g = nets.Generator(nn.Identity(), latent_dim=2, n_classes=3)
    z = torch.tensor([[0.5, -1.0], [0.5, -1.0]])
    out = g(z, torch.tensor([0, 2]))
    assert out.tolist() == [[0.5, -1.0, 1.0, 0.0, 0.0], [0.5, -1.0, 0.0, 0.0, 1.0]]
    with pytest.raises(ValueError):
        g(z)


def ac_cfg(**extra):
    upd = {"data.name": "digits", "model.arch": "mlp", "model.latent_dim": 8, "tricks.ac": True,
           "tricks.ac_weight": 0.5, "model.g_hidden": 32, "model.d_hidden": 32, "train.batch_size": 16}
    upd.update(extra)
    return RunConfig().with_updates(**upd)


def test_ac_gan_generator_output_changes_with_class():
    tr = Trainer(ac_cfg(), device="cpu")
    m = tr.model
    assert m.n_classes == 10 and m.d.aux.out_features == 10
    z = torch.randn(1, 8).expand(10, 8)
    x = m.generate(z, torch.arange(10))
    assert x.shape == (10, 1, 8, 8)
    diffs = (x[1:] - x[:1]).flatten(1).abs().max(1).values
    assert bool((diffs > 1e-4).all())


def _hand_ce(logits: torch.Tensor, y: torch.Tensor) -> float:
    """mean_i -(ℓ_i[y_i] - log Σ_k exp ℓ_i[k]), written out with math."""
    rows = logits.detach().double().tolist()
    return sum(-(r[k] - math.log(sum(math.exp(v) for v in r))) for r, k in zip(rows, y.tolist())) / len(rows)


def test_ac_gan_loss_terms_by_hand():
    tr = Trainer(ac_cfg(), device="cpu")
    m, w = tr.model, 0.5
    x, y = tr.data.batch(16, torch.Generator().manual_seed(0))

    # (1) D's loss: ns loss + w·[CE(class logits on real, y) + CE(class logits on fake, sampled classes)]
    gen = torch.Generator().manual_seed(42)
    with torch.no_grad():
        z = m.prior(16, gen, x.device)
        fy = torch.randint(10, (16,), generator=gen)
        fake = m.g(z, fy)
        r, _, ra = m.d.forward_all(x)
        f, _, fa = m.d.forward_all(fake)
    bce = (sum(-math.log(1 / (1 + math.exp(-v))) for v in r.tolist())
           + sum(-math.log(1 - 1 / (1 + math.exp(-v))) for v in f.tolist())) / 16
    expect_d = bce + w * (_hand_ce(ra, y) + _hand_ce(fa, fy))
    ctx = StepContext(0, torch.Generator().manual_seed(42), lambda: (x, y))
    out = m.train_step(x, y, "d", ctx)
    assert out["loss_d"].item() == pytest.approx(expect_d, rel=1e-5)

    # (2) G's loss: ns loss on D(G(z, c)) + w·CE(D's class logits, c)
    gen = torch.Generator().manual_seed(43)
    with torch.no_grad():
        z = m.prior(16, gen, x.device)
        fy = torch.randint(10, (16,), generator=gen)
        f, _, fa = m.d.forward_all(m.g(z, fy))
    ns = sum(-math.log(1 / (1 + math.exp(-v))) for v in f.tolist()) / 16
    expect_g = ns + w * _hand_ce(fa, fy)
    ctx = StepContext(0, torch.Generator().manual_seed(43), lambda: (x, y))
    out = m.train_step(x, y, "g", ctx)
    assert out["loss_g"].item() == pytest.approx(expect_g, rel=1e-5)
    assert objectives.ac_loss(fa, fy).item() == pytest.approx(_hand_ce(fa, fy), rel=1e-5)

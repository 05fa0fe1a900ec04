"""Each GAN loss and penalty in `ganae.objectives` against a hand computation on fixed numbers.

The expected values are written out with `math` (not with torch's own loss functions), so a wrong sign, a
missing ½, a swapped target or a per-pixel α makes a test fail.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganae import objectives, tricks

R = [2.0, -1.0, 0.5]      # logits D gives three real examples
F_ = [-0.5, 1.5, 0.0]     # logits D gives three generated examples


def sig(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def t(xs) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


# ---- the five losses -------------------------------------------------------------------------
def hand_d_loss(kind: str, real_target: float = 1.0) -> float:
    if kind in ("minimax", "ns"):
        # binary cross-entropy: real examples with target `real_target`, generated with target 0
        real = mean(-(real_target * math.log(sig(r)) + (1 - real_target) * math.log(1 - sig(r))) for r in R)
        fake = mean(-math.log(1 - sig(f)) for f in F_)
        return real + fake
    if kind == "ls":
        return mean(0.5 * (r - real_target) ** 2 for r in R) + mean(0.5 * f ** 2 for f in F_)
    if kind == "wgan":
        return mean(F_) - mean(R)
    if kind == "hinge":
        return mean(max(0.0, 1 - r) for r in R) + mean(max(0.0, 1 + f) for f in F_)
    raise AssertionError(kind)


def hand_g_loss(kind: str) -> float:
    if kind == "minimax":
        return mean(math.log(1 - sig(f)) for f in F_)
    if kind == "ns":
        return mean(-math.log(sig(f)) for f in F_)
    if kind == "ls":
        return mean(0.5 * (f - 1) ** 2 for f in F_)
    if kind in ("wgan", "hinge"):
        return -mean(F_)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["minimax", "ns", "ls", "wgan", "hinge"])
def test_d_loss_matches_hand_value(kind):
    got = objectives.d_loss(kind, t(R), t(F_)).item()
    assert got == pytest.approx(hand_d_loss(kind), abs=1e-12)


@pytest.mark.parametrize("kind", ["minimax", "ns", "ls", "wgan", "hinge"])
def test_g_loss_matches_hand_value(kind):
    got = objectives.g_loss(kind, t(F_)).item()
    assert got == pytest.approx(hand_g_loss(kind), abs=1e-12)


def test_loss_numbers_spelled_out():
    # a few values written as plain numbers, independent of the helper above
    assert objectives.d_loss("wgan", t(R), t(F_)).item() == pytest.approx(1 / 3 - 1.5 / 3)
    # hinge: real max(0, 1-r) = 0, 2, 0.5 -> 2.5/3; fake max(0, 1+f) = 0.5, 2.5, 1 -> 4/3
    assert objectives.d_loss("hinge", t(R), t(F_)).item() == pytest.approx(2.5 / 3 + 4 / 3)
    # ls: ½(r-1)² = 0.5, 2, 0.125 ; ½f² = 0.125, 1.125, 0
    assert objectives.d_loss("ls", t(R), t(F_)).item() == pytest.approx(2.625 / 3 + 1.25 / 3)
    # minimax / ns on logit 0: -log σ(0) = log 2 for real, -log(1-σ(0)) = log 2 for fake
    z = torch.zeros(4, dtype=torch.float64)
    assert objectives.d_loss("ns", z, z).item() == pytest.approx(2 * math.log(2))
    assert objectives.g_loss("minimax", z).item() == pytest.approx(-math.log(2))
    assert objectives.g_loss("ns", z).item() == pytest.approx(math.log(2))


def test_minimax_saturates_where_ns_does_not():
    # when D confidently rejects G's samples (f << 0), the minimax gradient vanishes, the ns one does not
    f = torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(objectives.g_loss("minimax", f), f)
    (g_ns,) = torch.autograd.grad(objectives.g_loss("ns", f), f)
    assert abs(g_mm.item()) == pytest.approx(sig(-8.0), rel=1e-9)            # d/df log(1-σ(f)) = -σ(f)
    assert abs(g_ns.item()) == pytest.approx(1 - sig(-8.0), rel=1e-9)        # d/df -log σ(f) = -(1-σ(f))
    assert abs(g_ns.item()) > 1000 * abs(g_mm.item())


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError):
        objectives.d_loss("nope", t(R), t(F_))
    with pytest.raises(ValueError):
        objectives.g_loss("nope", t(F_))


def test_d_output_is_probability_only_for_log_losses():
    x = t([0.0, 2.0])
    assert objectives.d_output("ns", x).tolist() == pytest.approx([0.5, sig(2.0)])
    assert objectives.d_output("minimax", x).tolist() == pytest.approx([0.5, sig(2.0)])
    for kind in ("ls", "wgan", "hinge"):
        assert objectives.d_output(kind, x).tolist() == [0.0, 2.0]


# ---- one-sided label smoothing -----------------------------------------------------------------
def test_one_sided_label_smoothing_targets():
    assert tricks.real_target(0.0) == 1.0
    assert tricks.real_target(0.1) == pytest.approx(0.9)
    assert tricks.real_target(0.25) == pytest.approx(0.75)


@pytest.mark.parametrize("kind", ["minimax", "ns", "ls"])
def test_label_smoothing_changes_only_the_real_target(kind):
    got = objectives.d_loss(kind, t(R), t(F_), real_target=0.9).item()
    assert got == pytest.approx(hand_d_loss(kind, real_target=0.9), abs=1e-12)
    # the fake target stays 0: with no real term the loss equals the unsmoothed fake term
    f_only = objectives.d_loss(kind, t([1e3]) if kind != "ls" else t([0.9]), t(F_), real_target=0.9)
    if kind == "ls":
        expect_fake = mean(0.5 * f ** 2 for f in F_)      # ½(f - 0)², not ½(f - 0.1)²
        assert f_only.item() == pytest.approx(expect_fake, abs=1e-12)
    else:
        # real logit huge: real term = 0.9·softplus(-1e3) + 0.1·softplus(1e3) = 100; fake term = -log(1-σ(f))
        expect_fake = mean(-math.log(1 - sig(f)) for f in F_)
        assert f_only.item() == pytest.approx(0.1 * 1e3 + expect_fake, rel=1e-9)


def test_smoothed_minimax_optimum_is_at_target():
    # ∂/∂r of the smoothed real term is zero where σ(r) = 0.9, i.e. r = log 9
    r = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)
    loss = objectives.d_loss("ns", r, torch.tensor([-50.0], dtype=torch.float64), real_target=0.9)
    (g,) = torch.autograd.grad(loss, r)
    assert abs(g.item()) < 1e-12


# ---- WGAN-GP ---------------------------------------------------------------------------------
class LinearCritic(nn.Module):
    """D(x) = w·vec(x): its input gradient is w everywhere, ‖∇D‖ = ‖w‖. Records what it is called with."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x.flatten(1) @ self.w


def test_gradient_penalty_on_linear_critic_norm_3():
    w = torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64)          # ‖w‖ = 3
    critic = LinearCritic(w)
    real = torch.randn(5, 3, dtype=torch.float64)
    fake = torch.randn(5, 3, dtype=torch.float64)
    gp = objectives.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((3 - 1) ** 2)                 # = 4, whatever α is
    # a different target norm: (3 - 2)² = 1
    assert objectives.gradient_penalty(critic, real, fake, target=2.0).item() == pytest.approx(1.0)


def test_gradient_penalty_with_explicit_alpha_on_quadratic_critic():
    # D(x) = ½‖x‖² -> ∇D(x̂) = x̂, penalty = mean_i (‖x̂_i‖ - 1)², x̂_i = α_i x_i + (1-α_i) x̃_i
    critic = lambda x: 0.5 * x.pow(2).flatten(1).sum(1)              # noqa: E731
    real = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    fake = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    alpha = torch.tensor([0.5, 0.25], dtype=torch.float64)
    # example 0: x̂ = (1.5, 2) -> ‖x̂‖ = 2.5 -> (1.5)² = 2.25
    # example 1: x̂ = (0.25, 1.5) -> ‖x̂‖ = sqrt(0.0625 + 2.25) = sqrt(2.3125)
    n1 = math.sqrt(0.25 ** 2 + 1.5 ** 2)
    expect = ((2.5 - 1) ** 2 + (n1 - 1) ** 2) / 2
    got = objectives.gradient_penalty(critic, real, fake, alpha=alpha)
    assert got.item() == pytest.approx(expect, abs=1e-12)


def test_gradient_penalty_is_differentiable_wrt_critic_weights():
    # the penalty must reach D's weights (create_graph=True): d/dw (‖w‖ - 1)² = 2(‖w‖ - 1) w/‖w‖
    w = torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    critic = lambda x: x @ w                                          # noqa: E731
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    (g,) = torch.autograd.grad(objectives.gradient_penalty(critic, real, fake), w)
    expect = 2 * (3 - 1) * torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64) / 3
    assert torch.allclose(g, expect)


def test_gradient_penalty_draws_alpha_per_example_not_per_pixel():
    # real = ones, fake = zeros: x̂ = α·1 + (1-α)·0 = α, so every pixel of an example shows its own α
    n = 16
    real = torch.ones(n, 3, 4, 4)
    fake = torch.zeros(n, 3, 4, 4)
    critic = LinearCritic(torch.randn(3 * 4 * 4))
    objectives.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    (x_hat,) = critic.seen
    assert x_hat.shape == real.shape
    flat = x_hat.flatten(1)
    # constant within each example ...
    assert torch.equal(flat, flat[:, :1].expand_as(flat))
    # ... different across examples, and inside (0, 1)
    alphas = flat[:, 0]
    assert len(set(alphas.tolist())) == n
    assert bool(((alphas > 0) & (alphas < 1)).all())
    # and it is the generator's first n uniform draws
    expect = torch.rand(n, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(alphas, expect)


def test_gradient_penalty_does_not_backprop_into_the_samples():
    real = torch.randn(4, 2, requires_grad=True)
    fake = torch.randn(4, 2, requires_grad=True)
    w = torch.tensor([3.0, 0.0], requires_grad=True)
    gp = objectives.gradient_penalty(lambda x: x @ w, real, fake)
    gp.backward()
    assert real.grad is None and fake.grad is None and w.grad is not None


# ---- R1 / R2 ---------------------------------------------------------------------------------
def test_zero_centered_penalty_on_sum_of_squares():
    # D(x) = Σ x² -> ∇D = 2x -> ‖∇D‖² = 4‖x‖²
    critic = lambda x: x.pow(2).flatten(1).sum(1)                    # noqa: E731
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0], [0.5, 0.5]], dtype=torch.float64)
    sq = [1 + 4, 9, 0.25 + 0.25]
    expect = mean(4 * s for s in sq)                                  # (20 + 36 + 2) / 3
    assert objectives.zero_centered_penalty(critic, x).item() == pytest.approx(expect)
    assert expect == pytest.approx(58 / 3)


def test_zero_centered_penalty_on_images_and_linear_critic():
    # images: the gradient is flattened per example; linear critic has ‖∇‖² = ‖w‖² = 9
    critic = LinearCritic(torch.tensor([2.0, 1.0, 2.0, 0.0]))
    x = torch.randn(6, 1, 2, 2)
    assert objectives.zero_centered_penalty(critic, x).item() == pytest.approx(9.0)
    critic2 = lambda x: x.pow(2).flatten(1).sum(1)                   # noqa: E731
    expect = (4 * x.pow(2).flatten(1).sum(1)).mean().item()
    assert objectives.zero_centered_penalty(critic2, x).item() == pytest.approx(expect, rel=1e-6)


# ---- feature matching, AC-GAN, VAE terms ------------------------------------------------------
def test_feature_matching_value():
    f_real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])       # mean (2, 3)
    f_fake = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])   # mean (1, 1)
    # ‖(2, 3) - (1, 1)‖² = 1 + 4 = 5
    assert objectives.feature_matching(f_real, f_fake).item() == pytest.approx(5.0)


def test_feature_matching_gradient_reaches_only_fake_features():
    f_real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    f_fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)
    objectives.feature_matching(f_real, f_fake).backward()
    assert f_real.grad is None
    # d/df_fake_i = -2 (m_real - m_fake) / n = -2 · (1, 2) / 2
    assert torch.allclose(f_fake.grad, torch.tensor([[-1.0, -2.0], [-1.0, -2.0]]))


def test_ac_loss_is_cross_entropy_by_hand():
    logits = [[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]
    y = [0, 2]

    def ce(row, k):
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    expect = (ce(logits[0], 0) + ce(logits[1], 2)) / 2
    got = objectives.ac_loss(torch.tensor(logits), torch.tensor(y))
    assert got.item() == pytest.approx(expect, rel=1e-6)
    assert ce(logits[1], 2) == pytest.approx(math.log(3))


def test_kl_normal_by_hand():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]], dtype=torch.float64)
    # example 0 is the prior: KL = 0
    # example 1: ½[(1 + 4 - log 4 - 1) + (4 + 1 - 0 - 1)] = ½[4 - log 4 + 4]
    expect1 = 0.5 * ((1 + 4 - math.log(4) - 1) + (4 + 1 - 0 - 1))
    got = objectives.kl_normal(mu, logvar)
    assert got.shape == (2,)
    assert got[0].item() == pytest.approx(0.0, abs=1e-12)
    assert got[1].item() == pytest.approx(expect1)


def test_recon_loss_mse_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    x_hat = torch.tensor([[[[0.5, 1.0], [-1.0, 0.0]]], [[[1.0, -1.0], [0.0, 0.0]]]])
    got = objectives.recon_loss("mse", x_hat, x)
    assert got.tolist() == pytest.approx([0.25 + 0.25, 1.0 + 1.0])


def test_recon_loss_bce_by_hand():
    # pixels in [-1, 1] map to [0, 1]: x = (1, -1, 0) -> p = (1, 0, 0.5); x̂ = (0, 0, 0) -> p̂ = 0.5
    x = torch.tensor([[1.0, -1.0, 0.0]])
    x_hat = torch.zeros(1, 3)
    # -[p log p̂ + (1-p) log(1-p̂)] = log 2 for every pixel when p̂ = ½
    assert objectives.recon_loss("bce", x_hat, x).item() == pytest.approx(3 * math.log(2), rel=1e-6)
    # x̂ = (0.6, -0.6, 0) -> p̂ = (0.8, 0.2, 0.5): -log 0.8 - log 0.8 + log 2
    x_hat2 = torch.tensor([[0.6, -0.6, 0.0]])
    expect = -math.log(0.8) - math.log(0.8) + math.log(2)
    assert objectives.recon_loss("bce", x_hat2, x).item() == pytest.approx(expect, rel=1e-5)


# ---- the penalties as the training step applies them -------------------------------------------
class _Lin(nn.Module):
    """D(x) = w·x with ‖w‖ = 3: ‖∇D‖ = 3 everywhere."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.0, 1.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


@pytest.mark.parametrize("updates, expect_penalty", [
    ({"objective.gp": 10.0}, 10.0 * (3 - 1) ** 2),                  # λ · (‖∇‖ - 1)² = 40
    ({"objective.r1": 2.0}, 2.0 / 2 * 9),                           # γ/2 · ‖∇‖² on real data = 9
    ({"objective.r2": 0.5}, 0.5 / 2 * 9),                           # γ/2 · ‖∇‖² on generated data
    ({"objective.r1": 2.0, "objective.r2": 0.5}, 9 + 0.5 / 2 * 9),
])
def test_critic_step_adds_the_configured_penalty(updates, expect_penalty):
    from ganae.config import RunConfig
    from ganae.models.common import StepContext, critic_step

    cfg = RunConfig().with_updates(**{"objective.loss": "wgan", **updates})
    d = _Lin()
    opt = torch.optim.SGD(d.parameters(), lr=1e-3)
    real = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    fake = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    ctx = StepContext(0, torch.Generator().manual_seed(0), lambda: (real, None))
    out = critic_step(d, opt, real, fake, cfg, ctx)
    # wgan: mean D(fake) - mean D(real) = (2 + 5)/2 - (2 + 3)/2 = 1
    assert out["penalty"].item() == pytest.approx(expect_penalty, rel=1e-5)
    assert out["loss_d"].item() == pytest.approx(1.0 + expect_penalty, rel=1e-5)

"""Trainer: determinism, partial steps, bounded history, learning, divergence, checkpoint resume."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from ganae import checkpoint
from ganae.config import ConfigWarning, RunConfig
from ganae.trainer import DivergenceError, History, Trainer

SMALL_2D = {"model.g_hidden": 32, "model.d_hidden": 32, "train.batch_size": 64}
DIGITS = {"data.name": "digits", "train.batch_size": 64, "model.channels": 16}


def cfg(**updates) -> RunConfig:
    return RunConfig().with_updates(**{**SMALL_2D, **updates})


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_config_and_seed_give_identical_curves_other_seed_differs():
    a, b = Trainer(cfg()), Trainer(cfg())
    a.step(60)
    b.step(60)
    ha, hb = a.history.arrays(), b.history.arrays()
    assert np.array_equal(ha["loss_d"], hb["loss_d"]) and np.array_equal(ha["loss_g"], hb["loss_g"])
    c = Trainer(cfg(**{"train.seed": 1}))
    c.step(60)
    assert not np.array_equal(ha["loss_d"], c.history.arrays()["loss_d"])


def test_runs_in_parallel_threads_stay_reproducible():
    """Two runs in threads (as in the dashboard) give the same curves as one run alone: private generators."""
    alone = Trainer(cfg(**{"tricks.d_dropout": 0.3}))
    alone.step(80)
    runs = [Trainer(cfg(**{"tricks.d_dropout": 0.3})) for _ in range(2)]
    threads = [threading.Thread(target=r.step, args=(80,)) for r in runs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for r in runs:
        assert np.array_equal(r.history.arrays()["loss_d"], alone.history.arrays()["loss_d"])


def test_step_d_only_changes_d_and_step_g_only_changes_g():
    t = Trainer(cfg())
    g0, d0 = params(t.model.g), params(t.model.d)
    m = t.step(3, part="d")
    assert same(params(t.model.g), g0) and not same(params(t.model.d), d0)
    assert "loss_d" in m and "loss_g" not in m
    g1, d1 = params(t.model.g), params(t.model.d)
    t.step(3, part="g")
    assert same(params(t.model.d), d1) and not same(params(t.model.g), g1)
    assert t.step_count == 6
    with pytest.raises(ValueError, match="part must be one of"):
        t.step(1, part="x")


def test_n_critic_does_that_many_d_updates_per_iteration():
    t = Trainer(cfg(**{"optim.n_critic": 3, "optim.n_gen": 2}))
    t.step(4)
    opt_d, opt_g = t.model.optimizers["d"], t.model.optimizers["g"]
    step_of = lambda opt: int(next(iter(opt.state.values()))["step"])
    assert step_of(opt_d) == 12 and step_of(opt_g) == 8


def test_history_is_bounded_and_decimates_evenly():
    h = History(cap=16)
    for s in range(1, 1001):
        h.record(s, {"x": float(s)})
    assert len(h) <= 16
    steps = np.array(h.steps)
    assert steps[-1] >= 1000 - h.stride and np.all(np.diff(steps) == h.stride)
    assert np.array_equal(np.array(h.values["x"]), steps.astype(float))


def test_history_memory_does_not_grow_with_steps():
    t = Trainer(cfg(**{"train.history": 32}))
    t.step(300)
    assert len(t.history) <= 32
    assert t.history.arrays()["step"][-1] > 250


def test_history_columns_align_when_parts_differ():
    t = Trainer(cfg())
    t.step(2, part="d")
    t.step(1, part="g")
    h = t.history.arrays()
    assert len(h["loss_d"]) == len(h["loss_g"]) == 3
    assert math.isnan(h["loss_g"][0]) and math.isnan(h["loss_d"][2])


def test_snapshot_is_immutable_and_holds_what_the_playground_draws():
    t = Trainer(cfg())
    t.step(5)
    s = t.snapshot()
    assert s.step == 5 and s.kind == "points" and s.samples.shape == (1000, 2)
    assert s.visuals["heatmap"].shape == (60, 60) and s.visuals["manifold"].shape == (25, 25, 2)
    assert s.visuals["arrows"].shape[1] == 4
    with pytest.raises(ValueError):
        s.samples[0, 0] = 1.0
    t.step(5)
    assert s.step == 5 and len(s.history["step"]) == 5      # the old snapshot did not move
    # D's heatmap is D's output: for the ns loss a probability
    assert 0.0 <= s.visuals["heatmap"].min() <= s.visuals["heatmap"].max() <= 1.0


def test_plane_region_holds_the_points_with_a_margin_but_at_most_one_span_more():
    from ganae.trainer import plane_region
    b = (-1.0, 1.0, -2.0, 2.0)                                   # spans 2 and 4: the margin is 5 % of 4
    assert plane_region(b) == b and plane_region(b, np.array([[0.5, 0.5]])) == b
    assert plane_region(b, np.array([[2.5, 0.0]]), None) == pytest.approx((-1.0, 2.7, -2.0, 2.0))
    assert plane_region(b, torch.tensor([[0.0, -2.5]]), np.array([[-1.5, np.nan]])) == \
        pytest.approx((-1.0, 1.0, -2.7, 2.0))                    # NaN rows are left out; tensors welcome
    assert plane_region(b, np.array([[100.0, -100.0]])) == pytest.approx((-1.0, 3.0, -6.0, 2.0))  # one span at most


def test_heatmap_covers_generated_points_off_the_data_and_follows_them():
    """Issue #20.2: D's heatmap covered the data's box only; G's points off it sat on white."""
    t = Trainer(cfg())
    x0, x1, y0, y1 = t.data.bounds
    v = t.visuals_2d()
    assert (v["heat_x"][0], v["heat_x"][-1], v["heat_y"][0], v["heat_y"][-1]) == pytest.approx((x0, x1, y0, y1))
    last = t.model.g.net[-1]
    with torch.no_grad():
        last.bias[0] += 3.0                                      # every generated point moves 3 to the right
    s = t.snapshot()
    fake = s.samples
    assert fake[:, 0].min() > x1                                 # all of them off the data's box
    hx, hy = s.visuals["heat_x"], s.visuals["heat_y"]
    assert hx[0] == pytest.approx(x0) and hx[-1] >= fake[:, 0].max() and hy[0] <= fake[:, 1].min()
    assert hy[-1] >= fake[:, 1].max() and hx[-1] <= x1 + (x1 - x0) + 1e-6
    # the grid is where D was evaluated: its last column is D's verdict at x = hx[-1]
    from ganae.objectives import d_output
    t.model.d.eval()
    with torch.no_grad():
        col = d_output("ns", t.model.d(torch.tensor(np.stack([np.full_like(hy, hx[-1]), hy], 1)))).reshape(-1)
    np.testing.assert_allclose(s.visuals["heatmap"][:, -1], col.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        last.bias[0] -= 3.0                                      # back on the data: the grid shrinks again
    v = t.visuals_2d()
    assert v["heat_x"][-1] == pytest.approx(x1) and v["heat_y"][-1] == pytest.approx(y1)


def test_gradient_arrows_point_where_the_generator_loss_falls():
    t = Trainer(cfg())
    t.step(100)
    snap = t.snapshot()
    arrows = snap.visuals["arrows"]
    # they start at the samples drawn (not at a second, separately computed copy of them)
    np.testing.assert_array_equal(arrows[:, :2], snap.samples[:len(arrows)])
    pts, dirs = torch.tensor(arrows[:, :2]), torch.tensor(arrows[:, 2:])
    from ganae.objectives import g_loss
    with torch.no_grad():
        before = g_loss("ns", t.model.d(pts.float()))
        after = g_loss("ns", t.model.d((pts + 1e-3 * dirs / (dirs.norm(dim=1, keepdim=True) + 1e-12)).float()))
    assert after < before


@pytest.mark.parametrize("family", ["ae", "dae", "vae", "aae", "vaegan"])
def test_every_autoencoder_family_learns_digits(family):
    t = Trainer(RunConfig().with_updates(**{**DIGITS, "model.family": family, "model.latent_dim": 8,
                                            "optim.g_lr": 2e-3, "optim.beta1": 0.9}))
    x = t.data.x_test[:500]

    def test_mse() -> float:
        t.model.eval()
        with torch.no_grad():
            mse = float((t.model.reconstruct(x) - x).pow(2).mean())
        t.model.train()
        return mse

    before = test_mse()
    t.step(300)
    after = test_mse()
    assert after < 0.5 * before, (family, before, after)


def test_gan_on_digits_learns_the_pixel_statistics():
    """After a short run the generated digits' mean image is far closer to the data's than at the start."""
    t = Trainer(RunConfig().with_updates(**{**DIGITS, "model.latent_dim": 16, "optim.g_lr": 2e-4,
                                            "optim.d_lr": 2e-4}))
    real_mean = t.data.x_train.mean(0)
    err = lambda: float((t.samples().mean(0) - real_mean).pow(2).mean())
    before = err()
    t.step(300)
    assert err() < 0.4 * before


def test_divergence_raises_with_a_sentence_after_recording():
    with pytest.warns(ConfigWarning, match="Lipschitz"):
        t = Trainer(cfg(**{"optim.d_lr": 10.0, "optim.g_lr": 10.0, "optim.g_opt": "sgd", "optim.d_opt": "sgd",
                           "objective.loss": "wgan"}))
    with pytest.raises(DivergenceError) as e:
        for _ in range(200):
            t.step(10)
    assert "diverged at step" in str(e.value) and "learning rate" in str(e.value)
    assert len(t.history) == t.step_count


def test_checkpoint_resume_continues_exactly(tmp_path):
    c = cfg(**{"tricks.ema": 0.99, "tricks.d_dropout": 0.2, "optim.lr_decay": "linear", "train.steps": 400})
    a = Trainer(c)
    a.step(40)
    path = a.save(tmp_path / "run.pt", note="test")
    a.step(40)
    b = Trainer.load(path)
    assert b.step_count == 40 and len(b.history) == 40
    b.step(40)
    ha, hb = a.history.arrays(), b.history.arrays()
    assert np.array_equal(ha["loss_d"], hb["loss_d"]) and np.array_equal(ha["loss_g"], hb["loss_g"])
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.lrs == b.lrs


def test_checkpoint_of_another_architecture_is_refused_with_a_sentence(tmp_path):
    a = Trainer(cfg())
    payload = a.payload()
    payload["config"]["model"]["g_hidden"] = 48      # the weights no longer fit the described model
    with pytest.raises(checkpoint.CheckpointError, match="do not fit"):
        Trainer.from_payload(payload)

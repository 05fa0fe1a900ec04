"""The shipped digits classifier gives image metrics that order known distributions correctly (README table)."""
from __future__ import annotations

import pytest
import torch

from ganae import data, features
from ganae.config import DataConfig


@pytest.fixture(scope="module")
def setup():
    net = features.load_classifier("digits")
    assert net is not None, "checkpoints/classifier-digits.pt is missing: python -m ganae classifier --data digits"
    return net, data.load(DataConfig(name="digits"))


def calibration_sets(d: data.Dataset) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = len(d.x_test)
    tr = d.x_train
    return {
        "real held-out": d.x_test,
        "real + small noise": (tr[:n] + 0.1 * torch.randn(tr[:n].shape, generator=g)).clamp(-1, 1),
        "only digits 0-4": tr[d.y_train < 5][:n],
        "a single digit": tr[d.y_train == 3][:n],
        "uniform noise": torch.rand((n, 1, 8, 8), generator=g) * 2 - 1,
    }


def test_classifier_is_accurate_on_held_out_digits(setup):
    net, d = setup
    with torch.no_grad():
        acc = float((net(d.x_test).argmax(1) == d.y_test).float().mean())
    assert acc > 0.95


def test_calibration_order_and_separation(setup):
    net, d = setup
    res = {k: features.image_metrics(net, x, d.x_train) for k, x in calibration_sets(d).items()}
    fd = [res[k]["fd"] for k in res]
    assert fd == sorted(fd), fd                                  # the order the README table shows
    assert res["real held-out"]["fd"] < 1.5
    assert res["only digits 0-4"]["fd"] > 4 * res["real + small noise"]["fd"]    # collapses clearly separated
    assert res["a single digit"]["fd"] > 4 * res["only digits 0-4"]["fd"]
    assert res["real held-out"]["recall"] > 0.9 and res["a single digit"]["recall"] < 0.3
    assert res["uniform noise"]["precision"] < 0.05
    # confident class coverage: 10, 10, 5, 1, and uniform noise covers no class (argmax alone would say ~10)
    assert [res[k]["classes"] for k in res] == [10, 10, 5, 1, 0]
    noise_argmax = net(calibration_sets(d)["uniform noise"]).argmax(1).unique().numel()
    assert noise_argmax >= 3


def test_missing_classifier_means_no_image_metrics(monkeypatch, tmp_path):
    monkeypatch.setattr(features, "ROOT", tmp_path)
    assert features.load_classifier("digits") is None

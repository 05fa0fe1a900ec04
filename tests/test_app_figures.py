"""Figure builders of the dashboard: pure functions, checked without a browser."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dashboard import figures

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _validate(monkeypatch):
    monkeypatch.setattr(figures, "VALIDATE", True)     # plotly checks every property of every figure here


@pytest.fixture(scope="module")
def snap():
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    t = Trainer(RunConfig().with_updates(**{"data.n": 1000, "train.batch_size": 32}))
    t.step(25)
    return t.snapshot(), t.data.x_train[:300].numpy()


def trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


def test_scatter_holds_the_snapshot_points(snap):
    s, real = snap
    v = s.visuals
    fig = figures.points_figure(real, s.samples, heat_x=v["heat_x"], heat_y=v["heat_y"], heatmap=v["heatmap"],
                                manifold=v["manifold"], arrows=v["arrows"])
    gen = trace(fig, "generated")
    np.testing.assert_allclose(np.asarray(gen.x), s.samples[:, 0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gen.y), s.samples[:, 1], rtol=1e-6)
    assert len(trace(fig, "real").x) == len(real)
    heat = trace(fig, "D(x)")
    assert np.asarray(heat.z).shape == (len(v["heat_y"]), len(v["heat_x"]))
    assert heat.zmin == 0 and heat.zmax == 1                      # a probability for the ns loss
    k = v["manifold"].shape[0]
    assert len(trace(fig, "G manifold").x) == 2 * k * (k + 1)     # k rows + k columns, each with a gap
    assert len(trace(fig, "G gradient").x) == 7 * len(v["arrows"])
    # the axes span the heatmap's grid (laid over the generated points too) and keep the plane square
    assert fig.layout.xaxis.range == (float(v["heat_x"][0]), float(v["heat_x"][-1]))
    assert fig.layout.yaxis.range == (float(v["heat_y"][0]), float(v["heat_y"][-1]))
    assert fig.layout.yaxis.scaleanchor == "x"


def test_plane_spans_exactly_the_heatmap_grid():
    """Issue #20.2: the axes were widened for stray points past the heatmap, which left them on white; the core
    now lays the grid over them (Trainer.visuals_2d), and the plane shows that grid and no more."""
    heat_x, heat_y = np.linspace(-1.0, 3.0, 5), np.linspace(-2.0, 1.0, 4)
    z = np.full((4, 5), 0.5)
    fig = figures.points_figure(None, np.array([[2.95, 0.0]]), heat_x=heat_x, heat_y=heat_y, heatmap=z)
    assert fig.layout.xaxis.range == (-1.0, 3.0) and fig.layout.yaxis.range == (-2.0, 1.0)
    fig = figures.points_figure(np.array([[0.0, 0.0], [1.0, 1.0]]), None)   # no grid: the points' box
    assert fig.layout.xaxis.range == pytest.approx((-0.15, 1.15))


def test_layers_can_be_left_out(snap):
    s, real = snap
    fig = figures.points_figure(real, None)
    assert [t.name for t in fig.data] == ["real"]


def test_arrows_point_along_the_gradient():
    seg = figures.arrow_segments(np.array([[0.0, 0.0, 2.0, 0.0], [1.0, 1.0, 0.0, -1.0]]), length=0.5)
    assert seg.shape == (14, 2)
    np.testing.assert_allclose(seg[1], [0.5, 0.0])                # the longest arrow is `length` long
    np.testing.assert_allclose(seg[8], [1.0, 0.75])               # the other in proportion, pointing down
    assert np.isnan(seg[2]).all() and np.isnan(seg[6]).all()
    assert len(figures.arrow_segments(np.zeros((3, 4)), 1.0)) == 0   # no gradient, no arrows
    bad = np.array([[0.0, 0.0, math.nan, 1.0]])
    assert len(figures.arrow_segments(bad, 1.0)) == 0


def test_curves_are_downsampled_and_keep_the_ends():
    n = 5000
    hist = {"step": np.arange(1, n + 1), "loss_d": np.linspace(1, 2, n), "loss_g": np.linspace(3, 4, n)}
    fig = figures.loss_figure(hist)
    d = trace(fig, "D loss")
    assert len(d.x) <= figures.MAX_CURVE_POINTS
    assert d.x[0] == 1 and d.x[-1] == n and d.y[-1] == pytest.approx(2.0)


def test_empty_history_gives_a_sentence():
    fig = figures.loss_figure({"step": np.zeros(0)})
    assert not fig.data and "Press Train" in fig.layout.annotations[0].text


def test_d_outputs_grad_norms_and_quality(snap):
    s, _ = snap
    fig = figures.d_output_figure(s.history)
    assert len(trace(fig, "D(x) real").x) == len(s.history["step"])
    assert figures.d_output_figure(s.history, probability=False).layout.yaxis.range is None
    assert figures.grad_norm_figure(s.history).layout.yaxis.type == "log"
    evals = {"step": np.array([0, 100]), "modes": np.array([1.0, 5.0]), "hq": np.array([0.1, 0.5]),
             "kl": np.array([3.0, 1.0]), "js": np.array([0.6, 0.2])}
    q = figures.quality_figure(evals, n_modes=8)
    assert list(trace(q, "HQ %").y) == pytest.approx([10.0, 50.0])
    assert trace(q, "HQ %").yaxis == "y3" and q.layout.yaxis3.overlaying == "y"
    assert q.layout.yaxis.range == (0, 8.5)
    assert {t.name for t in q.data} == {"modes", "HQ %", "KL", "JS"}


def test_model_diagram_shows_the_numbers():
    fig = figures.model_diagram("N(0, I), dim 2", "2 × 64, relu", "2 × 64, leaky_relu", "ring",
                                {"d_real": 0.51234, "d_fake": 0.4, "loss_d": 1.38, "loss_g": math.nan}, step=1234)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "D(x) = 0.512" in texts and "D(G(z)) = 0.4" in texts and "step 1,234" in texts
    assert "L<sub>G</sub> = –" in texts                               # a missing number is a dash
    assert "Generator G" in texts and "Discriminator D" in texts


def _one_live_chart():
    from dashboard import figures, livechart
    livechart.live_chart(figures.empty_figure("nothing yet"), key="chart")


def test_live_chart_falls_back_to_plotly_chart_without_static_serving(monkeypatch):
    from streamlit.testing.v1 import AppTest
    from dashboard import livechart
    monkeypatch.setattr(livechart, "_static_ready", lambda: False)
    at = AppTest.from_function(_one_live_chart).run(timeout=30)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1


# ---- what a snapshot has already produced ------------------------------------------------------------------------
class _Snap:                  # stands in for ganae.runner.Snapshot: an immutable object per published state
    pass


def test_memo_reuses_a_snapshots_value_and_nothing_else(monkeypatch):
    import gc
    from dashboard import livechart
    monkeypatch.setattr(livechart, "_memo", type(livechart._memo)())
    monkeypatch.setattr(livechart, "_memo_bytes", 0)
    built = []

    def build(tag):
        def f():
            built.append(tag)
            return f"json of {tag}"
        return f

    a, b = _Snap(), _Snap()
    assert livechart.memo("chart:x", a, ("real",), build("a")) == "json of a"
    assert livechart.memo("chart:x", a, ("real",), build("a again")) == "json of a"       # same snapshot: reused
    assert livechart.memo("chart:x", a, ("real", "generated"), build("a, 2 layers")) == "json of a, 2 layers"
    assert livechart.memo("chart:y", a, ("real",), build("other chart")) == "json of other chart"
    assert livechart.memo("chart:x", b, ("real",), build("b")) == "json of b"             # another snapshot
    assert built == ["a", "a, 2 layers", "other chart", "b"]
    # a snapshot that is gone is never mistaken for a new object that happens to get its id
    old_id = id(a)
    assert len(livechart._memo) == 4
    del a
    gc.collect()
    assert len(livechart._memo) == 1 and livechart._memo_bytes == len("json of b")   # a's entries left with it
    for _ in range(200):
        c = _Snap()
        if id(c) == old_id:
            break
    assert livechart.memo("chart:x", c, ("real",), build("c")) == "json of c"
    assert built[-1] == "c"


def test_memo_is_bounded_in_bytes(monkeypatch):
    from dashboard import livechart
    monkeypatch.setattr(livechart, "_memo", type(livechart._memo)())
    monkeypatch.setattr(livechart, "_memo_bytes", 0)
    monkeypatch.setattr(livechart, "MEMO_MAX_BYTES", 1000)
    snaps = [_Snap() for _ in range(5)]
    for i, s in enumerate(snaps):
        livechart.memo("chart:x", s, (), lambda: "x" * 300)
    assert livechart._memo_bytes <= 1000 and len(livechart._memo) == 3       # the two oldest went
    rebuilt = []
    livechart.memo("chart:x", snaps[0], (), lambda: rebuilt.append(1) or "x" * 300)
    livechart.memo("chart:x", snaps[4], (), lambda: rebuilt.append(4) or "x" * 300)
    assert rebuilt == [1]

"""Figures for the Arena and the Dirac-GAN page: pure functions, checked without a browser."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest

from dashboard import figures_compare as fc
from ganae import dirac


@dataclass
class FakeRun:
    variant: str
    seed: int
    history: dict
    evals: dict


def _hist(n: int, offset: float = 0.0) -> dict:
    s = np.arange(1, n + 1)
    return {"step": s, "loss_d": 1.3 + 0.1 * np.sin(s / 5) + offset, "loss_g": 0.8 + 0.1 * np.cos(s / 5)}


RUNS = [FakeRun("base", 0, _hist(50), {"step": np.array([25, 50]), "modes": np.array([3.0, 5.0])}),
        FakeRun("base", 1, _hist(50, 0.05), {"step": np.array([25, 50]), "modes": np.array([2.0, 4.0])}),
        FakeRun("R1", 0, _hist(50, 0.2), {"step": np.array([25, 50]), "modes": np.array([6.0, 8.0])}),
        FakeRun("R1", 1, _hist(50, 0.1), {"step": np.array([25, 50]), "modes": np.array([7.0, 8.0])})]
VARIANTS = ["base", "R1"]


def test_loss_multiples_one_panel_per_variant_on_shared_axes():
    fig = fc.loss_multiples(RUNS, VARIANTS)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["<b>base</b>", "<b>R1</b>"]
    assert len(fig.data) == 8                                   # 2 variants × 2 seeds × (D, G)
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert sum(bool(t.showlegend) for t in fig.data) == 2       # one legend entry for D, one for G
    lo, hi = fig.layout.yaxis.range
    assert lo < 0.7 and hi > 1.6                                 # every curve inside the shared range
    first = [t for t in fig.data if t.xaxis == "x" and t.name == "D loss"]
    assert [t.opacity for t in first] == [1.0, 0.45]            # other seeds drawn fainter


def test_loss_multiples_empty_and_autoencoder_loss():
    empty = fc.loss_multiples([], VARIANTS)
    assert not empty.data and "Start" in empty.layout.annotations[0].text
    ae = [FakeRun("base", 0, {"step": np.arange(10), "loss": np.linspace(1, 0, 10)}, {})]
    fig = fc.loss_multiples(ae, ["base"])
    assert [t.name for t in fig.data] == ["loss"]


def test_robust_range_ignores_a_spike():
    v = np.concatenate([np.random.default_rng(0).normal(1, 0.1, 500), [1e6]])
    lo, hi = fc.robust_range([v])
    assert hi < 5 and lo > 0
    assert fc.robust_range([np.array([np.nan])]) is None
    assert fc.robust_range([np.ones(5)]) == pytest.approx([0.42, 1.58])


def test_overlay_colours_per_variant_and_evals():
    fig = fc.overlay(RUNS, VARIANTS, "loss_d", "D loss")
    colors = fc.variant_colors(VARIANTS)
    assert [t.line.color for t in fig.data] == [colors["base"]] * 2 + [colors["R1"]] * 2
    assert [t.name for t in fig.data if t.showlegend] == ["base", "R1"]
    ev = fc.overlay(RUNS, VARIANTS, "modes", "modes", source="evals")
    assert ev.data[0].mode == "lines+markers" and list(ev.data[2].y) == [6.0, 8.0]
    none = fc.overlay(RUNS, VARIANTS, "fd", "FD", source="evals")
    assert not none.data and "FD" in none.layout.annotations[0].text


def test_sample_panels_points_and_images():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 2))
    fig = fc.sample_panels("points", {"base": rng.normal(size=(100, 2)), "R1": None}, VARIANTS, real)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("real", "x"), ("generated", "x"), ("real", "x2")]
    assert any("nothing to draw" in a.text for a in fig.layout.annotations)
    assert fig.layout.yaxis.scaleanchor == "x"
    many = fc.sample_panels("points", {"base": rng.normal(size=(1000, 2)), "R1": rng.normal(size=(1000, 2))},
                            VARIANTS, rng.normal(size=(1000, 2)))      # a live frame draws a subset of each
    assert [len(t.x) for t in many.data] == [fc.REAL_SHOWN, fc.FAKE_SHOWN] * 2 and fc.FAKE_SHOWN <= 500
    imgs = rng.uniform(-1, 1, size=(16, 1, 8, 8))
    fig = fc.sample_panels("images", {"base": imgs, "R1": imgs}, VARIANTS)
    assert [t.type for t in fig.data] == ["image", "image"]
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2 * 9 + 1, 8 * 9 + 1, 3)                  # 16 images in 2 rows of 8, 1 px padding
    assert fc.sample_panels("points", {}, VARIANTS).layout.annotations[0].text.startswith("Samples appear")


def test_image_grid_maps_minus_one_one_to_bytes():
    g = fc.image_grid(np.stack([-np.ones((1, 2, 2)), np.ones((1, 2, 2))]), nrow=2, pad=1)
    assert g.dtype == np.uint8 and g.shape == (4, 7, 3)
    assert g[1, 1, 0] == 0 and g[1, 4, 0] == 255 and g[0, 0, 0] == 255


ROWS = [{"variant": "base", "n": 3, "diverged": 0, "modes": 5.0, "modes_sd": 1.0, "hq": 0.5, "hq_sd": 0.1,
         "period": math.nan, "period_sd": 0.0, "ms_per_step": 2.0, "ms_per_step_sd": 0.1},
        {"variant": "R1", "n": 3, "diverged": 1, "modes": 8.0, "modes_sd": 0.0, "hq": 0.8, "hq_sd": 0.05,
         "period": 20.0, "period_sd": 2.0, "ms_per_step": 3.0, "ms_per_step_sd": 0.2}]
WINNERS = {"modes": "R1", "hq": "R1", "ms_per_step": "base"}


def test_metric_table_mean_sd_cells_and_winners():
    frame, win = fc.metric_frame(ROWS, WINNERS)
    assert list(frame.index) == ["base", "R1"]
    assert list(frame.columns) == ["modes", "HQ %", "osc. period", "ms / step", "runs"]
    assert frame.loc["base", "modes"] == "5 ± 1" and frame.loc["base", "HQ %"] == "50 ± 10"
    assert frame.loc["base", "osc. period"] == "–"
    assert frame.loc["R1", "runs"] == "3 (1 diverged)"
    assert win.loc["R1", "modes"] and not win.loc["base", "modes"] and win.loc["base", "ms / step"]
    html = fc.styled_metric_table(ROWS, WINNERS).to_html()
    green = re.search(r"((?:#T_\w+_row\d_col\d,? ?)+) \{\s*background-color: #d9f0d3", html)
    assert green and {c for c in re.findall(r"row\d_col\d", green.group(1))} == {"row1_col0", "row1_col1",
                                                                                   "row0_col3"}
    assert "#b2182b" in html
    assert fc.cell({"n": 1, "modes": 5.0, "modes_sd": 0.0}, "modes") == "5"      # one seed: no ± shown
    assert fc.wins_text(WINNERS, ["base", "R1"]) == {"base": ["ms / step"], "R1": ["modes", "HQ %"]}


def test_quiver_segments_are_bounded_by_the_cell():
    g = np.linspace(-1, 1, 5)
    TH, PS = np.meshgrid(g, g)
    U, V = dirac.vector_field("gan", TH, PS)
    xs, ys = fc.quiver_segments(TH, PS, U, V, cell=0.5)
    assert len(xs) == 3 * 25 and np.isnan(xs[2::3]).all()
    lengths = np.hypot(xs[1::3] - xs[0::3], ys[1::3] - ys[0::3])
    assert lengths.max() == pytest.approx(0.45) and (lengths >= 0).all()
    zero = fc.quiver_segments(TH, PS, 0 * U, 0 * V, 0.5)
    assert len(zero[0]) == 0


def test_dirac_panels_and_distance():
    g = np.linspace(-2, 2, 7)
    TH, PS = np.meshgrid(g, g)
    panels, trajs = [], {}
    for m in ("gan", "gp-zero"):
        traj = dirac.trajectory(m, 1.0, 1.0, 200, 0.1)
        trajs[m] = traj
        panels.append({"method": m, "title": m, "grid": (TH, PS, *dirac.vector_field(m, TH, PS)), "traj": traj})
    fig = fc.dirac_panels(panels, lim=2.0)
    assert [a.text for a in fig.layout.annotations] == ["gan", "gp-zero"]
    lines = [t for t in fig.data if t.name in ("gan", "gp-zero")]
    assert [t.line.color for t in lines] == [fc.METHOD_COLORS["gan"], fc.METHOD_COLORS["gp-zero"]]
    assert list(fig.layout.xaxis2.range) == [-2.0, 2.0] and fig.layout.yaxis2.scaleanchor == "x2"
    assert sum(t.name == "equilibrium" for t in fig.data) == 2
    field = [sh for sh in fig.layout.shapes if sh.name == "field"]        # one SVG path per panel, no markers
    assert [(sh.type, sh.xref, sh.yref) for sh in field] == [("path", "x", "y"), ("path", "x2", "y2")]
    assert field[0].path.count("M") == 2 * 49                            # 7 x 7 arrows: shaft+barb, other barb
    assert not any(t.name == "field" for t in fig.data)
    d = fc.dirac_distance(trajs, h=0.1)
    assert d.layout.yaxis.type == "log" and [t.name for t in d.data] == ["gan", "gp-zero"]
    r_gan = np.asarray(d.data[0].y)
    assert r_gan[-1] > r_gan[0]                                   # simultaneous GAN spirals out
    assert min(np.asarray(d.data[1].y)) >= 1e-8
    assert not fc.dirac_panels([], 1.0).data


def test_arrow_barbs_put_a_symmetric_head_at_each_arrow_end():
    xs, ys = fc.arrow_barbs(np.array([0.0, 1.0, np.nan]), np.array([0.0, 0.0, np.nan]), head=0.5, angle_deg=30)
    assert len(xs) == 7 and np.isnan(xs[3]) and np.isnan(xs[6])
    np.testing.assert_allclose([xs[0], xs[1], xs[4]], [0.0, 1.0, 1.0])
    # barbs from the tip (1, 0) back at ±30° with half the length: (1 - 0.5 cos 30°, ∓0.5 sin 30°)
    np.testing.assert_allclose([xs[2], ys[2]], [1 - 0.5 * np.cos(np.pi / 6), -0.25], atol=1e-12)
    np.testing.assert_allclose([xs[5], ys[5]], [1 - 0.5 * np.cos(np.pi / 6), 0.25], atol=1e-12)


def test_svg_path_starts_a_subpath_after_each_gap():
    xs = np.array([0.0, 1.0, 2.0, np.nan, 3.0, 4.5, np.nan])
    ys = np.array([0.0, -1.0, 0.25, np.nan, 3.0, 1e-5, np.nan])
    assert fc.svg_path(xs, ys) == "M0,0L1,-1L2,0.25M3,3L4.5,1e-05"
    assert fc.svg_path(np.array([np.nan]), np.array([np.nan])) == ""


def test_decisive_winners_drop_ties_and_seed_noise():
    rows = [{"variant": "a", "n": 3, "kl": 1.00, "kl_sd": 0.2, "js": 0.500, "js_sd": 0.001, "fd": 10.0, "fd_sd": 0.0},
            {"variant": "b", "n": 3, "kl": 1.10, "kl_sd": 0.3, "js": 0.400, "js_sd": 0.001, "fd": 10.05, "fd_sd": 0.0}]
    winners = {"kl": "a", "js": "b", "fd": "a"}
    assert fc.decisive_winners(rows, winners) == {"js": "b"}      # kl: within the spread; fd: within 1 %
    one = [dict(r, n=1) for r in rows]
    assert fc.decisive_winners(one, winners) == {"kl": "a", "js": "b"}


def test_a_variant_name_is_text_in_every_plotly_label():
    """Plotly reads <a href>, <b>, <span> in names and annotations: a variant named as a link was a live link."""
    from types import SimpleNamespace
    evil = '<a href="https://evil.example">x</a>'
    run = SimpleNamespace(variant=evil, seed=0, history={"step": np.arange(5.0), "loss_d": np.ones(5),
                                                          "loss_g": np.ones(5)}, evals={})
    figs = [fc.loss_multiples([run], [evil]), fc.overlay([run], [evil], "loss_d", "D loss"),
            fc.sample_panels("points", {evil: np.zeros((4, 2))}, [evil], np.zeros((4, 2)), captions={evil: evil})]
    for fig in figs:
        labels = [t.name or "" for t in fig.data] + [t.hovertemplate or "" for t in fig.data
                                                       if hasattr(t, "hovertemplate")] + \
                 [a.text or "" for a in fig.layout.annotations]
        assert not any("<a " in s for s in labels), labels
        assert any("&lt;a href" in s for s in labels)

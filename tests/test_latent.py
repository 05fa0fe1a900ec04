"""Latent-space tools: exact endpoints, slerp keeps norms, traversal shapes, PCA projection and lifting."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganae import latent


def test_lerp_and_slerp_endpoints_are_exact():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    for method in ("lerp", "slerp"):
        p = latent.path(a, b, 7, method)
        assert p.shape == (7, 16)
        np.testing.assert_allclose(p[0], a, atol=1e-12)
        np.testing.assert_allclose(p[-1], b, atol=1e-12)


def test_slerp_keeps_norms_where_lerp_shrinks_them():
    a = np.array([3.0, 0.0, 0.0])
    b = np.array([0.0, 3.0, 0.0])
    s = latent.path(a, b, 11, "slerp")
    l = latent.path(a, b, 11, "lerp")
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 3.0, atol=1e-9)
    assert np.linalg.norm(l[5]) == pytest.approx(3.0 / np.sqrt(2))          # the midpoint of a chord
    # slerp moves along the arc at constant angular speed: 90° / 10 steps
    ang = np.degrees(np.arctan2(s[:, 1], s[:, 0]))
    np.testing.assert_allclose(np.diff(ang), 9.0, atol=1e-9)


def test_slerp_of_unequal_norms_interpolates_the_norm_and_handles_parallel_vectors():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    mid = latent.slerp(a, b, 0.5)
    assert 1.0 < np.linalg.norm(mid) < 2.0
    np.testing.assert_allclose(latent.slerp(a, 2 * a, 0.5), 1.5 * a)           # parallel: lerp


def test_torch_in_torch_out():
    a, b = torch.zeros(4), torch.ones(4)
    p = latent.path(a, b, 3, "lerp")
    assert isinstance(p, torch.Tensor) and p.dtype == torch.float32
    assert torch.allclose(p[1], torch.full((4,), 0.5))


def test_traversal_shapes_and_values():
    z0 = np.arange(5.0)
    vals = np.linspace(-2, 2, 9)
    t = latent.traversal(z0, 3, vals)
    assert t.shape == (9, 5)
    np.testing.assert_allclose(t[:, 3], vals)
    np.testing.assert_allclose(np.delete(t, 3, axis=1), np.tile(np.delete(z0, 3), (9, 1)))
    g = latent.traversal_grid(z0, vals, dims=[0, 2])
    assert g.shape == (18, 5)
    np.testing.assert_allclose(g[9:, 2], vals)
    with pytest.raises(ValueError, match="does not exist"):
        latent.traversal(z0, 5, vals)


def test_grid_2d_is_row_major_from_the_top():
    g = latent.grid_2d(-1, 1, 3)
    assert g.shape == (9, 2)
    np.testing.assert_allclose(g[0], [-1, 1])
    np.testing.assert_allclose(g[2], [1, 1])
    np.testing.assert_allclose(g[-1], [1, -1])


def test_pca_projects_onto_the_main_plane_and_lifts_back():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(500, 2)) * [5.0, 2.0]
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T        # 2 orthonormal directions in 6-d
    codes = plane @ basis + 0.01 * rng.normal(size=(500, 6)) + 3.0
    p = latent.PCA2(codes)
    assert p.explained.sum() > 0.99
    proj = p.project(codes)
    assert proj[:, 0].std() == pytest.approx(5.0, rel=0.1) and proj[:, 1].std() == pytest.approx(2.0, rel=0.1)
    np.testing.assert_allclose(p.lift(proj), codes, atol=0.05)


def test_pca_of_a_2d_latent_is_the_identity():
    codes = np.random.default_rng(2).normal(size=(50, 2))
    p = latent.PCA2(codes)
    np.testing.assert_allclose(p.project(codes), codes)
    np.testing.assert_allclose(p.lift(codes[:3]), codes[:3])


def test_factor_correlation_finds_which_dimension_follows_which_factor():
    rng = np.random.default_rng(3)
    f = np.stack([rng.uniform(size=400), rng.uniform(0, 2 * np.pi, size=400)], axis=1)
    codes = np.stack([rng.normal(size=400), 2 * f[:, 0] + 0.01 * rng.normal(size=400), np.cos(f[:, 1])], axis=1)
    c = latent.factor_correlation(codes, f, circular=(1,))
    assert c.shape == (3, 2)
    assert c[1, 0] > 0.99 and c[2, 1] > 0.99 and c[0].max() < 0.2


def test_slerp_stays_bounded_for_nearly_opposite_vectors_of_unequal_length():
    ang = np.radians(176.0)
    a = 1.6 * np.array([1.0, 0.0])
    b = 2.3 * np.array([np.cos(ang), np.sin(ang)])
    p = latent.path(a, b, 41, "slerp")
    norms = np.linalg.norm(p, axis=1)
    assert norms.max() <= 2.3 + 1e-9 and norms.min() >= 1.6 - 1e-9       # lengths go linearly 1.6 -> 2.3
    arc = np.linalg.norm(np.diff(p, axis=0), axis=1).sum()
    assert arc < 1.1 * np.pi * 2.3                                       # no blow-up of the path

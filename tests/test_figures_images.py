"""Image-page building blocks without a browser: image grids and their layout, plots, the frame store for the
scrubber, and read-only model access (encode / decode / posterior statistics / map selections)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dashboard import figures_images as fi
from dashboard import latent_ops
from dashboard.image_controls import Frames


def _imgs(n: int, h: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, h, h)).astype(np.float32)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round((np.clip(x, -1, 1) + 1) / 2 * 255).astype(np.uint8)


def _block(img: np.ndarray, box: tuple[int, int, int, int], k: int) -> np.ndarray:
    """Cut one tile out of a drawn grid and undo the nearest-neighbour upscale (first channel)."""
    top, left, h, w = box
    return img[top:top + h:k, left:left + w:k, 0]


# ---- images ----------------------------------------------------------------------------------------------------
def test_tiles_maps_minus_one_to_black_and_one_to_white_with_white_padding():
    x = np.stack([np.full((1, 8, 8), -1.0), np.full((1, 8, 8), 1.0)]).astype(np.float32)
    img = fi.tiles(x, nrow=2, scale=3, padding=2)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape == (2 + 24 + 2, 2 + (24 + 2) * 2, 3)
    assert (img[2:26, 2:26] == 0).all() and (img[2:26, 28:52] == 255).all()
    assert (img[0, :] == 255).all()                          # padding is white (the page's colour)


def test_tiles_of_one_image_keep_their_padding():
    img = fi.tiles(np.zeros((1, 1, 8, 8), np.float32), nrow=1, scale=2, padding=3)
    assert img.shape == (22, 22, 3)


def test_tiles_shrink_to_fit_a_width():
    x = _imgs(64)
    assert fi.tiles(x, nrow=8).shape[1] > 350
    assert fi.tiles(x, nrow=8, max_width=350).shape[1] <= 350


def test_pairs_sit_side_by_side_input_left_reconstruction_right():
    inputs, recons = _imgs(12, seed=1), _imgs(12, seed=2)
    img = fi.pairs_image(inputs, recons, n=12, per_row=5, header=False)
    k = fi.display_scale(8)
    lay = fi.group_layout(12, 2, 8, per_row=5)
    for i in (0, 4, 5, 11):
        (b_in, b_out) = lay[i]
        assert b_in[0] == b_out[0] and b_out[1] > b_in[1]          # same row, reconstruction to the right
        np.testing.assert_allclose(_block(img, b_in, k), _u8(inputs[i, 0]), atol=1)
        np.testing.assert_allclose(_block(img, b_out, k), _u8(recons[i, 0]), atol=1)


def test_denoising_groups_are_clean_noisy_reconstructed_with_a_header():
    x, noisy, out = _imgs(8, seed=1), _imgs(8, seed=2), _imgs(8, seed=3)
    img = fi.pairs_image(x, out, noisy, n=8, per_row=4, header=False)
    k = fi.display_scale(8)
    lay = fi.group_layout(8, 3, 8, per_row=4)
    for col, src in enumerate((x, noisy, out)):
        np.testing.assert_allclose(_block(img, lay[6][col], k), _u8(src[6, 0]), atol=1)
    with_header = fi.pairs_image(x, out, noisy, n=8, per_row=4)
    assert with_header.shape[0] == img.shape[0] + 20 and with_header.shape[1] == img.shape[1]


def test_pairs_fit_the_column_for_every_dataset_size():
    for h in (8, 28, 32, 64):
        img = fi.pairs_image(_imgs(30, h), _imgs(30, h), n=30, per_row=6, max_width=700)
        assert img.shape[1] <= 700


def test_class_rows_put_each_class_in_its_own_labelled_row():
    samples = _imgs(30, seed=4)
    labels = np.arange(30) % 3
    img = fi.class_rows_image(samples, labels, ("square", "ellipse", "heart"), per_row=8)
    plain = fi.tiles(np.concatenate([samples[labels == c][:8] for c in range(3)]), nrow=8,
                     scale=fi.display_scale(8), padding=2)
    margin = img.shape[1] - plain.shape[1]
    assert margin > 20 and img.shape[0] == plain.shape[0]
    np.testing.assert_array_equal(img[:, margin:], plain)           # rows in class order, 8 samples each
    assert (img[:, :margin] < 255).any()                           # the labels are drawn


def test_strip_with_ends_and_traversal_shapes():
    k = fi.display_scale(8)
    strip = fi.strip_image(_imgs(9), ends=(_imgs(1)[0], _imgs(1)[0]), gap=14)
    end, row = 8 * k + 4, 9 * (8 * k + 2) + 2               # an end tile with its padding; the 9-tile row
    assert strip.shape == (end, 2 * end + 2 * 14 + row, 3)
    assert fi.strip_image(_imgs(16), max_width=600).shape[1] <= 600
    trav = fi.traversal_image(_imgs(8 * 7), 8, [f"z{j}" for j in range(8)])
    assert trav.shape[0] == 8 * (8 * k + 2) + 2


def test_single_and_plane_images():
    assert fi.single_image(_imgs(1)[0], 160).shape[:2] == (160, 160)
    assert fi.plane_image(_imgs(144), 12).shape[:2] == (12 * 33 + 1, 12 * 33 + 1)


# ---- plots ---------------------------------------------------------------------------------------------------
def test_recon_error_curves_share_one_scale():
    hist = {"step": np.arange(1, 11), "mse": np.full(10, 0.4)}
    evals = {"step": np.array([0, 10]), "test_mse": np.array([0.2, 0.1])}
    fig = fi.recon_error_figure(hist, evals)
    train, test = fig.data
    np.testing.assert_allclose(train.y, 0.1)              # history is logged on [-1, 1]: / 4 to match test_mse
    np.testing.assert_allclose(test.y, [0.2, 0.1])
    assert fig.layout.yaxis.type == "log"
    empty = fi.recon_error_figure({"step": np.zeros(0)}, {"step": np.zeros(0)})
    assert len(empty.data) == 0 and "Train" in empty.layout.annotations[0].text


def test_kl_bars_grey_out_unused_dimensions_and_count_active_units():
    kl = np.array([1.2, 0.001, 0.5, 0.0])
    var = np.array([0.8, 0.001, 0.3, 0.0])
    fig = fi.kl_bars_figure(kl, var)
    assert list(fig.data[0].x) == ["z1", "z2", "z3", "z4"]
    assert fig.data[0].marker.color[1] == fi.MUTED and fig.data[0].marker.color[0] == fi.REAL
    assert "2 of 4" in fig.layout.title.text


def test_collapse_note_only_when_most_dimensions_carry_nothing():
    alive = np.array([1.0, 0.8, 0.9, 0.7])
    assert fi.collapse_note(alive, step=1000) is None
    dead = np.array([1.0, 0.001, 0.002, 0.0])
    assert fi.collapse_note(dead, step=10) is None                       # too early to tell
    assert "3 of 4" in fi.collapse_note(dead, step=1000)
    assert "all 4" in fi.collapse_note(np.zeros(4), step=1000)


def test_quality_figure_has_fd_prdc_and_classes_or_a_note():
    evals = {"step": np.array([0, 100]), "fd": np.array([50.0, 20.0]), "precision": np.array([0.1, 0.5]),
             "recall": np.array([0.0, 0.3]), "coverage": np.array([0.1, 0.4]), "classes": np.array([2.0, 8.0])}
    fig = fi.quality_gan_figure(evals, 10)
    assert {t.name for t in fig.data} == {"FD", "precision", "recall", "coverage", "classes"}
    assert fig.layout.yaxis3.range[1] == pytest.approx(10.5)
    note = fi.quality_gan_figure({"step": np.zeros(0)}, note="no classifier for sprites")
    assert "no classifier" in note.layout.annotations[0].text


def test_latent_map_has_clickable_grid_codes_by_class_and_the_decoded_spot():
    xy = np.random.default_rng(0).normal(size=(20, 2))
    labels = np.arange(20) % 2
    fig = fi.latent_map_figure(xy, labels, ("zero", "one"), grid=(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5)),
                               picked=(0.5, -0.5))
    grid, c0, c1, picked = fig.data
    assert len(grid.x) == 25 and set(np.asarray(grid.customdata)) == {-1} and grid.marker.opacity == 0
    assert [c0.name, c1.name] == ["zero", "one"]
    np.testing.assert_array_equal(c1.customdata, np.arange(1, 20, 2))      # the test index of each code
    assert (picked.x[0], picked.y[0]) == (0.5, -0.5)
    assert fig.layout.dragmode is None                     # Streamlit's default for "points": click-to-select


def test_factor_table_and_sentences():
    corr = np.array([[0.1, 0.9, 0.0], [0.2, 0.1, 0.3]])
    fig = fi.factor_figure(corr, ["x", "y", "scale"])
    assert fig.data[0].z.shape == (2, 3)
    assert fi.factor_sentences(corr, ["x", "y", "scale"]) == ["z1 follows **y** (|r| = 0.90)"]


def test_path_norms_and_data_paths():
    fig = fi.path_norms_figure(np.linspace(0, 1, 5), {"lerp": np.ones(5), "slerp": np.ones(5)}, typical=2.0)
    assert [t.name for t in fig.data] == ["lerp", "slerp"] and fig.layout.shapes[0].y0 == 2.0
    fig = fi.data_paths_figure(np.zeros((10, 2)), {"lerp": np.zeros((5, 2))})
    assert [t.name for t in fig.data] == ["real", "lerp"]


# ---- the scrubber's frames -------------------------------------------------------------------------------------
def test_frames_stay_bounded_and_spread_over_the_run():
    f = Frames(cap=8)
    for step in range(0, 1000, 10):
        f.add(step, np.full((4, 1, 8, 8), step / 1000, np.float32))
    steps = f.list()
    assert len(steps) <= 8 + 1 and steps[0] == 0 and steps[-1] >= 900
    assert np.all(np.diff(steps) > 0)
    g = f.get(steps[1])
    assert g.shape == (4, 1, 8, 8) and abs(float(g.mean()) - steps[1] / 1000) < 0.01
    f.add(5, np.zeros((4, 1, 8, 8), np.float32))             # a reset run starts over
    assert f.list() == [5]


# ---- model access ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trainers():
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    base = {"data.name": "digits", "model.arch": "mlp", "model.g_hidden": 32, "model.d_hidden": 32,
            "train.batch_size": 32, "train.device": "cpu", "train.n_fixed": 16}
    out = {}
    for fam, more in (("ae", {}), ("vae", {}), ("gan", {"tricks.ac": True})):
        t = Trainer(RunConfig().with_updates(**base, **{"model.family": fam, "model.latent_dim": 4}, **more))
        t.step(20)
        out[fam] = t
    return out


def test_decode_of_a_code_is_the_reconstruction(trainers):
    t = trainers["ae"]
    x = t.data.x_test[:5]
    z = latent_ops.encode(t, x)
    assert z.shape == (5, 4)
    np.testing.assert_allclose(latent_ops.decode(t, z), latent_ops.reconstruct(t, x), atol=1e-5)
    assert t.model.training                                      # the call left the model's mode alone


def test_vae_codes_are_posterior_means_and_stats_per_dimension(trainers):
    t = trainers["vae"]
    x = t.data.x_test[:10]
    mu, _ = t.model.posterior(x)
    np.testing.assert_allclose(latent_ops.encode(t, x), mu.detach().numpy(), atol=1e-5)
    s = latent_ops.posterior_stats(t)
    assert s["kl"].shape == (4,) and s["var_mu"].shape == (4,) and 0 <= s["active"] <= 4
    assert latent_ops.posterior_stats(trainers["ae"]) is None


def test_gan_decodes_with_a_class_and_test_set_has_no_codes(trainers):
    t = trainers["gan"]
    z = latent_ops.prior(t, 3, seed=1)
    np.testing.assert_array_equal(z, latent_ops.prior(t, 3, seed=1))
    a, b = latent_ops.decode(t, z, 2), latent_ops.decode(t, z, 7)
    assert a.shape == (3, 1, 8, 8) and not np.allclose(a, b)
    info = latent_ops.info(t)
    assert not info.can_encode and info.generative and info.n_classes == 10
    assert "codes" not in latent_ops.test_set(t, 50)
    ts = latent_ops.test_set(trainers["ae"], 50)
    assert ts["codes"].shape == (50, 4) and ts["labels"].shape == (50,)


def test_selection_target_reads_clicks_boxes_and_grid_spots():
    assert latent_ops.selection_target(None) is None
    assert latent_ops.selection_target({"selection": {"points": [], "box": [], "lasso": []}}) is None
    click = {"selection": {"points": [{"x": 0.1, "y": 0.2, "customdata": 7, "curve_number": 1}], "box": []}}
    assert latent_ops.selection_target(click) == ("code", 7)
    listed = {"selection": {"points": [{"x": 0.1, "y": 0.2, "customdata": [3]}], "box": []}}
    assert latent_ops.selection_target(listed) == ("code", 3)
    spot = {"selection": {"points": [{"x": 0.5, "y": -1.0, "customdata": -1}], "box": []}}
    assert latent_ops.selection_target(spot) == ("spot", (0.5, -1.0))
    box = {"selection": {"points": [{"x": 0, "y": 0, "customdata": 2}], "box": [{"x": [0.0, 1.0], "y": [2.0, 4.0]}]}}
    assert latent_ops.selection_target(box) == ("box", (0.5, 3.0))


def test_images_from_torch_tensors_too():
    assert fi.tiles(torch.zeros(4, 1, 8, 8), nrow=2).shape[2] == 3

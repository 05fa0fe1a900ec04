"""The image pages in a real browser: `streamlit run` + Debian's Chromium, driven by Playwright.

Reads the PNGs the pages actually serve and compares pixels: while an autoencoder trains, the input tiles of
the reconstruction panel stay put and the reconstruction tiles beside them change; the interpolation strip
starts and ends at the chosen inputs' reconstructions; clicking the latent map (a code, then an empty spot)
decodes it. Screenshots go to test-artifacts/ (look at them).
"""
from __future__ import annotations

import io
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from e2e_support import ARTIFACTS, charts_rebuilt, errors, open_page, page_step, settle

pytestmark = pytest.mark.e2e

IMAGE_SRC_JS = """(prefix) => {
  for (const el of document.querySelectorAll('[data-testid="stImage"]')) {
    if (el.closest('[data-stale="true"]')) continue;
    const cap = el.querySelector('[data-testid="stImageCaption"]');
    if (cap && cap.innerText.startsWith(prefix)) return el.querySelector('img').src;
  }
  return null;
}"""
# pixel position (relative to the plot div) of point `i` of the trace named `name` on the latent map
MAP_POINT_JS = """([name, i]) => {
  const gd = document.querySelector('.st-key-lx_map .js-plotly-plot');
  if (!gd || !gd._fullLayout) return null;
  const t = gd._fullData.find(t => t.name === name);
  if (!t) return null;
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const r = gd.getBoundingClientRect();
  const px = (v, a) => a._offset + a.l2p(v);
  const x = Number(t.x[i]), y = Number(t.y[i]);
  return {x: r.left + px(x, xa), y: r.top + px(y, ya), cd: t.customdata ? Number(t.customdata[i]) : null,
          corner: {x: r.left + xa._offset + 6, y: r.top + ya._offset + 6}};
}"""


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    import torch
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("e2e-ckpt")
    t = Trainer(RunConfig().with_updates(**{
        "data.name": "digits", "model.family": "ae", "model.arch": "mlp", "model.latent_dim": 4,
        "model.g_hidden": 64, "model.d_hidden": 64, "optim.g_lr": 2e-3, "train.batch_size": 64,
        "train.device": "cpu"}))
    t.step(300)
    t.save(folder / "ae-digits-e2e.pt")
    return folder


@pytest.fixture(scope="module")
def server_env(checkpoint_dir):
    return {"GANAE_CHECKPOINT_DIR": str(checkpoint_dir)}


def fetch_image(page, caption_prefix: str, timeout: float = 20.0) -> tuple[str, np.ndarray]:
    deadline = time.monotonic() + timeout
    while True:
        src = page.evaluate(IMAGE_SRC_JS, caption_prefix)
        if src:
            try:
                data = urllib.request.urlopen(src, timeout=5).read()
                return src, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            except OSError:
                pass     # replaced by a newer frame meanwhile
        if time.monotonic() > deadline:
            raise AssertionError(f"no image captioned {caption_prefix!r}; errors: {errors(page)}")
        time.sleep(0.2)


def test_reconstructions_change_beside_fixed_inputs_while_training(server, tab):
    page = tab
    from dashboard import figures_images as fi
    from dashboard.image_controls import WIDE
    open_page(page, server, "Autoencoder Lab")
    _, before = fetch_image(page, "The fixed test batch: press Train")
    page.get_by_text("fully connected (MLP)", exact=True).click()
    settle(page, strict=False)
    page.get_by_role("button", name="Train", exact=True).click()
    src1, a = fetch_image(page, "The fixed test batch, input | reconstruction")
    deadline = time.monotonic() + 30
    while True:                                   # the live fragment redraws: a newer frame arrives
        time.sleep(1.0)
        src2, b = fetch_image(page, "The fixed test batch, input | reconstruction")
        if src2 != src1 or time.monotonic() > deadline:
            break
    page.screenshot(path=str(ARTIFACTS / "images-ae-lab-training.png"), full_page=True)
    assert src2 != src1, "the reconstruction panel did not refresh while training"
    rebuilt = charts_rebuilt(page, lambda: page_step(page))      # the error chart updates in place
    assert page.locator(".js-plotly-plot").count() >= 2 and not rebuilt, rebuilt
    assert a.shape == b.shape == before.shape

    # cut the panel into its groups: inputs stay identical, reconstructions beside them change
    header = 20
    lay = fi.group_layout(30, 2, 8, per_row=6, max_width=WIDE)
    k = fi.group_scale(8, 2, 6, max_width=WIDE)
    changed = 0
    for boxes in lay:
        (t, l, h, w), (t2, l2, h2, w2) = boxes
        assert t == t2 and l2 == l + w + 2                       # input and its reconstruction side by side
        cut = lambda img, tt, ll: img[header + tt:header + tt + h:k, ll:ll + w:k, 0].astype(int)  # noqa: E731
        np.testing.assert_array_equal(cut(a, t, l), cut(b, t, l))            # the same test input ...
        np.testing.assert_array_equal(cut(a, t, l), cut(before, t, l))       # ... as before training
        changed += int(np.abs(cut(a, t2, l2) - cut(b, t2, l2)).max() > 2)   # ... its reconstruction moves
    assert changed >= 20, f"only {changed} of 30 reconstructions changed between frames"
    assert not errors(page)

    page.get_by_role("button", name="Pause", exact=True).click()
    settle(page, strict=False)
    page.get_by_role("button", name="Open in Latent Explorer").click()
    settle(page, strict=False)
    page.wait_for_selector("h1:has-text('Latent Explorer')", timeout=60_000)
    fetch_image(page, "From the codes of test inputs")                 # interpolation of the live model
    page.screenshot(path=str(ARTIFACTS / "images-latent-live-run.png"), full_page=True)
    assert not errors(page)


def _choose_checkpoint(page) -> None:
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="checkpoint ae-digits-e2e.pt", exact=False).click()
    settle(page, strict=False)


def _find(row: np.ndarray, tile: np.ndarray) -> int:
    """x offset of `tile` (an exact upscaled image) inside a strip row of the same height."""
    w = tile.shape[1]
    for x in range(row.shape[1] - w + 1):
        if np.array_equal(row[:, x:x + w], tile):
            return x
    raise AssertionError("input A is not at the start of the strip")


def test_interpolation_ends_are_the_reconstructions_and_the_map_decodes_clicks(server, tab, checkpoint_dir):
    page = tab
    from dashboard import figures_images as fi
    from dashboard import latent_ops
    from ganae.trainer import Trainer
    open_page(page, server, "Latent Explorer")
    _choose_checkpoint(page)
    _, strip = fetch_image(page, "From the codes of test inputs #0 and #")
    page.screenshot(path=str(ARTIFACTS / "images-latent-interpolation.png"), full_page=True)

    t = Trainer.load(checkpoint_dir / "ae-digits-e2e.pt", device="cpu")
    labels = t.data.y_test.numpy()
    j = int(np.flatnonzero(labels != labels[0])[0])             # the page's default pair: #0 and a different label
    x = t.data.x_test[[0, j]]
    rec = latent_ops.reconstruct(t, x)
    k = fi.fit_scale(8, 11, 840, per_tile=4, fixed=28)
    tile_a = fi.tiles(x[:1].numpy(), nrow=1, scale=k, padding=0)
    first_row = strip[18 + 2:18 + 2 + 8 * k]                    # below the A / B header, inside the padding
    xa = _find(first_row, tile_a)
    x0 = xa + 8 * k + 2 + 14 + 2                                # after A, its padding, the gap, the row padding
    got = first_row[::k, x0:x0 + 8 * k:k, 0].astype(int)
    want = fi.tiles(rec[:1], nrow=1, scale=1, padding=0)[:, :, 0].astype(int)
    assert np.abs(got - want).max() <= 2, "t = 0 does not decode to input A's reconstruction"
    row_w = 9 * (8 * k + 2) + 2
    x8 = x0 + row_w - 2 - 8 * k - 2 + 0                         # the last tile of the row
    got_b = first_row[::k, x8:x8 + 8 * k:k, 0].astype(int)
    want_b = fi.tiles(rec[1:], nrow=1, scale=1, padding=0)[:, :, 0].astype(int)
    assert np.abs(got_b - want_b).max() <= 2, "t = 1 does not decode to input B's reconstruction"

    # the latent map: click a code, then an empty spot
    page.get_by_role("tab", name="Latent map").click()
    page.wait_for_selector(".st-key-lx_map .js-plotly-plot", timeout=30_000)
    time.sleep(1.0)
    pos = page.evaluate(MAP_POINT_JS, [t.data.class_names[int(labels[5])], 0])
    assert pos is not None, "the latent map has no trace for that class"
    page.mouse.click(pos["x"], pos["y"])
    settle(page, strict=False)
    _, decoded = fetch_image(page, "Decoded: the code of test input #")
    page.screenshot(path=str(ARTIFACTS / "images-latent-map-click-code.png"), full_page=True)
    cap = page.locator("[data-testid='stImageCaption']", has_text="Decoded: the code of test input").inner_text()
    idx = int(cap.split("#")[1].split()[0])               # the code nearest the click (neighbours may overlap)
    x = t.data.x_test[[idx]]
    want = fi.side_by_side([latent_ops.reconstruct(t, x)[0], x[0].numpy()], ["decoded", "the input"], 130)
    assert decoded.shape == want.shape and np.abs(decoded.astype(int) - want.astype(int)).max() <= 2

    page.mouse.click(pos["corner"]["x"], pos["corner"]["y"])     # top-left corner of the plot: no code there
    settle(page, strict=False)
    _, spot = fetch_image(page, "Decoded: the spot (")
    page.screenshot(path=str(ARTIFACTS / "images-latent-map-click-spot.png"), full_page=True)
    assert spot.shape[:2] == (176, 176) and spot.std() > 1           # one decoded image, not a blank
    assert not errors(page)


def test_image_gan_grid_evolves_and_can_be_scrubbed_back(server, tab):
    page = tab
    open_page(page, server, "Image GAN")
    page.get_by_text("fully connected", exact=True).click()
    settle(page, strict=False)
    page.get_by_role("button", name="Train", exact=True).click()
    src1, a = fetch_image(page, "Samples of the fixed noise")
    deadline = time.monotonic() + 30
    while True:
        time.sleep(1.0)
        src2, b = fetch_image(page, "Samples of the fixed noise")
        if (src2 != src1 and page.locator(".st-key-ig_scrub").count()) or time.monotonic() > deadline:
            break
    assert src2 != src1 and not np.array_equal(a, b), "the sample grid did not change while training"
    rebuilt = charts_rebuilt(page, lambda: page_step(page))      # losses, D's outputs, quality, |grad|: in place
    assert page.locator(".js-plotly-plot").count() >= 4 and not rebuilt, rebuilt
    page.get_by_role("button", name="Pause", exact=True).click()
    settle(page, strict=False)
    page.screenshot(path=str(ARTIFACTS / "images-gan-training.png"), full_page=True)
    slider = page.locator(".st-key-ig_scrub input[type='range']")
    slider.focus()
    page.keyboard.press("Home")                                   # back to the first grid
    settle(page, strict=False)
    _, first = fetch_image(page, "Samples of the fixed noise · step 0 (live: step")
    assert not np.array_equal(first, b)
    page.screenshot(path=str(ARTIFACTS / "images-gan-scrubbed.png"), full_page=True)
    assert not errors(page)

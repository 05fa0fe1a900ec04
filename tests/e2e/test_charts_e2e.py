"""Charts and image grids as a lecture room sees them (issue #20, items 7 and 9), at 1440 and 1024 px:

- plotly's toolbar, shown on hover, covers no chart's title or legend, and no legend covers a plot's lines
  (it covered the losses', gradient norms' and ELBO terms' legends and titles);
- the projector switch in the sidebar makes the charts' fonts and the image grids larger, on every page it visits,
  and image grids are upscaled pixel for pixel (nearest neighbour), also when the browser enlarges them (the
  projector, an image's full-screen button).
"""
from __future__ import annotations

import re

import pytest

from e2e_support import button, errors, open_page, settle, shot, wait_for

# every plotly chart on the page: the boxes of its toolbar, legend, title(s), colour bars and plot areas
BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map((el) => {
  const r = (q) => [...el.querySelectorAll(q)].map((e) => { const b = e.getBoundingClientRect();
                     return b.width && b.height ? [b.left, b.top, b.right, b.bottom] : null; }).filter(Boolean);
  return {title: (el.querySelector('.gtitle') || {textContent: ''}).textContent,
          modebar: r('.modebar'), legend: r('.legend .traces'), titles: r('.gtitle'), colorbars: r('.colorbar'),
          plots: r('.nsewdrag'), xtitles: r('[class*="xtitle"]')};
})"""
# the font size of the first chart title (scrolled into view: a live chart out of view is redrawn when it comes
# back), and the grid images: natural and shown width, their image-rendering
TITLE_PX = """() => { const t = document.querySelector('.js-plotly-plot .gtitle');
                      if (t) t.closest('.js-plotly-plot').scrollIntoView({block: 'nearest'});
                      return t ? parseFloat(getComputedStyle(t).fontSize) : null; }"""
IMAGES = """() => [...document.querySelectorAll('[data-testid="stImage"] img')].map((i) => (
  {natural: i.naturalWidth, shown: i.getBoundingClientRect().width, rendering: getComputedStyle(i).imageRendering}))"""


def _cross(a, b) -> bool:
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


def overlaps(page) -> list[str]:
    """'<chart title>: what covers what' for every overlap on the page (each chart hovered first, as a user
    would: the toolbar shows on hover)."""
    charts = page.locator(".js-plotly-plot")
    for i in range(charts.count()):
        try:
            charts.nth(i).hover(timeout=5_000)
        except Exception:
            pass
    bad = []
    for c in page.evaluate(BOXES):
        pairs = [("toolbar", "legend", c["modebar"], c["legend"]), ("toolbar", "title", c["modebar"], c["titles"]),
                 ("toolbar", "colour bar", c["modebar"], c["colorbars"]), ("legend", "plot", c["legend"], c["plots"]),
                 ("legend", "title", c["legend"], c["titles"]), ("legend", "x axis title", c["legend"], c["xtitles"])]
        bad += [f"{c['title']!r}: {x} over {y} {a} {b}" for x, y, xs, ys in pairs for a in xs for b in ys if _cross(a, b)]
    return bad


def train_a_little(page, seconds: float = 4.0) -> None:
    button(page, "Train").click()
    page.wait_for_timeout(int(seconds * 1000))
    button(page, "Pause").click()
    settle(page, strict=False, pause_ms=1500)


@pytest.fixture(params=[1440, 1024], ids=["1440px", "1024px"])
def viewport(request) -> dict[str, int]:
    return {"width": request.param, "height": 1000}


@pytest.mark.timeout(600)          # three pages, each trained a little, on a machine shared with other jobs
def test_no_toolbar_covers_a_title_or_a_legend(server, tab, viewport):
    page, w = tab, viewport["width"]
    seen = {}
    for title, choose in (("Image GAN", "fully connected"), ("Autoencoder Lab", "VAE"), ("GAN Playground", None)):
        open_page(page, server, title)
        if choose:
            page.locator("[data-testid='stRadio'] label").filter(has_text=re.compile(f"^{choose}$")).first.click()
            settle(page, strict=False)
        train_a_little(page)
        seen[title] = page.evaluate(BOXES)
        problems = overlaps(page)
        shot(page, f"charts-{w}-{title.replace(' ', '-').lower()}.png")
        assert not problems, f"{title} at {w} px: {problems}"
        assert not errors(page)
    titles = {t: [c["title"] for c in cs] for t, cs in seen.items()}
    assert {"Losses", "D(x) and D(G(z))", "Gradient norms"} <= set(titles["Image GAN"]), titles
    assert "ELBO terms per example" in titles["Autoencoder Lab"], titles
    assert sum(bool(c["modebar"]) for c in seen["Image GAN"]) >= 3          # the toolbars were there to measure


def test_projector_makes_charts_and_image_grids_larger(server, tab, viewport):
    page, w = tab, viewport["width"]
    open_page(page, server, "Image GAN")
    page.locator("[data-testid='stRadio'] label").filter(has_text=re.compile("^fully connected$")).first.click()
    settle(page, strict=False)
    train_a_little(page, 4.0)
    small_title = page.evaluate(TITLE_PX)
    small = wait_for(lambda: page.evaluate(IMAGES), 20)
    assert small and all(i["rendering"] == "pixelated" for i in small), small
    page.locator("[data-testid='stSidebar'] label", has_text="Projector").click()
    settle(page, strict=False, pause_ms=1500)
    assert wait_for(lambda: (page.evaluate(TITLE_PX) or 0) >= 1.4 * small_title, 20), \
        (small_title, page.evaluate(TITLE_PX))
    big = page.evaluate(IMAGES)
    grid = max(range(len(big)), key=lambda i: big[i]["natural"])
    before = max(small, key=lambda i: i["natural"])
    # the browser doubles the grid, pixel for pixel, as far as its column allows
    assert big[grid]["shown"] >= min(1.9 * before["shown"], 0.95 * big[grid]["shown"] + 1) and \
        big[grid]["shown"] > 1.3 * before["shown"], (before, big[grid])
    assert big[grid]["rendering"] == "pixelated"
    assert not overlaps(page), overlaps(page)
    shot(page, f"charts-{w}-projector-image-gan.png")
    page.locator("[data-testid='stSidebarNavLink']", has_text="Autoencoder Lab").first.click()
    page.wait_for_selector("h1:has-text('Autoencoder Lab')")    # the switch holds on the next page of the session
    settle(page, strict=False)
    assert page.locator("[data-testid='stSidebar'] input[type='checkbox']").first.is_checked()
    assert wait_for(lambda: (page.evaluate(TITLE_PX) or 0) >= 1.4 * small_title, 20)
    shot(page, f"charts-{w}-projector-ae-lab.png")
    assert not errors(page)
    # the full-screen button of an image grid fills the screen with it, still pixel for pixel
    page.locator("[data-testid='stImage']").first.hover()
    page.locator("[data-testid='stElementToolbar'] button:visible").last.click()
    full = wait_for(lambda: [i for i in page.evaluate(IMAGES) if i["shown"] >= 0.9 * w], 10)
    assert full and full[0]["shown"] > 1.5 * full[0]["natural"] and full[0]["rendering"] == "pixelated", \
        page.evaluate(IMAGES)
    shot(page, f"charts-{w}-full-screen-grid.png")

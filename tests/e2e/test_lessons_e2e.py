"""A lesson walked end to end in a real browser: `streamlit run` + Debian's Chromium, driven by Playwright.

"What a GAN does (in 2D)", in the student view (?advanced=0): each step's button opens the GAN Playground set up
for it; the student trains, steps D by hand, comes back through the sidebar and moves on. Screenshots of every
stop go to test-artifacts/lessons-*.png (look at them).
"""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

import e2e_support as e2e
from e2e_support import button, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def viewport():
    return {"width": 1440, "height": 1500}


def settle(page, timeout: float = 60) -> None:
    e2e.settle(page, timeout, pause_ms=300)     # a click's rerun starts a moment later


def shot(page, name: str) -> None:
    e2e.shot(page, f"lessons-{name}.png")


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def step_of(page) -> int | None:
    return e2e.page_step(page)


def stable_step(page) -> int | None:
    """The step shown once the page shows a paused run and the number stops changing (a frame may be late)."""
    wait_for(lambda: page.get_by_text("paused").count() > 0, timeout=20)
    last = step_of(page)
    for _ in range(50):
        time.sleep(0.2)
        now = step_of(page)
        if now == last:
            return now
        last = now
    return last


def heading(page, text: str):
    return page.get_by_role("heading", name=re.compile(re.escape(text))).first


def see(page, text: str, timeout: float = 60) -> None:
    """Wait until a heading with `text` is visible (the first script run of a page takes a moment)."""
    heading(page, text).wait_for(state="visible", timeout=timeout * 1000)


def back_to_lessons(page) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text="Lessons").first.click()
    page.wait_for_url(re.compile(r"/lessons"), timeout=30_000)
    settle(page)


def open_step(page, title: str) -> None:
    button(page, f"Open {title}").click()
    page.wait_for_url(re.compile(r"/playground\?"), timeout=60_000)
    see(page, "GAN Playground")
    settle(page)


def number_input(page, label: str) -> float:
    return float(page.get_by_label(label, exact=True).first.input_value())


def test_walk_what_a_gan_does(tab, server):
    page = tab
    page.goto(server + "/lessons?lesson=gan-2d&step=1&advanced=0")
    settle(page)
    see(page, "Lessons")
    see(page, "1. Watch a GAN learn a ring")
    shot(page, "1-step1")
    page.get_by_text("Step 1 of 3").first.wait_for(state="visible", timeout=30_000)
    settle(page)
    assert wait_for(lambda: button(page, "Back").is_disabled(), timeout=20)

    # step 1: the stabilised ring, a fresh run the student trains
    open_step(page, "GAN Playground")
    q = query(page)
    first_run = q.get("run")
    assert first_run and q.get("advanced") == "0"
    assert wait_for(lambda: number_input(page, "R1 γ") == pytest.approx(0.1), timeout=20)   # the preset's setup
    assert step_of(page) == 0
    button(page, "Train").click()
    assert wait_for(lambda: (step_of(page) or 0) >= 100, timeout=60), "the run did not train"
    shot(page, "2-playground-training")
    button(page, "Pause").click()
    settle(page)
    paused_at = stable_step(page)
    assert paused_at >= 100

    # step 2: no new setup — the same run, stepped by hand
    back_to_lessons(page)
    see(page, "1. Watch a GAN learn a ring")   # the lesson remembers where we are
    button(page, "Next").click()
    settle(page)
    see(page, "2. One player at a time")
    assert query(page).get("step") == "2"
    shot(page, "3-step2")
    open_step(page, "GAN Playground")
    assert query(page).get("run") == first_run
    assert stable_step(page) == paused_at                               # the same run, where we left it
    for _ in range(3):
        button(page, "Step D").click()
        settle(page)
    assert wait_for(lambda: step_of(page) == paused_at + 3, timeout=20)
    shot(page, "4-playground-step-d")

    # step 3: a new run with uniform noise
    back_to_lessons(page)
    button(page, "Next").click()
    settle(page)
    see(page, "3. What G does with its noise")
    assert wait_for(lambda: button(page, "Next").is_disabled(), timeout=20)
    shot(page, "5-step3")
    open_step(page, "GAN Playground")
    q = query(page)
    assert q.get("run") and q["run"] != first_run and q.get("advanced") == "0"
    page.locator("[data-testid='stExpander'] summary", has_text="Model").first.click()      # open the Model box
    radio = page.locator("[data-testid='stRadio'] label", has_text="U(-1, 1)").locator("input").first
    assert wait_for(lambda: radio.is_checked(), timeout=20)                 # the step's uniform noise
    button(page, "Train").click()
    assert wait_for(lambda: (step_of(page) or 0) >= 50, timeout=60)
    button(page, "Pause").click()
    settle(page)
    shot(page, "6-playground-uniform-noise")


def test_a_dirac_step_opens_its_methods(tab, server):
    page = tab
    page.goto(server + "/lessons?lesson=dirac&step=3")
    settle(page)
    see(page, "3. Damping makes it converge")
    button(page, "Open Dirac-GAN").click()
    page.wait_for_url(re.compile(r"/dirac"), timeout=60_000)
    settle(page)
    see(page, "Dirac-GAN")
    table = page.locator("[data-testid='stTable']").first.inner_text()
    for m in ("gp-zero", "gp-zero-critical", "instance-noise", "consensus"):
        assert m in table
    assert "ns-gan" not in table
    shot(page, "7-dirac")

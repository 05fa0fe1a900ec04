"""A run obeys the browser that started it; everyone else watches (two browser contexts = two browsers).

Student A trains on the Playground and hands out the Watch link; B opens it in another browser: the same run live,
its controls off, and a forged Pause (a disabled button's click sent over Streamlit's websocket by a hand-made
client, benchmarks/classroom.py's WirePage) changes nothing. A's refresh keeps control (the secret is a cookie,
never in the address). B's "Make my own copy" trains on its own while A's curves stay as they were. The same for
an arena. Screenshots go to test-artifacts/owner-*.png.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

import pytest

from e2e_support import ROOT, button, chart, href, keyed_button, page_step, settle, shot, wait_for

pytestmark = pytest.mark.e2e

WATCHING = "You are watching"
CONTROLS = ("Train", "Pause", "Step D", "Step G", "Step both", "Reset")


@pytest.fixture
def browsers(chromium):
    """new() -> (context, page): a fresh browser context each time (its own cookies: another browser)."""
    made = []

    def new():
        ctx = chromium.new_context(viewport={"width": 1440, "height": 1600})
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        made.append(ctx)
        return ctx, page

    yield new
    for ctx in made:
        ctx.close()


def secret(ctx) -> str | None:
    return next((c["value"] for c in ctx.cookies() if c["name"] == "ganae_owner"), None)


def query(page, key: str) -> str | None:
    return (parse_qs(urlparse(href(page)).query).get(key) or [None])[0]


def watched(page) -> bool:
    return page.get_by_text(WATCHING).count() > 0


def offered_link(page, key: str, has: str) -> str:
    """Open the popover of widget `key` (Share / Watch) and read the address it offers (a full rerun of the page
    meanwhile closes the popover: then it is opened again)."""
    code = page.locator("[data-testid='stCode'] code", has_text=has).first

    def opened() -> bool:
        if not code.is_visible():
            page.locator(f".st-key-{key} button:visible").first.click()
        return wait_for(code.is_visible, timeout=5)

    assert wait_for(opened, timeout=60), f"the {key} popover shows no link with {has!r}"
    url = code.inner_text().strip()
    page.keyboard.press("Escape")
    return url


def forged_click(url: str, key: str) -> dict:
    """Open `url` as a client that speaks Streamlit's websocket without a browser and send the click of button
    `key` even though the page drew it disabled; returns {"disabled": ..., "line": the state line after}."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from classroom import Student, WirePage

    async def go() -> dict:
        wire = WirePage(Student(0, client="wire"))
        await wire.open(url)
        try:
            wid, fragment, disabled = wire.buttons[key]
            await wire._rerun(trigger=wid, fragment_id=fragment)
            await asyncio.sleep(2.0)
            return {"disabled": disabled, "line": (wire.line or {}).get("text", ""), "errors": wire.st.errors}
        finally:
            await wire.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:      # (Playwright's sync API holds this thread's loop)
        return pool.submit(asyncio.run, go()).result(timeout=180)


def test_a_watcher_sees_the_run_live_cannot_change_it_and_trains_its_own_copy(browsers, server):
    a_ctx, a = browsers()
    a.goto(server + "/playground?train.steps=200000")          # a long plan: it trains through the whole test
    settle(a)
    button(a, "Train").click()
    assert wait_for(lambda: query(a, "run"), timeout=30)
    assert wait_for(lambda: (page_step(a) or 0) > 0, timeout=60)
    run_id, key = query(a, "run"), secret(a_ctx)
    assert key and re.fullmatch(r"[0-9a-f]{32}", key), a_ctx.cookies()

    watch = offered_link(a, "pg_watch", "run=")
    share = offered_link(a, "pg_share", "train.seed=")
    assert parse_qs(urlparse(watch).query)["run"] == [run_id]
    assert "run=" not in share                                  # a share link stays config + seed
    assert key not in watch + share + href(a)                   # the secret is in no address

    # B opens the watch link: the same run, live, read-only
    b_ctx, b = browsers()
    b.goto(watch)
    settle(b, strict=False)
    assert wait_for(lambda: watched(b), timeout=40), "the watcher is not told it is watching"
    keyed_button(b, "pg_copy")                                  # "Make my own copy" is offered
    assert all(wait_for(lambda n=n: button(b, n).is_disabled(), timeout=20) for n in CONTROLS)
    assert secret(b_ctx) != key
    s1 = wait_for(lambda: page_step(b), timeout=30)
    assert wait_for(lambda: (page_step(b) or 0) > s1, timeout=40), "the watched run did not move on B's page"
    shot(b, "owner-01-watching.png")

    # a forged Pause from a third client on the copied address: refused, A keeps training
    forged = forged_click(watch, "pg_pause")
    assert forged["disabled"] and not forged["errors"], forged
    s2 = page_step(a)
    assert wait_for(lambda: (page_step(a) or 0) > s2, timeout=30), "A's run stopped after the forged Pause"
    assert a.get_by_text("paused").count() == 0

    # A's refresh keeps control
    a.reload()
    settle(a, strict=False)
    assert wait_for(lambda: query(a, "run") == run_id and page_step(a), timeout=40)
    assert not watched(a) and secret(a_ctx) == key
    button(a, "Pause").click()
    assert wait_for(lambda: a.get_by_text("paused").count() > 0, timeout=40)
    settle(a)
    time.sleep(1.0)
    paused_at = page_step(a)
    losses_a = wait_for(lambda: chart(a, "Losses").get("D loss", {}).get("x"), timeout=30)
    assert wait_for(lambda: page_step(b) == paused_at, timeout=40)       # the watcher sees the pause

    # B makes its own copy: a new run at A's step, B's controls are on, and it trains without touching A's
    keyed_button(b, "pg_copy").click()
    assert wait_for(lambda: query(b, "run") not in (None, run_id), timeout=40)
    assert wait_for(lambda: not watched(b), timeout=30)
    assert wait_for(lambda: page_step(b) == paused_at, timeout=30)
    assert wait_for(lambda: not button(b, "Train").is_disabled(), timeout=30)
    button(b, "Train").click()
    assert wait_for(lambda: (page_step(b) or 0) > paused_at + 20, timeout=60), "B's copy did not train"
    shot(b, "owner-02-own-copy.png")
    button(b, "Pause").click()
    assert wait_for(lambda: b.get_by_text("paused").count() > 0, timeout=40)
    a.reload()
    settle(a, strict=False)
    assert wait_for(lambda: page_step(a) == paused_at, timeout=40)
    assert wait_for(lambda: chart(a, "Losses").get("D loss", {}).get("x") == losses_a, timeout=30), \
        "A's curves changed"
    shot(a, "owner-03-owner-untouched.png")


def arena_step(page) -> int | None:
    return page.evaluate("() => { const e = document.querySelector('.ganae-arena-step');"
                         " return e ? Number(e.dataset.step) : null; }")


def arena_paused(page) -> bool:
    line = page.locator(".ganae-arena-step").first
    return line.count() > 0 and "paused" in line.locator("xpath=ancestor::p[1]").inner_text()


def test_an_arena_is_watched_read_only_and_copied(browsers, server):
    """Speed-independent: A pauses whenever a step count must hold still (ensembled arenas finish a 10,000-step
    plan within a minute on a quiet box), so every assertion compares exact step counts."""
    _, a = browsers()
    a.goto(server + "/arena?train.seed=0&steps=10000")
    settle(a, strict=False)
    keyed_button(a, "ar_start").click()
    assert wait_for(lambda: query(a, "arena"), timeout=60)
    arena_id = query(a, "arena")
    assert wait_for(lambda: (arena_step(a) or 0) > 0, timeout=60)
    keyed_button(a, "ar_pause").click()
    assert wait_for(lambda: arena_paused(a), timeout=40), "A's Pause did not pause its arena"
    watch = offered_link(a, "ar_watch", "arena=")

    _, b = browsers()
    b.goto(watch)
    settle(b, strict=False)
    assert wait_for(lambda: watched(b), timeout=40)
    for key in ("ar_pause", "ar_resume", "ar_step"):
        assert wait_for(lambda k=key: keyed_button(b, k).is_disabled(), timeout=20), key
    s1 = wait_for(lambda: arena_step(b), timeout=30)
    keyed_button(a, "ar_resume").click()                        # A trains on: B's page follows it live
    assert wait_for(lambda: (arena_step(b) or 0) > s1, timeout=40), "the watched arena did not move on B's page"
    keyed_button(a, "ar_pause").click()
    assert wait_for(lambda: arena_paused(a), timeout=40)
    assert wait_for(lambda: arena_paused(b), timeout=40), "B's page did not follow A's Pause"
    held = arena_step(a)
    assert held < 10000, f"A's arena finished its plan before it could be paused ({held})"
    shot(b, "owner-04-arena-watching.png")

    keyed_button(b, "ar_copy").click()
    assert wait_for(lambda: query(b, "arena") not in (None, arena_id), timeout=60)
    assert wait_for(lambda: not watched(b), timeout=30)
    assert wait_for(lambda: not keyed_button(b, "ar_step").is_disabled(), timeout=30)
    copied_at = arena_step(b)
    assert copied_at == held, f"the copy starts at {copied_at}, A's arena was paused at {held}"
    keyed_button(b, "ar_step").click()                          # +50 steps on B's copy
    assert wait_for(lambda: arena_step(b) == copied_at + 50, timeout=60)
    # A's arena is untouched by B's step and still A's own (no watching note, its Step works)
    a.reload()
    settle(a, strict=False)
    assert wait_for(lambda: arena_step(a) == held, timeout=40), f"A's arena moved to {arena_step(a)} from {held}"
    assert not watched(a)
    assert wait_for(lambda: not keyed_button(a, "ar_step").is_disabled(), timeout=30)
    keyed_button(a, "ar_step").click()
    assert wait_for(lambda: arena_step(a) == held + 50, timeout=60), f"A's Step gave {arena_step(a)}"
    shot(a, "owner-05-arena-owner-after-copy.png")

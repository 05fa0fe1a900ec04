"""The GAN Playground in a real browser: `streamlit run` + Debian's Chromium, driven by Playwright.

Reads what plotly actually drew (the plot divs' data) and compares it over time: training changes the loss
chart and the generated points, pausing freezes them, a reload finds the same run with its history.
Screenshots go to test-artifacts/ (look at them).
"""
from __future__ import annotations

import re
import time

import pytest

from e2e_support import button, chart, href, page_step, plots, settle, shot, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def viewport():
    return {"width": 1440, "height": 2000}     # the whole Playground (plane, diagram, charts) on one screenshot


def step_of(page) -> int | None:
    return wait_for(lambda: page_step(page), timeout=5)


def test_train_pause_reload(tab, server):
    page = tab
    page.goto(server + "/playground")
    settle(page)
    page.get_by_role("heading", name="GAN Playground").wait_for(timeout=60_000)
    real = wait_for(lambda: chart(page, "The real data").get("real"), timeout=40)
    assert real and len(real["x"]) > 100                        # the data is shown before any training
    shot(page, "playground-01-open.png")

    button(page, "Train").click()
    first = wait_for(lambda: len(chart(page, "Losses").get("D loss", {}).get("x", [])) > 0, timeout=60)
    assert first, "the loss chart never got a point after pressing Train"
    assert wait_for(lambda: "run=" in href(page), timeout=20)

    def frame():
        plane = chart(page, "Step")
        return (plane.get("generated", {}).get("x"), chart(page, "Losses").get("D loss", {}).get("x", []))

    gen1, loss1 = wait_for(lambda: (lambda f: f if f[0] and f[1] else None)(frame()), timeout=40)
    # training moves the generated points and lengthens the loss curve
    changed = wait_for(lambda: (lambda f: f if f[0] and f[0] != gen1 and f[1] and f[1][-1] > loss1[-1] else None)(
        frame()), timeout=60)
    assert changed, "the scatter and the loss chart did not change while training"
    assert any(k.startswith("D(x)") for k in plots(page)), f"the D output chart is missing: {list(plots(page))}"
    shot(page, "playground-02-training.png")

    button(page, "Pause").click()
    assert wait_for(lambda: page.get_by_text("paused").count() > 0, timeout=40)
    settle(page)
    time.sleep(0.5)
    step_a, (gen_a, loss_a) = step_of(page), frame()
    time.sleep(2.0)
    step_b, (gen_b, loss_b) = step_of(page), frame()
    assert step_a == step_b and step_a > 0
    assert gen_a == gen_b and loss_a == loss_b, "the plots kept changing after Pause"
    shot(page, "playground-03-paused.png")

    url = href(page)
    page.reload()
    settle(page)
    assert href(page) == url
    assert wait_for(lambda: step_of(page) == step_a, timeout=40), "the reloaded page shows another step"
    loss_c = wait_for(lambda: chart(page, "Losses").get("D loss", {}).get("x"), timeout=40)
    assert loss_c == loss_b, "the history did not survive the reload"
    shot(page, "playground-04-reloaded.png")

    button(page, "Step D").click()
    assert wait_for(lambda: step_of(page) == step_a + 1, timeout=40)
    settle(page)


def test_home_starts_the_default_run(tab, server):
    page = tab
    page.goto(server)
    settle(page)
    shot(page, "home.png")
    page.get_by_role("button", name=re.compile("Start the default run")).click()
    ok = wait_for(lambda: "/playground" in href(page) and "run=" in href(page), timeout=60)
    assert ok, f"the default run did not open the Playground with its run in the URL: {href(page)}"
    assert wait_for(lambda: len(chart(page, "Losses").get("G loss", {}).get("x", [])) > 0, timeout=60)
    shot(page, "home-02-default-run.png")
    button(page, "Pause").click()
    assert wait_for(lambda: page.get_by_text("paused").count() > 0, timeout=40)


def test_a_click_redraws_the_control_panel_not_the_settings_form(server):
    """Train / Pause / Step run the Playground's panel fragment alone: the server's answer to Pause is a fragment
    run that redraws the controls and the live frame, not the settings form and the explanation (a class's clicks
    were most of the pages' CPU). Spoken over Streamlit's websocket, as benchmarks/classroom.py's wire students do."""
    import asyncio
    import concurrent.futures
    import importlib
    import sys

    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from e2e_support import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    classroom = importlib.import_module("classroom")

    async def pause_frames() -> tuple[list, list]:
        st = classroom.Student(0, client="wire")
        frames: list[bytes] = []
        page = classroom.WirePage(st)
        await page.open(f"{server}/playground?train.steps=100000")
        first = await page.interact("start", "pg_play", ["training", "queued"], None)
        assert first and await page.wait_trained(60), st.errors
        real_on_frame = st.on_frame
        st.on_frame = lambda data: (frames.append(data), real_on_frame(data))
        page._stop_timers()                      # only the click's answer, not the live frame's timer
        await page.interact("pause", "pg_pause", ["paused"], None)
        await asyncio.sleep(1.0)
        await page.close()
        return [ForwardMsg.FromString(f) for f in frames], st.errors

    with concurrent.futures.ThreadPoolExecutor(1) as pool:     # (Playwright's sync API keeps a loop on this thread)
        msgs, errors = pool.submit(asyncio.run, pause_frames()).result(timeout=180)
    assert not errors, errors
    runs = [m for m in msgs if m.WhichOneof("type") == "new_session"]
    assert runs and all(m.metadata.run.fragment_ids for m in runs)          # fragment runs, no full run
    kinds = {m.delta.new_element.WhichOneof("type") for m in msgs
             if m.WhichOneof("type") == "delta" and m.delta.WhichOneof("type") == "new_element"}
    assert "button" in kinds                                                 # the control bar was redrawn
    assert not kinds & {"number_input", "selectbox", "radio"}, kinds     # the settings form was not


def test_the_server_sends_every_chart_whole_never_a_reference_to_the_browsers_cache(server):
    """Streamlit may answer a rerun with a reference to a message the browser says it has cached; a live page's
    fragment reruns race the browser's expiry of that cache, and a reference it no longer holds ends its connection
    ("Cached ForwardMsg MISS", seen in a class of 30 once live charts repeated their figure between snapshots). The
    server is configured to send every message whole (.streamlit/config.toml, global.minCachedMessageSize): a client
    that announces every hash it received, as the frontend does, gets no reference from two redraws of a paused run
    whose charts are the same."""
    import asyncio
    import concurrent.futures
    import importlib
    import sys

    from e2e_support import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    classroom = importlib.import_module("classroom")

    async def redraws() -> tuple[int, int, list]:
        st = classroom.Student(0, client="wire")
        page = classroom.WirePage(st)
        page.cached = set()
        await page.open(f"{server}/playground?train.steps=100000")
        assert await page.interact("start", "pg_play", ["training", "queued"], None)
        assert await page.wait_trained(60), st.errors
        await page.interact("pause", "pg_pause", ["paused"], None)
        for _ in range(2):                       # the whole page again: the same charts, the same messages
            await page._rerun()
            for _ in range(600):
                if page.finished.is_set():
                    break
                await asyncio.sleep(0.05)
        await page.close()
        return len(page.cached), page.refs, st.errors

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        announced, refs, errors = pool.submit(asyncio.run, redraws()).result(timeout=180)
    assert not errors, errors
    assert refs == 0 and announced == 0, (refs, announced)


# In the page: when the state line first shows `word` (benchmarks/classroom.py's SHOWS_JS, from a MutationObserver),
# every animation frame (a rAF loop), and every Plotly.react call with how many frames had run since the state line
# appeared and whether it draws a static (training) chart.
PAINT_ORDER_JS = """([shows, word]) => {
  const g = window.__order = {line: null, frames: 0, framesAtLine: null, reacts: []};
  const line = () => (0, eval)(shows)([[word], null]);
  new MutationObserver(() => { if (g.line === null && line()) { g.line = performance.now(); g.framesAtLine = g.frames; } })
    .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  const tick = () => { g.frames++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const P = window.Plotly, react = P.__react || P.react;
  P.__react = react;
  P.react = function () {
    g.reacts.push({line: g.line !== null || line(), framesSince: g.line === null ? -1 : g.frames - g.framesAtLine,
                   live: !!(arguments[3] && arguments[3].staticPlot)});
    return react.apply(this, arguments);
  };
}"""


def test_a_click_shows_its_state_before_the_charts_are_drawn(tab, server):
    """The first Train adds six charts to the page, and its state line is the page's first markdown with HTML, which
    Streamlit's browser code shows only once it has downloaded its renderer for that (a 190 KB chunk): the charts
    were drawn and the state line still missing (1.4 s after the click on a quiet machine, 8 s on a laptop as busy as
    benchmarks/classroom.py's). dashboard/runtime.py asks for the renderer when the page opens. At each
    Plotly.react that answers the click, the state line is in the page and an animation frame has run since it
    appeared; the same for Pause, whose answer redraws every chart (interactive again, no longer a static picture of
    a training run)."""
    import importlib
    import sys

    from e2e_support import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    shows = importlib.import_module("classroom").SHOWS_JS
    page = tab
    page.goto(server + "/playground")
    settle(page)
    wait_for(lambda: chart(page, "The real data").get("real"), timeout=40)
    for name, word in (("Train", "training"), ("Pause", "paused")):
        if name == "Pause":
            time.sleep(2)                    # a few frames of training
        page.evaluate(PAINT_ORDER_JS, [shows, word])
        button(page, name).click()
        # Pause's answer: the charts made interactive; a live frame already on its way may land first, static
        answers = (lambda o: [r for r in o["reacts"] if name == "Train" or not r["live"]])
        assert wait_for(lambda: len(answers(page.evaluate("() => window.__order"))) >= 2, timeout=60), \
            (name, page.evaluate("() => window.__order"))
        order = page.evaluate("() => window.__order")
        assert order["line"] is not None, (name, order)
        assert all(r["line"] and r["framesSince"] >= 1 for r in answers(order)), (name, order["reacts"])

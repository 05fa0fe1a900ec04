"""The GAN Playground in a real browser: `streamlit run` + Debian's Chromium, driven by Playwright.

Reads what plotly actually drew (the plot divs' data) and compares it over time: training changes the loss
chart and the generated points, pausing freezes them, a reload finds the same run with its history.
Screenshots go to test-artifacts/ (look at them).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# Every plotly chart: its title and, per trace, the decoded x / y arrays (a chart being replaced is listed first).
PLOTS_JS = """() => {
  const decode = (x) => {
    if (!x) return [];
    if (Array.isArray(x) || ArrayBuffer.isView(x)) return Array.from(x, Number);
    if (x.bdata) {
      const bin = atob(x.bdata), buf = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
      const T = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
                 u1: Uint8Array, u2: Uint16Array, u4: Uint32Array}[x.dtype];
      if (T) return Array.from(new T(buf.buffer), Number);
      if (x.dtype === 'i8') return Array.from(new BigInt64Array(buf.buffer), Number);
    }
    return [];
  };
  const out = [];
  for (const d of document.querySelectorAll('.js-plotly-plot')) {
    const title = (d.layout && d.layout.title && d.layout.title.text) || '';
    const stale = !!d.closest('[data-stale="true"]');
    out.push({title, stale, traces: (d.data || []).map(t => ({name: t.name || '', x: decode(t.x), y: decode(t.y)}))});
  }
  return out.sort((a, b) => Number(b.stale) - Number(a.stale));   // fresh charts last: they win below
}"""
STEP_JS = """() => { const e = document.querySelector('.ganae-step'); return e ? Number(e.dataset.step) : null; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "e2e-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'e2e-server.log'}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@pytest.fixture(scope="module")
def tab(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # tall enough that the whole Playground (plane, diagram, charts) is on one screenshot
        pg = browser.new_page(viewport={"width": 1440, "height": 2000})
        yield pg
        browser.close()


def settle(page, timeout: float = 60) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout * 1000)


def plots(page) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{title: {trace name: {"x": [...], "y": [...]}}} of the live charts (titles without markup)."""
    out = {}
    for p in page.evaluate(PLOTS_JS):
        title = re.sub(r"<[^>]+>", " ", p["title"]).strip()
        out[title] = {t["name"]: {"x": t["x"], "y": t["y"]} for t in p["traces"]}
    return out


def chart(page, prefix: str) -> dict[str, dict[str, list[float]]]:
    for title, traces in plots(page).items():
        if title.startswith(prefix):
            return traces
    return {}


def wait_for(cond, timeout: float = 30.0, every: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    return cond()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def step_of(page) -> int | None:
    return wait_for(lambda: page.evaluate(STEP_JS), timeout=5)


def href(page) -> str:
    """The address bar now (page.url is only refreshed while Playwright handles events)."""
    return page.evaluate("location.href")


def button(page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^\W*{name}$")).first


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

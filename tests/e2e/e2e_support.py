"""Helpers shared by the browser tests (plain functions; the fixtures are in conftest.py).

A real `streamlit run` server and Debian's Chromium (never a Playwright-downloaded browser), driven by Playwright.
Test modules import what they need: `from e2e_support import settle, wait_for, ...` (pytest puts this folder on
sys.path, as it holds no __init__.py).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# the step counter of a run: runtime.state_line() puts it in a data attribute
STEP_JS = """() => { const e = document.querySelector('.ganae-step'); return e ? Number(e.dataset.step) : null; }"""
ERRORS_SELECTOR = "[data-testid='stException'], [data-testid='stAlertContentError']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(log_path: Path, env: Mapping[str, str] | None = None,
                     start_timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run dashboard/server.py` (the Quickstart's server) on a free port with `env` added to this
    environment; yields its URL and kills the whole process group afterwards. Raises RuntimeError when it does not answer its health check."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **dict(env or {})},
        start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"streamlit did not start; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        log.close()


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll `cond` until it returns something truthy (returned) or `timeout` seconds pass (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    return cond()


def settle(page, timeout: float = 60.0, strict: bool = True, pause_ms: int = 0) -> None:
    """Wait until Streamlit's script is not running. `pause_ms` first gives a click time to start a rerun;
    strict=False tolerates a page whose live fragment keeps the script busy (the caller waits for what it
    needs)."""
    if pause_ms:
        page.wait_for_timeout(pause_ms)
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    try:
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout * 1000)
    except Exception:
        if strict:
            raise


def open_page(page, url: str, title: str) -> None:
    """Open the app at `url` and go to the page `title` through the sidebar navigation."""
    page.goto(url)
    settle(page, strict=False)
    page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    page.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
    settle(page, strict=False)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def href(page) -> str:
    """The address bar now (page.url is only refreshed while Playwright handles events)."""
    return page.evaluate("location.href")


def page_step(page) -> int | None:
    """The step counter the page shows now (None when it shows none)."""
    return page.evaluate(STEP_JS)


def button(page, name: str):
    """The first button labelled `name` (an icon before the label is allowed)."""
    return page.get_by_role("button", name=re.compile(rf"^\W*{name}$")).first


def keyed_button(page, key: str):
    """The visible button of widget `key` (a button with a tooltip renders a hidden twin for measuring)."""
    loc = page.locator(f".st-key-{key} [data-testid^='stBaseButton']:visible")
    assert wait_for(lambda: loc.count() >= 1, 30), f"no button '{key}'"
    return loc.first


def errors(page) -> list[str]:
    """Texts of the exception and error boxes on the page (a user should see none unless provoked)."""
    return [e.inner_text()[:300] for e in page.query_selector_all(ERRORS_SELECTOR)]


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


def charts_rebuilt(page, step: Callable[[], Any], frames: int = 2, timeout: float = 30.0) -> list[str]:
    """Titles of the page's charts that were thrown away and built anew (not updated in place) while `frames` new
    frames arrived (`step()`, the page's step counter, took that many new values). Live pages draw through
    dashboard/livechart.py, which keeps each chart's element and calls Plotly.react on it; st.plotly_chart
    rebuilds a chart whose figure changed."""
    page.evaluate("() => document.querySelectorAll('.js-plotly-plot').forEach((e) => { e.__ganaeKept = true; })")
    seen = [step()]

    def moved() -> bool:
        s = step()
        if s != seen[-1]:
            seen.append(s)
        return len(seen) > frames
    assert wait_for(moved, timeout), f"fewer than {frames} new frames arrived: {seen}"
    page.wait_for_timeout(500)                   # the charts of the last frame are drawn after its counter
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].filter((e) => !e.__ganaeKept)
                              .map((e) => (e.querySelector('.gtitle') || {textContent: '?'}).textContent)""")

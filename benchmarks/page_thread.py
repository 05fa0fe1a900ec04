"""How busy is a live page's thread in the browser while its run trains?

    .venv/bin/python benchmarks/page_thread.py                         # the Arena (vanilla vs recommended)
    .venv/bin/python benchmarks/page_thread.py --page "Image GAN" --seconds 30

Starts the Quickstart's server and Debian's Chromium (as the e2e tests do), opens the page, starts training (the Arena:
its "vanilla vs recommended" comparison with a plan it cannot finish; other pages: Train), waits `--warmup` seconds,
then records Chromium's CPU profile of the page for `--seconds` (CDP Profiler, 1 ms samples). Prints the share of
that time the page's main thread was busy (not idle) -- what a student's laptop pays to watch -- and the time spent
in Plotly.react per live chart (dashboard/livechart.py; charts drawn by st.plotly_chart are not counted there).
Run from another checkout's root to measure that version (the server and the pages are the working tree's).
Nothing asserts: it prints.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_support import (CHROMIUM, CHROMIUM_ARGS, button, href, keyed_button, open_page,  # noqa: E402
                         settle, streamlit_server)

WRAP = """() => { window.__react = {}; const P = window.Plotly; if (!P) return false; const orig = P.react;
  P.react = function (div, data, layout) { const t = performance.now(); const r = orig.apply(this, arguments);
    const k = String((layout && layout.title && (layout.title.text || layout.title)) || 'untitled').slice(0, 40)
      .replace(/Step [0-9,]+/, 'Step …');
    const done = () => { const a = window.__react[k] = window.__react[k] || [0, 0]; a[0] += performance.now() - t; a[1]++; };
    if (r && r.then) r.then(done); else done(); return r; }; return true; }"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--page", default="Stabilization Arena")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=2300)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    log = Path("/tmp") / "ganae-page-thread-server.log"
    with streamlit_server(log, {"GANAE_TEST": "1"}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": args.width, "height": args.height})
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        open_page(page, url, args.page)
        if args.page == "Stabilization Arena":
            keyed_button(page, "ar_load").click()
            settle(page, strict=False, pause_ms=300)
            page.goto(href(page).replace("steps=2000", "steps=200000"))
            settle(page, strict=False, pause_ms=300)
            keyed_button(page, "ar_start").click()
        else:
            button(page, "Train").click()
        time.sleep(args.warmup)
        wrapped = page.evaluate(WRAP)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
        cdp.send("Profiler.start")
        time.sleep(args.seconds)
        prof = cdp.send("Profiler.stop")["profile"]
        react = page.evaluate("() => window.__react || {}") if wrapped else {}
        browser.close()
    names = {n["id"]: n["callFrame"]["functionName"] for n in prof["nodes"]}
    spent: collections.Counter = collections.Counter()
    for sample, dt in zip(prof["samples"], prof["timeDeltas"]):
        spent[names[sample]] += dt
    total = sum(spent.values()) / 1e6
    idle = spent["(idle)"] / 1e6
    print(f"{args.page}: {total:.1f} s profiled, page thread busy {total - idle:.1f} s = {(total - idle) / total:.0%}")
    for title, (ms, n) in sorted(react.items(), key=lambda kv: -kv[1][0]):
        print(f"  Plotly.react {title!r}: {n} draws, {ms / max(n, 1):.0f} ms each, {ms / 1000:.1f} s in all")
    if not wrapped:
        print("  (no live chart component on this page: its charts are st.plotly_chart's)")


if __name__ == "__main__":
    main()

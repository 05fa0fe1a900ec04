"""How long a fresh server takes to show its first page, and each page the first time it is opened.

    .venv/bin/python benchmarks/first_load.py [--width 1440] [--again] [--visit-after 10] [--json out.json]

Starts Debian's Chromium, then its own `streamlit run dashboard/app.py` on a free port (benchmarks/classroom.py's
start_server), and times, from the moment the server process is started:
- `server up`: its health check answers;
- Home, opened at the root address: `drawn` = the page's title and its page links are on screen (something a
  user can read and click), `done` = Streamlit's script has finished (its sidebar status included).
Then it opens every page once through the sidebar navigation, in the order of the sidebar, in the same tab (what a
user does), each timed from the click: `drawn` = the page's own title (its h1) is on screen, `done` = the script
has finished. A page opened for the first time on a server pays for what it imports and builds on first use;
`--again` opens every page a second time (warm) for comparison.

Target (issue #20): every page `done` <= 3 s after the server is up, with something meaningful drawn at once.
Browser and server run on this machine; on a loaded machine the figures are noisy: say so with them.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classroom import ROOT, start_server, stop_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGET_S = 3.0
# JS: the page's h1 text, whether the script still runs, and how many page links the main area shows
PROBE = """() => {
  const h = document.querySelector('[data-testid="stMain"] h1');
  const app = document.querySelector('[data-testid="stApp"]');
  return {h1: h ? h.innerText.trim() : null,
          running: !app || app.getAttribute('data-test-script-state') !== 'notRunning',
          links: document.querySelectorAll('[data-testid="stMain"] [data-testid="stPageLink"]').length};
}"""


def wait(page, t0: float, drawn, timeout: float = 120.0, every: float = 0.02) -> tuple[float, float]:
    """(seconds from t0 until `drawn(probe)` first holds, seconds until the script has finished as well)."""
    t_drawn = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = page.evaluate(PROBE)
        now = time.monotonic()
        if t_drawn is None and drawn(p):
            t_drawn = now - t0
        if t_drawn is not None and not p["running"]:
            return t_drawn, now - t0
        time.sleep(every)
    raise TimeoutError(f"not drawn within {timeout:g} s (last: {page.evaluate(PROBE)})")


def open_each(page, titles: list[str]) -> list[dict]:
    rows = []
    for title in titles:
        before = page.evaluate(PROBE)["h1"]
        t0 = time.monotonic()
        page.locator("[data-testid='stSidebarNavLink']", has_text=re.compile(rf"{re.escape(title)}$")).first.click()
        drawn, done = wait(page, t0, lambda p: p["h1"] and p["h1"] != before)
        rows.append({"page": title, "drawn_s": round(drawn, 2), "done_s": round(done, 2)})
    return rows


def first_load(width: int = 1440, again: bool = False, visit_after: float = 0.0) -> dict:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        t0 = time.monotonic()
        proc, url = start_server({}, ROOT / "test-artifacts" / "first-load-server.log")
        try:
            up = time.monotonic() - t0
            time.sleep(visit_after)              # the first visitor comes this long after the server is up
            t0 += visit_after                    # (and Home is timed from then on)
            page.goto(url)
            drawn, done = wait(page, t0, lambda p: p["h1"] and p["links"] >= 8)
            home = {"page": "Home", "drawn_s": round(drawn, 2), "done_s": round(done, 2),
                    "drawn_after_up_s": round(drawn - up, 2), "done_after_up_s": round(done - up, 2)}
            titles = [t.strip().splitlines()[-1] for t in   # (a link's text starts with its icon's name)
                      page.locator("[data-testid='stSidebarNavLink']").all_inner_texts()]
            titles = [t for t in titles if t and t != "Home"] + ["Home"]
            first = open_each(page, titles)
            second = open_each(page, titles) if again else []
        finally:
            stop_server(proc)
            browser.close()
    return {"width": width, "server_up_s": round(up, 2), "visit_after_s": visit_after, "home": home, "first": first,
            "again": second}


def report(r: dict) -> str:
    h = r["home"]
    lines = [f"window {r['width']} px; server up {r['server_up_s']:.2f} s after start"
             + (f"; first visit {r['visit_after_s']:g} s after that" if r.get("visit_after_s") else ""),
             f"cold start -> Home drawn {h['drawn_s']:.2f} s, done {h['done_s']:.2f} s "
             f"(after the server was up: drawn {h['drawn_after_up_s']:.2f} s, done {h['done_after_up_s']:.2f} s)",
             "", f"{'first load of':<24}{'drawn s':>9}{'done s':>9}" + (f"{'again s':>9}" if r["again"] else "")]
    again = {a["page"]: a for a in r["again"]}
    for row in r["first"]:
        extra = f"{again[row['page']]['done_s']:>9.2f}" if row["page"] in again else ""
        flag = "" if row["done_s"] <= TARGET_S else f"   > {TARGET_S:g} s"
        lines.append(f"{row['page']:<24}{row['drawn_s']:>9.2f}{row['done_s']:>9.2f}{extra}{flag}")
    worst = max([h["done_after_up_s"]] + [row["done_s"] for row in r["first"]])
    lines.append(f"\nworst page done {worst:.2f} s (target <= {TARGET_S:g} s after the server is up)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=1440, help="browser window width in px")
    ap.add_argument("--again", action="store_true", help="open every page a second time (warm)")
    ap.add_argument("--visit-after", type=float, default=0.0,
                    help="seconds between the server up and the first visit (0: at once, the worst case; a lecturer "
                         "starts the server, then opens the browser)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    r = first_load(args.width, args.again, args.visit_after)
    print(report(r))
    print(f"machine: {load}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()

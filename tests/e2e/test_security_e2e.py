"""Links as an attacker writes them, opened in a real browser (`streamlit run` + Debian's Chromium): a payload of
HTML that runs script and markdown that makes a link and fetches an image, in every link parameter of every page.

A dialog handler records any alert (a script ran), a request handler any fetch of evil.example (a markdown image),
and the page's DOM is searched for live links, images and iframes made of the payload. Before the fix, an Arena
variant named `<iframe srcdoc="<script>parent.alert(...)</script>">` ran its script, and the problem sentence of
a link turned `[l](https://evil.example)` into a live link. Where a page quotes the payload back, it must show
it as text. Screenshots: test-artifacts/security-*.png.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

import pytest

import e2e_support as e2e
from dashboard.quote import ZWSP

pytestmark = pytest.mark.e2e

PAYLOAD = ('<iframe srcdoc="<script>parent.alert(1)</script>"></iframe> '
           '[l](https://evil.example) ![](https://evil.example/t.png)')
# every parameter some page reads from its URL (a config field, runs, arenas, checkpoints, Dirac, lessons, arena)
UNDOTTED = ("run", "arena", "checkpoint", "mode", "methods", "h", "steps", "theta0", "psi0", "dsteps", "lesson",
            "step", "advanced", "seeds", "variants")
LIVE = 'a[href*="evil.example"], img[src*="evil.example"], iframe[srcdoc], script'
LIVE_JS = f"""() => [...document.querySelectorAll('{LIVE}')]
  .filter(e => e.tagName !== 'SCRIPT' || e.textContent.includes('alert'))
  .map(e => e.outerHTML.slice(0, 120))"""


def evil(url: str) -> bool:
    """A request to the attacker's server (the page's own URL holds the name too, in its query)."""
    return (urlsplit(url).hostname or "").endswith("evil.example")


def links_to_try() -> list[tuple[str, dict[str, str], str | None]]:
    """(page, parameters, the text the page must show of the payload, or None). Every page gets the payload in
    every undotted parameter; a config field's value or its name on the training pages (a link's first bad field
    is the one reported, so each page gets one of the two); an Arena variant's name (the issue's link) and key."""
    every = {k: PAYLOAD for k in UNDOTTED}
    value = {"train.seed": "0", "data.name": PAYLOAD, **every}
    name = {"train.seed": "0", f"model.{PAYLOAD}": "1", **every}
    shown = '<iframe srcdoc="<script>parent.alert(1)'
    out = [(p, value, shown if p in ("latent", "dirac") else None)
           for p in ("home", "latent", "dirac", "checkpoints", "lessons")]
    out += [("playground", value, shown), ("ae-lab", name, shown), ("image-gan", value, shown)]
    out += [("arena", {"train.seed": "0", "variants": json.dumps({PAYLOAD: {"objective.r1": 2}})}, shown),
            ("arena", {"train.seed": "0", "variants": json.dumps({"v": {PAYLOAD: 1}})}, '<iframe srcdoc="<script>')]
    return out


def test_no_link_parameter_runs_script_links_or_fetches_on_any_page(server, tab):
    dialogs, fetched = [], []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.on("request", lambda r: fetched.append(r.url) if evil(r.url) else None)
    tab.route(evil, lambda route: route.abort())
    problems, echoed = [], 0
    for i, (page, params, echo) in enumerate(links_to_try()):
        tab.goto(f"{server}/{page}?{urlencode(params)}")
        e2e.settle(tab, timeout=60, strict=False)
        tab.wait_for_timeout(300)                           # an injected iframe's script would run by now
        live = tab.evaluate(LIVE_JS)
        shown = tab.locator("[data-testid='stMain']").inner_text()
        where = f"link {i}: /{page} with {', '.join(sorted(params)[:3])}…"
        if dialogs or fetched or live:
            problems.append(f"{where}: dialogs {dialogs}, fetched {fetched}, live elements {live}")
            e2e.shot(tab, f"security-{i}-{page}.png")
            dialogs.clear(), fetched.clear()
        if echo:
            if echo not in shown.replace(ZWSP, ""):
                problems.append(f"{where}: the payload is not shown as text")
            echoed += 1
        if "Traceback" in shown or tab.locator("[data-testid='stException']").count():
            problems.append(f"{where}: an exception is shown")
    e2e.shot(tab, "security-last.png")
    assert not problems, "\n".join(problems)
    assert echoed == 7

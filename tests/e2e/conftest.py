"""Fixtures of the browser tests: a Streamlit server per test module, one Chromium per module, a fresh tab
(browser context = its own Streamlit session) per test. Helper functions live in e2e_support.py.

What differs between modules is set by overriding a fixture in the module:
- `server_env` (module scope): extra environment variables for the server, e.g. a checkpoint folder;
- `viewport`: the window size of a tab.
Server logs go to test-artifacts/e2e-<module>-server.log, the last state of every test to
test-artifacts/<module>-last-<test>.png.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from e2e_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server


def _short(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_e2e")


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra environment of the module's server (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def server(request, server_env):
    """The URL of a `streamlit run dashboard/app.py` started for this module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api")
    log = ARTIFACTS / f"e2e-{_short(request.module.__name__)}-server.log"
    try:
        with streamlit_server(log, {"GANAE_TEST": "1", **server_env}) as url:
            yield url
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def chromium(server):
    """Debian's Chromium (never a browser Playwright downloads), one per test module."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    """The window of a tab (override in a module: tall enough that a whole page fits one screenshot)."""
    return {"width": 1440, "height": 1600}


@pytest.fixture
def tab(chromium, viewport, request):
    """A page in a fresh browser context; its final state is screenshotted (look at the artifacts)."""
    ctx = chromium.new_context(viewport=viewport, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    yield page
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{_short(request.module.__name__)}-last-{request.node.name}.png"),
                        full_page=True, timeout=20_000)
    except Exception:       # a screenshot is a courtesy; the test's verdict is already in
        pass
    ctx.close()

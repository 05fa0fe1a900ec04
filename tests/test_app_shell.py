"""The router (dashboard/app.py) and Home: Home is drawn before the heavy imports (issue #20, item 8: a fresh
server showed Streamlit's empty placeholder boxes for 8-10 s while torch and the run registry loaded)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")

# Home in a fresh interpreter in which torch cannot be imported: what Home draws cannot have waited for torch.
WITHOUT_TORCH = """
import importlib.abc, json, sys, time
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            time.sleep(1.0)                # a slow fresh import: Home must not wait for it
            raise ImportError("torch is not there (test)")
sys.meta_path.insert(0, NoTorch())
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
first = {"titles": [t.value for t in at.main.title], "links": len(at.main.get("page_link")),
         "buttons": [b.label for b in at.main.button], "exceptions": [e.value for e in at.exception],
         "sidebar": [c.value for c in at.sidebar.caption]}
later = []
for _ in range(50):                        # AppTest does not fire run_every: rerun as the fragment would
    time.sleep(0.1)
    later = [e.value for e in at.run().exception]
    if later:
        break
print(json.dumps({**first, "later": later}))
"""


def test_home_is_drawn_before_torch_is_imported():
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, APP], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["titles"] == ["ganae studio"]
    assert seen["links"] == 8                                   # one per page, all of them drawn
    assert seen["buttons"] == ["Start the default run"]
    # the engine loads in the background (dashboard/startup.py): the first run finishes, its sidebar says so ...
    assert seen["exceptions"] == [] and any("Starting the training engine" in c for c in seen["sidebar"])
    # ... and once that load has ended (here: failed), the next run imports on its own thread and shows why
    assert any("torch is not there" in e for e in seen["later"])


def test_a_page_opened_while_the_engine_starts_shows_its_title_first(monkeypatch):
    """Opened on a fresh server, a training page draws its title and says the engine is starting before it waits
    for torch (here the wait never ends: the script stops there, and what it drew before is what the user sees)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import startup
    at = AppTest.from_file(APP, default_timeout=60).run()
    monkeypatch.setattr(startup, "ready", lambda: False)
    monkeypatch.setattr(startup, "wait", st.stop)
    at.switch_page("views/playground.py").run()
    assert [t.value for t in at.main.title] == ["GAN Playground"]
    assert any("Starting the training engine" in i.value for i in at.main.info)
    assert not at.exception


def test_the_server_entry_starts_the_engine_before_any_visit(tmp_path):
    """`streamlit run dashboard/server.py` (the Quickstart) loads torch as the server starts, nobody visiting;
    `dashboard/app.py` alone would wait for the first visitor."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from e2e_support import streamlit_server
    with streamlit_server(tmp_path / "server.log") as url:
        assert url
        pid = int(subprocess.run(["pgrep", "-f", "-n", "streamlit run .*dashboard/server.py"], capture_output=True,
                                 text=True).stdout.split()[0])
        deadline = time.monotonic() + 60
        while "libtorch" not in Path(f"/proc/{pid}/maps").read_text():
            assert time.monotonic() < deadline, "torch was not loaded 60 s after the server started"
            time.sleep(0.2)

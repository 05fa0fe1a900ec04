"""One upload limit on every page: the server's `server.maxUploadSize`, shown and enforced the same by every
uploader (issue #20, item 5: Checkpoints said 50 MB while Latent Explorer and Arena took Streamlit's 200 MB)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")

# (page file, how to make its uploader appear, the uploader's key, a file name it takes)
UPLOADERS = [
    ("checkpoints.py", [], "ck_upload", "big.pt"),
    ("latent.py", [], "lx_file", "big.pt"),
    ("arena.py", [], "ar_own_csv", "big.csv"),
    ("playground.py", [("pg:data.name", "csv")], "pg_upload", "big.csv"),
    ("ae_lab.py", [("ae:data.name", "folder")], "ae:upload", "big.zip"),
    ("image_gan.py", [("ig:data.name", "folder")], "ig:upload", "big.zip"),
]
KEPT = ("lx_source", "ar_own", "pg_csv_path", "ae:values", "ig:values")   # where a page keeps what it took


@pytest.fixture
def server_limit():
    """Set the server's upload limit (MB) for a test; the configured value comes back afterwards."""
    old = st_config.get_option("server.maxUploadSize")
    yield lambda mb: st_config.set_option("server.maxUploadSize", mb)
    st_config.set_option("server.maxUploadSize", old)


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("GANAE_USER_CHECKPOINT_DIR", str(tmp_path / "user"))
    return tmp_path


def open_uploader(page: str, widgets: list[tuple[str, str]], key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"views/{page}").run()
    for wkey, value in widgets:
        at.selectbox(key=wkey).set_value(value).run()
    assert not at.exception, at.exception
    at.file_uploader(key=key)           # it is there
    return at


def test_the_configured_limit_is_the_servers_own_setting():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == 50


@pytest.mark.parametrize("page,widgets,key,name", UPLOADERS, ids=[u[2] for u in UPLOADERS])
def test_every_uploader_shows_the_servers_limit(page, widgets, key, name, server_limit, folders):
    server_limit(7)
    at = open_uploader(page, widgets, key)
    up = at.file_uploader(key=key)
    assert up.proto.max_upload_size_mb == 7            # the drop zone says "Limit 7MB per file"
    assert "MB" not in up.proto.label + up.proto.help     # no second figure in the label or the help


@pytest.mark.parametrize("page,widgets,key,name", UPLOADERS, ids=[u[2] for u in UPLOADERS])
def test_a_file_over_the_limit_is_one_sentence_and_is_not_used(page, widgets, key, name, server_limit, folders):
    server_limit(1)
    at = open_uploader(page, widgets, key)
    before = {k: at.session_state[k] for k in KEPT if k in at.session_state}
    shown = [e.value for e in at.error]                # (the Playground already asks for a CSV)
    big = b"x,y\n" + b"0.5,0.5\n" * 200_000                # 1.6 MB
    at.file_uploader(key=key).upload(name, big).run()
    assert not at.exception, at.exception
    texts = [e.value for e in at.error if e.value not in shown]
    assert len(texts) == 1, texts
    assert texts[0] == f"**{name}** is 1.5 MB, more than the 1 MB this server accepts: pick a smaller file.", texts[0]
    after = {k: at.session_state[k] for k in KEPT if k in at.session_state}
    assert after == before                             # the file was not taken
    assert not (folders / "user").exists() or not any((folders / "user").iterdir())

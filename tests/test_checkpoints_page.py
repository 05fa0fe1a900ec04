"""The Checkpoints page through AppTest: the gallery lists what is on disk (broken files with their sentence,
metric classifiers as such), uploads are checked before anything is written, a checkpoint opens as a run in the
page that shows it, and a run of this session is saved under a sanitised name."""
from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from dashboard import quote, runtime
from ganae import checkpoint
from ganae.config import RunConfig
from ganae.trainer import Trainer

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60
SMALL = {"data.n": 300, "train.batch_size": 16, "model.g_hidden": 16, "model.d_hidden": 16, "train.device": "cpu",
         "train.seed": 3}


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def ring_bytes(tmp_path_factory) -> bytes:
    """A small 2D GAN trained 7 steps, as a checkpoint file's bytes."""
    t = Trainer(RunConfig().with_updates(**SMALL))
    t.step(7)
    path = tmp_path_factory.mktemp("src") / "ring.pt"
    t.save(path, note="made by the test", metrics={"modes": 3.0, "hq": 0.42})
    return path.read_bytes()


@pytest.fixture
def folders(tmp_path, monkeypatch, ring_bytes):
    """checkpoints/ with one saved run; the user folder empty."""
    shipped = tmp_path / "checkpoints"
    shipped.mkdir()
    (shipped / "ring-small.pt").write_bytes(ring_bytes)
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(shipped))
    monkeypatch.delenv("GANAE_USER_CHECKPOINT_DIR", raising=False)
    return shipped, shipped / "user"


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/checkpoints.py").run()
    assert not at.exception, at.exception
    return at


def rows(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records") if at.dataframe else []


def user_files(user: Path) -> list[str]:
    return sorted(p.name for p in user.iterdir()) if user.exists() else []


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="ck_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


# ---- the gallery -----------------------------------------------------------------------------------------------
def test_lists_a_saved_checkpoint_with_its_steps_and_metrics(folders):
    shipped, _ = folders
    at = page()
    (row,) = rows(at)
    assert row["checkpoint"] == "ring-small.pt" and row["steps"] == 7 and row["data"] == "ring8"
    assert row["model"].startswith("GAN") and "modes 3" in row["metrics"] and "HQ 0.42" in row["metrics"]
    assert row["note"] == "made by the test" and row["saved"] and row["size"].endswith("kB")
    assert not at.warning and not at.error
    assert at.button(key="ck_open").label == "Open in GAN Playground"
    assert at.get("download_button")                                   # the file can be downloaded


def test_broken_files_are_listed_with_their_sentence(folders):
    shipped, _ = folders
    (shipped / "cut.pt").write_bytes((shipped / "ring-small.pt").read_bytes()[:3000])
    (shipped / "notes.pt").write_text("not a checkpoint")
    at = page()
    assert [r["checkpoint"] for r in rows(at)] == ["ring-small.pt"]
    warnings = " ".join(w.value for w in at.warning)
    assert "cut.pt" in warnings and "damaged or incomplete" in warnings
    assert "notes.pt" in warnings and "not a PyTorch checkpoint" in warnings


def test_a_metric_classifier_is_listed_as_such_and_cannot_be_opened(folders):
    shipped, _ = folders
    src = ROOT / "checkpoints" / "classifier-digits.pt"
    if not src.is_file():
        pytest.skip("no shipped classifier")
    shutil.copy(src, shipped / "classifier-digits.pt")
    at = page()
    by_name = {r["checkpoint"]: r for r in rows(at)}
    assert by_name["classifier-digits.pt"]["model"] == "metric classifier"
    at.selectbox(key="ck_pick").set_value(str(shipped / "classifier-digits.pt")).run()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert "ck_open" not in keys and "ck_explore" not in keys
    assert any("cannot be loaded into a page" in c.value for c in at.caption)


# ---- uploads ---------------------------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious(marker: Path) -> bytes:
    """A torch.save file that runs a shell command when unpickled by an unsafe load."""
    buf = io.BytesIO()
    torch.save({"format": "ganae-checkpoint", "schema": 1, "config": {}, "state": {}, "step": 0,
                "hook": _RunsCode(marker)}, buf)
    return buf.getvalue()


def test_malicious_truncated_foreign_and_oversized_uploads_are_refused_and_write_nothing(folders, ring_bytes,
                                                                                           tmp_path, monkeypatch):
    shipped, user = folders
    marker = tmp_path / "pwned"
    foreign = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, foreign)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "hello")
    cases = [
        ("evil.pt", malicious(marker), ["refused", "import or run code", "posix.system"]),
        ("cut.pt", ring_bytes[: len(ring_bytes) // 2], ["damaged or incomplete"]),
        ("weights.pt", foreign.getvalue(), ["not a ganae checkpoint", "plain state_dict"]),
        ("archive.pt", zipped.getvalue(), ["zip archive but not a PyTorch checkpoint"]),
        ("empty.pt", b"", ["empty"]),
        ("photo.pt", b"\x89PNG\r\n\x1a\n" + b"0" * 100, ["not a PyTorch checkpoint"]),
    ]
    at = page()
    for name, data, words in cases:
        upload(at, name, data)
        assert len(at.error) == 1, name
        text = at.error[0].value
        assert text.startswith(f"**{name}** was not accepted.") and text.rstrip().endswith((".", ".)")), text
        for w in words:
            assert w in text, (name, text)
        assert "Traceback" not in text
    assert not marker.exists()                                         # the code never ran
    old = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)                   # the server's limit, 1 MB
    try:
        at = page()
        upload(at, "big.pt", ring_bytes + b"\0" * 1_200_000)
    finally:
        st_config.set_option("server.maxUploadSize", old)
    assert at.error[0].value.startswith("**big.pt** is 1.") and "more than the 1 MB" in at.error[0].value
    assert "pick a smaller file" in at.error[0].value
    assert user_files(user) == []                                      # nothing was written
    assert [r["checkpoint"] for r in rows(at)] == ["ring-small.pt"]


def test_a_checkpoint_whose_config_is_not_valid_here_is_refused(folders, ring_bytes):
    _, user = folders
    payload = checkpoint.load(ring_bytes)
    payload["config"]["model"]["family"] = "diffusion"
    buf = io.BytesIO()
    torch.save(payload, buf)
    at = page()
    upload(at, "future.pt", buf.getvalue())
    assert "configuration is not valid" in at.error[0].value and "model.family" in at.error[0].value
    assert user_files(user) == []


def test_a_valid_upload_is_kept_and_appears(folders, ring_bytes):
    _, user = folders
    at = page()
    upload(at, "../../My ring!.pt", ring_bytes)
    assert not at.error and len(at.success) == 1
    assert "step 7" in at.success[0].value and "My-ring.pt" in at.success[0].value
    assert user_files(user) == ["My-ring.pt"]
    listed = {(r["folder"], r["checkpoint"]): r for r in rows(at)}
    assert listed[("checkpoints/user/", "My-ring.pt")]["steps"] == 7
    at.run()                                                           # a rerun does not store it again
    assert user_files(user) == ["My-ring.pt"]
    assert checkpoint.load(user / "My-ring.pt")["note"] == "made by the test"


# ---- opening and saving ----------------------------------------------------------------------------------------
def test_open_in_page_starts_a_run_from_the_checkpoint(folders, ring_bytes):
    at = page()
    at.button(key="ck_open").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["GAN Playground"]
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    r = runtime.registry().get(run_id)
    assert r is not None and r.status().step == 7 and r.status().state in ("idle", "paused")
    saved = checkpoint.load(ring_bytes)
    assert r.cfg == RunConfig.from_dict(saved["config"])
    weights = r.state_dict()
    for k, v in saved["state"]["model"].items():
        assert torch.equal(weights[k].cpu(), v), k                      # the checkpoint's weights, not fresh ones
    snap = r.snapshot()
    assert snap.step == 7 and list(snap.history["step"]) == saved["history"]["steps"]
    r.step(2, owner=at.session_state[runtime.OWNER_KEY])                # and it trains on from there
    assert r.status().step == 9
    runtime.registry().remove(run_id)


def test_explore_opens_the_latent_explorer_on_it(folders):
    at = page()
    at.button(key="ck_explore").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Latent Explorer"]
    assert at.session_state["lx_source"].startswith("run:")
    runtime.registry().remove(at.session_state["lx_source"][4:])


def test_save_a_run_of_this_session_under_a_sanitised_name(folders, tmp_path):
    shipped, user = folders
    at = page()
    assert any("No run is open" in c.value for c in at.caption)
    at.switch_page("views/playground.py").run()
    at.button(key="pg_step").click().run()                            # creates the run and trains one step
    assert not at.exception
    at.switch_page("views/checkpoints.py").run()
    at.button(key="ck_save").click().run()                            # no name yet
    assert "Type a name" in at.error[0].value and user_files(user) == []
    at.text_input(key="ck_save_name").input("../../outside/../my run").run()
    at.button(key="ck_save").click().run()
    assert not at.error, at.error[0].value
    assert user_files(user) == ["outside-my-run.pt"] and not (tmp_path / "outside").exists()
    assert "tidied" in at.success[0].value
    assert checkpoint.load(user / "outside-my-run.pt")["step"] == 1
    at.button(key="ck_save").click().run()                            # the same name again
    assert "already a checkpoint named" in at.error[0].value
    at.checkbox(key="ck_save_replace").check().run()
    at.button(key="ck_save").click().run()
    assert not at.error and user_files(user) == ["outside-my-run.pt"]
    assert ("checkpoints/user/", "outside-my-run.pt") in {(r["folder"], r["checkpoint"]) for r in rows(at)}
    for rid in list(runtime.registry().ids()):
        runtime.registry().remove(rid)


# ---- odd files (issue #21) -------------------------------------------------------------------------------------
def crafted(ring_bytes: bytes, **changes) -> bytes:
    """The ring checkpoint with payload fields changed (what `save` would refuse or never write)."""
    payload = checkpoint.load(ring_bytes)
    for key, value in changes.items():
        *path, last = key.split(".")
        d = payload
        for k in path:
            d = d[k]
        d[last] = value
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def test_a_config_number_past_float_range_is_refused_on_upload(folders, ring_bytes):
    _, user = folders
    at = page()
    upload(at, "huge.pt", crafted(ring_bytes, **{"config.optim.g_lr": 10**400}))     # OverflowError before
    assert len(at.error) == 1 and "huge.pt" in at.error[0].value
    assert "configuration is not valid" in at.error[0].value and "optim.g_lr" in at.error[0].value
    assert user_files(user) == []


def test_one_odd_file_in_the_folder_does_not_break_the_listing(folders, ring_bytes):
    """10**400 in its config and metrics, a note of markdown: listed, the others stay usable, nothing is live."""
    shipped, _ = folders
    (shipped / "a-huge.pt").write_bytes(crafted(ring_bytes, **{
        "config.optim.g_lr": 10**400, "metrics": {"modes": 10**400, "hq": 0.5},
        "note": "[x](https://evil.example) ![](https://evil.example/t.png)"}))
    at = page()
    assert not at.exception, at.exception
    by_name = {r["checkpoint"]: r for r in rows(at)}
    assert set(by_name) == {"a-huge.pt", "ring-small.pt"}
    assert by_name["a-huge.pt"]["model"] == "unknown model" and by_name["a-huge.pt"]["metrics"] == "HQ 0.5"
    assert by_name["ring-small.pt"]["steps"] == 7
    at.selectbox(key="ck_pick").set_value(str(shipped / "a-huge.pt")).run()
    assert not at.exception
    note = next(c.value for c in at.caption if "evil.example" in c.value)
    assert note == quote.md("[x](https://evil.example) ![](https://evil.example/t.png)")
    assert "](" not in note.replace(r"\](", "") and "https://" not in note
    assert any("not valid in this version" in c.value for c in at.caption)
    at.selectbox(key="ck_pick").set_value(str(shipped / "ring-small.pt")).run()
    assert at.button(key="ck_open").label == "Open in GAN Playground"


def test_weights_that_do_not_fit_their_config_are_refused_before_they_land(folders, ring_bytes):
    _, user = folders
    at = page()
    upload(at, "misfit.pt", crafted(ring_bytes, **{"config.model.g_hidden": 24}))    # weights are 16 wide
    assert len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("**misfit.pt** was not accepted.") and "weights do not fit" in text
    assert user_files(user) == []


def test_an_uploaded_file_name_is_quoted(folders, ring_bytes):
    at = page()
    upload(at, "[x](https:evil.example).pt", b"not a checkpoint")
    assert at.error[0].value.startswith(r"**\[x\](https:evil.example).pt** was not accepted.")


def test_stale_temp_files_of_killed_saves_are_removed_when_the_page_lists(folders):
    shipped, _ = folders
    stale, fresh = shipped / ".ring.pt.abc123.tmp", shipped / ".ring.pt.def456.tmp"
    stale.write_bytes(b"half a checkpoint")
    fresh.write_bytes(b"a save in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    st.cache_resource.clear()                           # a fresh server process
    page()
    assert not stale.exists() and fresh.exists()

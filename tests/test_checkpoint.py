"""Checkpoint files: round trip, safe load (no code runs), damaged / foreign / newer files, atomic save."""
from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import torch

from ganae import checkpoint as ckpt
from ganae.checkpoint import CheckpointError

REPO = Path(__file__).resolve().parents[1]


# ---- helpers ---------------------------------------------------------------------------------------
def realistic_payload() -> dict:
    """What a Trainer saves: nets, Adam after a few steps, RNG states, history, metrics."""
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    d = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(list(g.parameters()) + list(d.parameters()), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        opt.zero_grad()
        d(g(torch.randn(8, 2))).mean().backward()
        opt.step()
    gen = torch.Generator().manual_seed(42)
    torch.randn(5, generator=gen)
    return {
        "config": {"model": {"family": "gan", "latent_dim": 2}, "train": {"seed": 0}},
        "state": {"g": g.state_dict(), "d": d.state_dict()},
        "optim": {"gd": opt.state_dict()},
        "history": {"loss_d": [1.0, 0.9, 0.8], "loss_g": [0.7, 0.75, 0.72], "step": [1.0, 2.0, 3.0]},
        "step": 3,
        "rng": {"noise": gen.get_state(), "torch": torch.get_rng_state()},
        "metrics": {"modes": 7, "hq": 0.91},
        "note": "ring, ns loss",
        "created": "2025-01-01T12:00:00+00:00",
    }


def assert_same(a, b, where="payload") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def ganae_like(**over) -> dict:
    """A payload written with plain torch.save, to craft files `save` would never write."""
    return {"format": ckpt.FORMAT, "schema": ckpt.SCHEMA, "config": {}, "state": {}, "step": 0, **over}


def write_torch(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


# ---- round trip --------------------------------------------------------------------------------------
def test_round_trip_of_a_realistic_payload(tmp_path):
    payload = realistic_payload()
    target = tmp_path / "runs" / "deep" / "ring.pt"
    assert ckpt.save(target, payload) == target            # parent folders are created
    assert "schema" not in payload and "format" not in payload  # caller's dict untouched

    for src in (target, str(target), target.read_bytes(), io.BytesIO(target.read_bytes())):
        out = ckpt.load(src)
        assert out["schema"] == ckpt.SCHEMA and out["format"] == "ganae-checkpoint"
        assert_same(payload, {k: v for k, v in out.items() if k not in ("schema", "format")})
    with open(target, "rb") as f:
        assert ckpt.load(f)["step"] == 3


def test_loaded_optimizer_and_generator_states_are_usable(tmp_path):
    payload = realistic_payload()
    out = ckpt.load(ckpt.save(tmp_path / "x.pt", payload))

    g = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    d = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1))
    g.load_state_dict(out["state"]["g"])
    d.load_state_dict(out["state"]["d"])
    opt = torch.optim.Adam(list(g.parameters()) + list(d.parameters()), lr=0.1)
    opt.load_state_dict(out["optim"]["gd"])
    assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 1e-3
    assert int(opt.state[opt.param_groups[0]["params"][0]]["step"]) == 3

    a = torch.Generator().manual_seed(0)
    a.set_state(payload["rng"]["noise"])
    b = torch.Generator().manual_seed(0)
    b.set_state(out["rng"]["noise"])
    assert torch.equal(torch.randn(4, generator=a), torch.randn(4, generator=b))


@dataclass
class _Cfg:
    x: int = 1


@pytest.mark.parametrize("bad", [_Cfg(), torch.nn.Linear(1, 1), object()], ids=["dataclass", "module", "object"])
def test_save_refuses_what_a_safe_load_would_refuse(tmp_path, bad):
    target = tmp_path / "x.pt"
    with pytest.raises(TypeError, match=r"metrics.*'fid'"):
        ckpt.save(target, ganae_like(metrics={"fid": bad}))
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_numpy_scalars(tmp_path):
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match="numpy"):
        ckpt.save(tmp_path / "x.pt", ganae_like(metrics={"fid": np.float64(1.5)}))
    assert list(tmp_path.iterdir()) == []


# ---- unsafe and broken files ------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _evil(kind: str, marker: Path):
    if kind == "exec":
        return _RunsCode(exec, f"open({str(marker)!r}, 'w').write('pwned')")
    return _RunsCode(os.system, f"touch '{marker}'")


@pytest.mark.parametrize("kind", ["exec", pytest.param("os.system", marks=pytest.mark.skipif(
    os.name != "posix", reason="shell command"))])
def test_malicious_pickle_is_refused_without_side_effect(tmp_path, kind):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    write_torch(evil, ganae_like(config=_evil(kind, marker)))  # looks like ours apart from the payload

    for src in (evil, evil.read_bytes(), io.BytesIO(evil.read_bytes())):
        with pytest.raises(CheckpointError) as e:
            ckpt.load(src)
        msg = str(e.value)
        assert "import or run code" in msg and "Traceback" not in msg and "\n" not in msg
        assert "exec" in msg or "system" in msg
        assert not marker.exists()
    listed = ckpt.list_checkpoints(tmp_path)
    assert "import or run code" in listed[0]["error"] and not marker.exists()

    # the file really is malicious: an unsafe load runs the code
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_truncated_file_is_refused(tmp_path):
    good = ckpt.save(tmp_path / "good.pt", realistic_payload())
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 10):
        bad = tmp_path / "cut.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="damaged or incomplete"):
            ckpt.load(bad)


def test_corrupt_pickle_inside_a_valid_zip_is_refused(tmp_path):
    src = ckpt.save(tmp_path / "good.pt", ganae_like())
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info)
            zout.writestr(info, body[: len(body) // 2] if info.filename.endswith("data.pkl") else body)
    with pytest.raises(CheckpointError):
        ckpt.load(bad)


def test_random_bytes_are_refused(tmp_path):
    rnd = random.Random(0)
    bad = tmp_path / "noise.pt"
    bad.write_bytes(rnd.randbytes(4096))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        ckpt.load(bad)
    bad.write_bytes(b"PK\x03\x04" + rnd.randbytes(4096))  # zip magic, garbage after it
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        ckpt.load(bad)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        ckpt.load(rnd.randbytes(100))


def test_a_zip_that_is_not_a_torch_file_is_refused(tmp_path):
    z = tmp_path / "photos.pt"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="zip archive but not a PyTorch checkpoint"):
        ckpt.load(z)


def test_empty_and_missing_files_are_refused(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        ckpt.load(empty)
    with pytest.raises(CheckpointError, match="empty"):
        ckpt.load(b"")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        ckpt.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="folder"):
        ckpt.load(tmp_path)


def test_foreign_torch_files_are_refused(tmp_path):
    sd = write_torch(tmp_path / "resnet.pt", torch.nn.Linear(3, 2).state_dict())
    with pytest.raises(CheckpointError, match="not a ganae checkpoint.*state_dict"):
        ckpt.load(sd)
    t = write_torch(tmp_path / "tensor.pt", torch.ones(3))
    with pytest.raises(CheckpointError, match="not a ganae checkpoint"):
        ckpt.load(t)
    other = write_torch(tmp_path / "other.pt", {"format": "something-else", "schema": 1, "config": {},
                                                 "state": {}, "step": 0})
    with pytest.raises(CheckpointError, match="not a ganae checkpoint"):
        ckpt.load(other)


def test_newer_schema_is_refused(tmp_path):
    f = write_torch(tmp_path / "future.pt", ganae_like(schema=ckpt.SCHEMA + 1))
    with pytest.raises(CheckpointError, match="newer ganae"):
        ckpt.load(f)
    ok = write_torch(tmp_path / "now.pt", ganae_like())
    assert ckpt.load(ok)["schema"] == ckpt.SCHEMA


@pytest.mark.parametrize("drop", ["config", "state", "step"])
def test_missing_required_keys_are_refused(tmp_path, drop):
    payload = ganae_like()
    del payload[drop]
    f = write_torch(tmp_path / "partial.pt", payload)
    with pytest.raises(CheckpointError, match=f"missing '{drop}'"):
        ckpt.load(f)


def test_oversize_is_refused_before_reading(tmp_path, monkeypatch):
    f = ckpt.save(tmp_path / "big.pt", realistic_payload())
    data = f.read_bytes()

    def must_not_read(*a, **k):
        raise AssertionError("the file was read")

    class NoRead(io.BytesIO):
        def read(self, *a):
            raise AssertionError("the stream was read")

    monkeypatch.setattr(torch, "load", must_not_read)
    monkeypatch.setattr(ckpt, "open", must_not_read, raising=False)  # shadows builtins.open in the module
    for src in (f, data, NoRead(data)):
        with pytest.raises(CheckpointError, match="more than"):
            ckpt.load(src, max_bytes=100)


def test_zip_that_unpacks_past_the_limit_is_refused(tmp_path):
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 1_000_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(CheckpointError, match="unpacks to"):
        ckpt.load(bomb, max_bytes=100_000)


# ---- atomic save ------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["torch.save", "os.replace", "fsync"])
def test_failed_save_leaves_previous_file_and_no_temp(tmp_path, monkeypatch, where):
    target = ckpt.save(tmp_path / "run.pt", ganae_like(step=1))
    before = target.read_bytes()

    def half_write(obj, f, *a, **k):
        f.write(before[: len(before) // 2])
        raise OSError("disk full")

    def boom(*a, **k):
        raise OSError("boom")

    if where == "torch.save":
        monkeypatch.setattr(torch, "save", half_write)
    elif where == "os.replace":
        monkeypatch.setattr(os, "replace", boom)
    else:
        monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        ckpt.save(target, ganae_like(step=2, note="x" * 1000))
    monkeypatch.undo()

    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
    assert ckpt.load(target)["step"] == 1


def test_save_keeps_the_mode_of_a_new_file_readable(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX modes")
    target = ckpt.save(tmp_path / "m.pt", ganae_like())
    assert target.stat().st_mode & 0o777 == 0o644


_KILL_CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, sys.argv[1])
    from ganae.checkpoint import save
    i = 0
    while True:
        save(sys.argv[2], {"config": {}, "state": {"w": {"x": torch.full((8_000_000,), float(i))}}, "step": i})
        i += 1
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_leaves_a_loadable_file(tmp_path):
    target = tmp_path / "live.pt"
    child = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, str(REPO), str(target)])
    caught = None
    try:
        deadline = time.monotonic() + 30
        while not target.exists():                   # the first save has completed
            assert child.poll() is None and time.monotonic() < deadline, "the saving child stopped"
            time.sleep(0.005)
        while caught is None:                        # a later save is writing its temp file: kill it now
            assert child.poll() is None and time.monotonic() < deadline, "no temp file seen"
            for p in tmp_path.glob(".live.pt.*.tmp"):
                try:
                    if p.stat().st_size > 1_000_000:
                        child.send_signal(signal.SIGKILL)
                        caught = p
                        break
                except FileNotFoundError:
                    pass
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert caught.exists(), "the kill should land mid-write, leaving the temp file"
    out = ckpt.load(target)                          # the old or the new version, complete
    x = out["state"]["w"]["x"]
    assert x.numel() == 8_000_000 and bool((x == float(out["step"])).all())
    assert [e["name"] for e in ckpt.list_checkpoints(tmp_path)] == ["live"]  # temp files are not listed


# ---- gallery ----------------------------------------------------------------------------------------
def test_inspect_and_list_checkpoints(tmp_path):
    ckpt.save(tmp_path / "b_good.pt", realistic_payload())
    ckpt.save(tmp_path / "c_bare.pt", ganae_like(step=7))
    good = (tmp_path / "b_good.pt").read_bytes()
    (tmp_path / "a_broken.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "sub").mkdir()
    ckpt.save(tmp_path / "sub" / "nested.pt", ganae_like())

    info = ckpt.inspect(tmp_path / "b_good.pt")
    assert info["step"] == 3 and info["config"]["model"]["family"] == "gan"
    assert info["metrics"] == {"modes": 7, "hq": 0.91} and info["note"] == "ring, ns loss"
    assert info["size_bytes"] == len(good) and info["path"] == str(tmp_path / "b_good.pt")
    assert datetime.fromisoformat(info["modified"]).tzinfo is not None

    rows = ckpt.list_checkpoints(tmp_path)
    assert [Path(r["path"]).name for r in rows] == ["a_broken.pt", "b_good.pt", "c_bare.pt"]
    broken, ok, bare = rows
    assert "damaged or incomplete" in broken["error"] and "config" not in broken
    assert "error" not in ok and ok["step"] == 3
    assert bare["metrics"] == {} and bare["note"] == "" and bare["step"] == 7
    assert ckpt.list_checkpoints(tmp_path / "missing") == []


# ---- odd files (issue #21) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [-1, 10**13, 10**400], ids=["negative", "10**13", "10**400"])
def test_an_impossible_step_count_is_a_damaged_file(tmp_path, step):
    p = write_torch(tmp_path / "s.pt", ganae_like(step=step))
    with pytest.raises(CheckpointError, match="of the wrong type; it is damaged"):
        ckpt.load(p)


def test_the_gallery_summary_keeps_only_printable_metrics(tmp_path):
    p = write_torch(tmp_path / "m.pt", ganae_like(metrics={"modes": 10**400, "hq": 0.5, "kl": float("nan"),
                                                           "js": True, "fd": "x", "recall": 3}))
    assert ckpt.inspect(p)["metrics"] == {"hq": 0.5, "recall": 3}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_an_unreadable_file_is_listed_as_broken_beside_the_others(tmp_path):
    ckpt.save(tmp_path / "a.pt", ganae_like(step=1))
    locked = ckpt.save(tmp_path / "b.pt", ganae_like(step=2))
    locked.chmod(0)
    try:
        rows = ckpt.list_checkpoints(tmp_path)
    finally:
        locked.chmod(0o644)
    assert [r["name"] for r in rows] == ["a", "b"]
    assert rows[0]["step"] == 1 and "could not be read" in rows[1]["error"]


def test_stale_temp_files_are_removed_and_a_save_in_progress_is_not(tmp_path):
    ckpt.save(tmp_path / "run.pt", ganae_like())
    stale = tmp_path / ".run.pt.k1ll3d.tmp"
    fresh = tmp_path / ".run.pt.wr1t1ng.tmp"
    other = tmp_path / "notes.tmp"                       # not a hidden temp file of a save
    for p in (stale, fresh, other):
        p.write_bytes(b"x" * 100)
    old = time.time() - 2 * ckpt.STALE_TMP_S
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert ckpt.remove_stale_temp(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.pt.wr1t1ng.tmp", "notes.tmp", "run.pt"]
    assert ckpt.remove_stale_temp(tmp_path / "missing") == []


def _trained_payload(**cfg) -> dict:
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    t = Trainer(RunConfig().with_updates(**{"data.n": 200, "train.batch_size": 16, "model.g_hidden": 16,
                                            "model.d_hidden": 16, "train.device": "cpu", **cfg}))
    t.step(1)
    return t.payload()


def assert_cut_at_a_word(e: pytest.ExceptionInfo) -> None:
    """The reason in brackets is the original error's text, cut at a word boundary (it was cut mid-word)."""
    text, full = str(e.value), str(e.value.__context__)
    cut = text[text.index("(") + 1: -1]
    assert len(full) > 200 and cut.endswith("…") and len(cut) <= 200
    head = cut[:-1]
    assert full.startswith(head) and full[len(head)] in " ,;:"


def test_weights_are_checked_against_their_config_without_loading_the_data():
    from ganae.trainer import check_weights
    payload = _trained_payload()
    check_weights(payload)                                     # fits
    payload["config"]["model"]["g_hidden"] = 24
    with pytest.raises(CheckpointError, match="weights do not fit the model its config describes") as e:
        check_weights(payload)
    assert_cut_at_a_word(e)
    payload["config"]["data"] = {"name": "folder", "path": "/nowhere/at/all.zip"}   # data this server lacks
    with pytest.raises(CheckpointError, match="weights do not fit"):
        check_weights(payload)                                 # a shape check, not a DataError


def test_the_misfit_sentence_of_from_payload_ends_at_a_word():
    from ganae.trainer import Trainer
    payload = _trained_payload()
    payload["config"]["model"]["d_hidden"] = 40
    with pytest.raises(CheckpointError, match="weights do not fit") as e:
        Trainer.from_payload(payload, device="cpu")
    assert_cut_at_a_word(e)


def test_an_ac_gan_checkpoint_is_checked_with_its_class_count():
    from ganae.trainer import check_weights
    payload = _trained_payload(**{"data.name": "digits", "model.arch": "mlp", "tricks.ac": True,
                                  "model.latent_dim": 4, "train.n_fixed": 8})
    check_weights(payload)                                     # 10 classes, read from the weights
    payload["state"]["model"] = {k: v for k, v in payload["state"]["model"].items() if "aux" not in k}
    with pytest.raises(CheckpointError, match="weights do not fit"):
        check_weights(payload)

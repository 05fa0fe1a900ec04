"""`python -m ganae`: train / eval / dry-run, and sentences (exit code 2) instead of tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ganae.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_builds_trains_saves_and_reloads(capsys):
    assert main(["train", "--preset", "digits-vae", "--dry-run", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 2 and "test_mse" in out


def test_train_then_eval_reproduces_the_recorded_metrics(tmp_path, capsys):
    path = tmp_path / "ring.pt"
    assert main(["train", "--set", "model.g_hidden=32", "--set", "model.d_hidden=32", "--steps", "60",
                 "--out", str(path), "--quiet"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert path.is_file() and trained["step"] == 60
    assert main(["eval", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["matches_recorded"] is True
    assert report["metrics"]["js"] == pytest.approx(trained["js"])


@pytest.mark.parametrize("argv, words", [
    (["train", "--set", "objective.loss=foo"], "objective.loss: 'foo' is not one of"),
    (["train", "--set", "optim.g_lr"], "--set expects section.field=value"),
    (["train", "--preset", "nope"], "not a preset"),
    (["train", "--set", "data.name=mnist", "--set", "data.root=/nonexistent", "--dry-run"], "MNIST"),
    (["eval", "/nonexistent.pt"], "error:"),
])
def test_user_errors_are_one_sentence_with_exit_code_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_module_entry_point_runs_as_a_subprocess(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ganae", "presets"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "ring8-recommended" in r.stdout


@pytest.mark.parametrize("content, words", [
    pytest.param(b'{"optim": {"g_lr": 1' + b"0" * 400 + b"}}", "optim.g_lr: a number of about 401 digits is too large",
                 id="int-past-float-range"),                                      # OverflowError before
    pytest.param(b'{"optim": {"g_lr": ' + b"9" * 5000 + b"}}", "a number too long or nesting too deep",
                 id="5000-digit-int"),                                            # ValueError from json
    pytest.param(b'{"optim": {"g_lr": 0.1', "is not valid JSON (Expecting ',' delimiter at line 1",
                 id="truncated"),                                                  # JSONDecodeError
    pytest.param(b"[1, 2]", "holds a JSON list; it must be an object of sections", id="a-list"),  # AttributeError
    pytest.param(b"\xff\xfe{\x00", "is not UTF-8 text", id="not-utf-8"),                 # UnicodeDecodeError
    pytest.param(b"[" * 100_000, "nesting too deep", id="deep"),                        # RecursionError
    pytest.param(b'{"optim": [1]}', "optim: expected a mapping of fields", id="a-section-that-is-a-list"),
])
def test_a_bad_config_file_is_one_sentence(tmp_path, capsys, content, words):
    f = tmp_path / "run.json"
    f.write_bytes(content)
    assert main(["train", "--config", str(f), "--dry-run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert len(err) < 300 and err.count("\n") == 1


def test_a_config_file_past_one_megabyte_is_refused_unread(tmp_path, capsys):
    f = tmp_path / "big.json"
    f.write_bytes(b" " * (2 << 20) + b"{}")
    assert main(["train", "--config", str(f), "--dry-run", "--quiet"]) == 2
    assert "is larger than 1 MB" in capsys.readouterr().err

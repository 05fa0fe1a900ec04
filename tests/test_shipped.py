"""Every shipped checkpoint loads, continues training, and `python -m ganae eval` reproduces its recorded metrics."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ganae import checkpoint
from ganae.__main__ import main
from ganae.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = ["ring8-gan", "digits-ae", "digits-vae", "digits-gan", "sprites-bvae"]


def test_the_promised_models_are_shipped_and_small():
    files = {p.stem for p in ROOT.glob("*.pt")}
    assert set(SHIPPED) | {"classifier-digits"} <= files
    total = sum((ROOT / f"{n}.pt").stat().st_size for n in SHIPPED + ["classifier-digits"])
    assert total < 5 * 1024 * 1024
    readme = (ROOT / "README.md").read_text()
    for n in SHIPPED:
        assert f"{n}.pt" in readme


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_eval_reproduces_recorded_metrics(name, capsys):
    payload = checkpoint.load(ROOT / f"{name}.pt")
    assert payload["note"].startswith("python -m ganae train")       # the command that made it
    assert payload["metrics"], "recorded metrics are missing"
    assert main(["eval", str(ROOT / f"{name}.pt")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["matches_recorded"] is True
    for k, v in payload["metrics"].items():
        assert math.isclose(report["metrics"][k], v, rel_tol=1e-4, abs_tol=1e-6), k


def test_a_shipped_model_continues_training():
    t = Trainer.load(ROOT / "ring8-gan.pt")
    step = t.step_count
    t.step(5)
    assert t.step_count == step + 5 and all(math.isfinite(v) for v in t.last.values())

"""Checks shared by the tests of the two placements of live runs (tests/test_ray_placement.py: Ray actors;
tests/test_local_host.py: the training process beside the server)."""
from __future__ import annotations

import numpy as np
import pytest

from ganae.trainer import Trainer


def check_remote_run(r, cfg, past: int = 50) -> None:
    """A fresh RemoteRunner `r` of `cfg`: 30 manual steps with exactly the losses of a local Trainer, then 4 D
    steps, Train until past step `past`, Pause, and the Runner's own errors reaching the caller as themselves."""
    r.step(30)                                     # manual steps: exactly 30, then paused
    s = r.status()
    assert (s.state, s.step) == ("paused", 30)
    local = Trainer(cfg)
    local.step(30)
    hist = r.snapshot().history
    np.testing.assert_array_equal(hist["loss_d"], local.history.arrays()["loss_d"])
    np.testing.assert_array_equal(hist["loss_g"], local.history.arrays()["loss_g"])
    r.step(4, "d")
    assert r.status().step == 34
    r.play()
    assert r.wait_for(lambda st: st.state == "running" and r.snapshot().step >= past, timeout=30)
    r.pause()
    assert r.status().state == "paused"
    with pytest.raises(ValueError, match="part must be"):            # the Runner's own errors come through
        r.step(1, "x")

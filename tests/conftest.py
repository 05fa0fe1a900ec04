"""Shared test setup: one torch thread (tiny models; 2-core machines), markers, per-test timeout."""
from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("GANAE_TEST", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end browser tests (a streamlit server + system Chromium)")
    config.addinivalue_line("markers", "slow: a behaviour test that trains for several seconds")
    if getattr(config.option, "timeout", None) in (None, 0):
        config.option.timeout = 300     # pytest-timeout: no test may hang CI
    if getattr(config.option, "durations", None) is None:
        config.option.durations = 25    # CI's log names the slowest tests (the suite must stay well under 20 minutes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests get one rerun: a real Chromium against a real server on a busy 2-core machine can miss a
    timeout once; an assertion that fails twice is a real failure (pytest-rerunfailures)."""
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


@pytest.fixture(scope="session")
def ray_cluster():
    """A real Ray cluster on this machine for the tests that need one (test_ray_*.py, test_serve.py): a head and a
    second node, one CPU each, on 127.0.0.1, no dashboard; this process is connected to it. A test may lose the
    second node and start a new one (test_ray_placement.py). Stopped (exactly these processes) at the end of the
    session. Skipped when ray is not installed."""
    pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0, see requirements.txt)")
    from ganae.cluster import LocalCluster, loopback_only
    if not loopback_only() and os.environ.get("GANAE_RAY_ANY_NETWORK") != "1":
        pytest.skip("Ray's nodes would talk over this machine's network address, not 127.0.0.1: run the tests in a "
                    "loopback-only namespace as .ci/run does (unshare -n), or set GANAE_RAY_ANY_NETWORK=1")
    with LocalCluster(nodes=2, cpus_per_node=1, timeout_s=180) as c:
        yield c

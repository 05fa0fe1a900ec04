"""dashboard/serve.py: two Streamlit replicas behind HAProxy, sticky by cookie, on the session's Ray cluster."""
from __future__ import annotations

import shutil
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboard import serve  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed (.ci/setup)")]


def free_block(n: int) -> int:
    """A port p with p .. p+n free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            for q in range(p, p + n + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
    raise RuntimeError("no free block of ports")


def ask(url: str, cookie: str | None = None) -> tuple[str, str]:
    """(replica that answered, the cookie it set)."""
    req = urllib.request.Request(url, headers={"Cookie": f"{serve.COOKIE}={cookie}"} if cookie else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        ours = [c.split(";")[0] for c in r.headers.get_all("Set-Cookie") or [] if c.startswith(serve.COOKIE + "=")]
        return r.headers["X-Ganae-Replica"], (ours or [""])[0]


@pytest.fixture(scope="module")
def replica_set(ray_cluster, tmp_path_factory):
    """One set of two replicas for this module's tests (each start: two servers, each warmed by a visit, ~20 s);
    each replica writes its own stats file (replica_env). (set, [stats file of r1, of r2])"""
    stats = [tmp_path_factory.mktemp("serve") / f"stats-{i}.json" for i in (1, 2)]
    with serve.ReplicaSet(port=free_block(2), replicas=2, ray=ray_cluster.address,
                          replica_env=[{"GANAE_STATS_FILE": str(p)} for p in stats]) as s:
        yield s, stats


def test_the_set_counts_as_started_once_every_replica_has_drawn_a_page(replica_set):
    """ReplicaSet.start visits every replica (warm): its registry, Ray connection and Ray hosts exist before the
    first student comes. Each replica got its own environment (replica_env): its own stats file, which its registry
    writes from its first second; both see the one cluster-wide admission. (Runs first: no visitor yet but the
    warm-up's.)"""
    import json
    _, stats = replica_set
    assert all(p.exists() for p in stats)
    for p in stats:
        s = json.loads(p.read_text())
        assert s["runs"] == 0 and s["limit"] == 2 and s["running"] == 0
    assert stats[0].read_text() != "" and json.loads(stats[0].read_text())["pid"] != \
        json.loads(stats[1].read_text())["pid"]


def test_new_visitors_alternate_and_a_cookie_keeps_each_on_its_replica(replica_set):
    s, _ = replica_set
    health = f"{s.url}/_stcore/health"
    first = [ask(health) for _ in range(4)]
    order = [r for r, _ in first]                  # round robin for new visitors (from wherever it stands)
    assert set(order) == {"r1", "r2"} and all(a != b for a, b in zip(order, order[1:]))
    assert [c for _, c in first] == [f"{serve.COOKIE}={r}" for r, _ in first]
    assert [ask(health, "r2")[0] for _ in range(5)] == ["r2"] * 5         # then sticky
    assert [ask(health, "r1")[0] for _ in range(5)] == ["r1"] * 5
    assert ask(health, "r2")[1] == ""                    # a visitor with a cookie is not given a new one
    page = urllib.request.urlopen(s.url + "/", timeout=10).read()
    assert b"<title>Streamlit</title>" in page or b"streamlit" in page.lower()

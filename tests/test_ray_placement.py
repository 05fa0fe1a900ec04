"""Live runs on Ray actors (ganae/placement.py) on a real 2-node cluster: the registry places runs in RunHost
actors there (one per CPU, warm before the first run), pages' commands and snapshots go through the host, admission
is shared by every replica, reaping stops the run in its host, and a lost host or node turns its runs into state
"error" with a sentence that Reset recovers from."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0, see requirements.txt)")

from ganae import placement  # noqa: E402
from ganae.cluster import ClusterError  # noqa: E402
from ganae.config import RunConfig  # noqa: E402
from ganae.runner import Registry, runner_threads  # noqa: E402
from placement_checks import check_remote_run  # noqa: E402

CFG = RunConfig().with_updates(**{"model.g_hidden": 16, "model.d_hidden": 16, "train.batch_size": 32,
                                  "data.n": 500, "train.steps": 100_000, "train.device": "cpu"})


@pytest.fixture
def place(ray_cluster):
    return placement.RayPlacement(ray_cluster.address)


def registry(place, limit=-1) -> Registry:
    return Registry(limit=limit, grace_s=60.0, placement=place)


def lost_sentence(step: int) -> str:
    return placement.LOST.format(step=step)


def test_runs_train_on_actors_with_the_numbers_of_a_local_trainer(place):
    reg = registry(place)
    try:
        r = reg.create(CFG, session="s1")
        assert isinstance(r, placement.RemoteRunner) and reg.get(r.run_id) is r
        assert r.call(lambda t: os.getpid()) != os.getpid() and runner_threads() == []   # not in this process
        check_remote_run(r, CFG)
    finally:
        reg.shutdown()


def host_runs(host) -> list[str]:
    return ray.get(host.runs.remote(), timeout=30)


def host_threads(host) -> list[str]:
    """The runner threads alive in a host's process."""
    return ray.get(host.threads.remote(), timeout=30)


def test_admission_is_shared_by_two_replicas_and_reaping_stops_the_run_in_its_host(place):
    a, b = registry(place, limit=1), registry(place, limit=1)      # two web servers, one cluster
    try:
        ra, rb = a.create(CFG), b.create(CFG)
        ra.play()
        rb.play()
        assert ra.status().state == "running"
        sb = rb.status()
        assert (sb.state, sb.queue_position) == ("queued", 1) and a.counts()["queued"] == 1
        ra.pause()
        assert rb.wait_for(lambda s: s.state == "running", timeout=10)
        host = rb._actor
        assert rb.run_id in host_runs(host) and len(host_threads(host)) >= 1
        assert b.reap(0.0) == [rb.run_id]            # nobody views it: freed, and stopped in its host
        assert a.counts()["running"] == 0 and rb.run_id not in b
        assert rb.run_id not in host_runs(host)
        assert not [n for n in host_threads(host) if rb.run_id in n]      # its training thread has ended
        with pytest.raises(RuntimeError, match="has been stopped"):
            rb.play()
    finally:
        a.shutdown()
        b.shutdown()


def test_a_lost_node_turns_its_run_into_an_error_with_a_sentence_others_go_on_reset_recovers(ray_cluster):
    lost = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("node1"))
    head = next(n["NodeID"] for n in ray.nodes() if n["Resources"].get("node:__internal_head__"))
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def on(node: str) -> placement.RayPlacement:      # soft: another node when that one is gone
        return placement.RayPlacement(ray_cluster.address, actor_options={
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)})

    reg, other_reg = registry(on(lost)), registry(on(head))
    try:
        r, other = reg.create(CFG), other_reg.create(CFG)
        assert (r.node, other.node) == (lost, head)
        r.step(7)
        other.play()
        ray_cluster.kill_node(1)
        assert r.wait_for(lambda s: s.state == "error", timeout=60)
        assert r.status().message == lost_sentence(7)
        with pytest.raises(RuntimeError, match="was lost"):
            r.play()
        assert reg.get(r.run_id) is r and reg.reap(60.0) == []     # it stays for its page to reset it
        s0 = other.status().step
        assert other.wait_for(lambda s: s.step > s0 + 20, timeout=30)     # the other run trains on
        deadline = time.monotonic() + 60
        while any(n["Alive"] for n in ray.nodes() if n["NodeID"] == lost):   # the cluster knows it, too
            assert time.monotonic() < deadline
            time.sleep(0.2)
        r.reset()                                      # again, on a node still there
        assert r.node != lost and (r.status().state, r.status().step) == ("idle", 0)
        r.step(3)
        assert r.status().step == 3
    finally:
        reg.shutdown()
        other_reg.shutdown()
        if ray_cluster.procs[1].poll() is not None:
            ray_cluster.add_node(1)                    # a new second node for the tests after this one (it joins
            #                                           while they start: they work with one CPU or two)


def test_an_unreachable_ray_address_is_one_sentence(monkeypatch):
    monkeypatch.setenv(placement.ENV, "127.0.0.1:1")
    with pytest.raises(ClusterError, match=r"^no Ray cluster answers at 127\.0\.0\.1:1 \("):
        placement.from_env()
    monkeypatch.delenv(placement.ENV)
    assert placement.from_env() is None


def test_a_remote_run_obeys_its_owner_and_forks_with_its_state(place):
    """Ownership is checked in the web server before a command leaves for Ray; a fork of a remote run goes on
    from its weights and history on a new actor; frame() gives the state line's step with its snapshot."""
    from ganae.runner import NotOwner
    reg = registry(place)
    try:
        r = reg.create(CFG, owner="alice")
        r.step(12, owner="alice")
        status, snap = r.frame()
        assert status.step == snap.step == 12
        with pytest.raises(NotOwner):
            r.pause(owner="bob")
        with pytest.raises(NotOwner):
            r.step(5)                                   # no secret at all: refused too
        assert r.status().step == 12
        mine = reg.fork(r.run_id, owner="bob")
        assert isinstance(mine, placement.RemoteRunner) and mine.run_id != r.run_id
        np.testing.assert_array_equal(mine.snapshot().history["loss_d"], snap.history["loss_d"])
        mine.step(3, owner="bob")
        assert (mine.status().step, r.status().step) == (15, 12)
    finally:
        reg.shutdown()


def test_runs_share_warm_hosts_one_per_cpu_and_the_least_busy_takes_a_new_run(place):
    """No process per run: the placement's hosts (one per CPU of the cluster) are started with it; runs go to the
    host with the fewest runs, several runs train side by side in one host, and a freed run's place is reused."""
    reg = registry(place, limit=3)                     # (admission: 3 training at once on the 2 CPUs)
    try:
        assert place.n_hosts == 2 and len(place.hosts()) == 2
        runs = [reg.create(CFG) for _ in range(3)]
        pids = [r.call(lambda t: os.getpid()) for r in runs]
        assert len(set(pids[:2])) == 2 and pids[2] in pids[:2]          # 1 host each, then the third shares
        assert sorted(len(host_runs(h)) for h in place.hosts()) == [1, 2]
        for r in runs:
            r.play()
        assert all(r.wait_for(lambda s: s.step >= 20, timeout=60) for r in runs)   # all three train
        shared = runs[2]._actor
        alone = next(h for h in place.hosts() if h != shared)
        first = next(r for r in runs[:2] if r._actor == alone)
        reg.remove(first.run_id)
        nxt = reg.create(CFG)                          # the host that now has none gets it
        assert nxt._actor == alone and nxt.call(lambda t: os.getpid()) == pids[runs.index(first)]
    finally:
        reg.shutdown()


def test_with_cohorts_a_class_of_one_structure_trains_together_in_one_host_on_one_slot(ray_cluster):
    """GANAE_COHORTS=1 on Ray: runs of one structure go to one host and train there as one cohort holding one slot
    of the cluster-wide admission; a run of another structure waits for a slot of its own (queued, position 1)."""
    place = placement.RayPlacement(ray_cluster.address, cohorts=True, cohort_slice_s=0)   # no turns (test_cohort)
    reg = registry(place, limit=1)
    try:
        a, b = reg.create(CFG), reg.create(CFG.with_updates(**{"train.seed": 7, "optim.g_lr": 5e-4}))
        other = reg.create(CFG.with_updates(**{"objective.loss": "hinge"}))
        assert a._actor == b._actor                    # one host for the structure
        for r in (a, b, other):
            r.play()
        assert a.wait_for(lambda s: s.state == "running" and s.step >= 30, timeout=60)
        assert b.wait_for(lambda s: s.state == "running" and s.step >= 30, timeout=60)
        s = other.status()
        assert (s.state, s.queue_position) == ("queued", 1) and reg.counts()["running"] == 1
        c = ray.get(a._actor.cohorts.remote(), timeout=30)
        assert c["cohorts"] == 1 and c["members"] == [2]
        assert a.status().cohort == b.status().cohort == 2      # the state line: "training with 1 other run ..."
        a.pause()
        b.pause()                                      # the cohort closes, its slot goes to the next in line
        assert other.wait_for(lambda s: s.state == "running" and s.step > 0, timeout=60)
    finally:
        reg.shutdown()

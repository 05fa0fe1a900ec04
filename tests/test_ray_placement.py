"""Live runs on Ray actors (ganae/placement.py) on a real 2-node cluster: the registry places runs there, pages'
commands and snapshots go through the actor, admission is shared by every replica, reaping kills the actor, and a
lost actor or node turns its run into state "error" with a sentence that Reset recovers from."""
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
from ganae.trainer import Trainer  # noqa: E402

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
        r.step(30)                                     # manual steps: exactly 30, then paused
        s = r.status()
        assert (s.state, s.step) == ("paused", 30)
        local = Trainer(CFG)
        local.step(30)
        hist = r.snapshot().history
        np.testing.assert_array_equal(hist["loss_d"], local.history.arrays()["loss_d"])
        np.testing.assert_array_equal(hist["loss_g"], local.history.arrays()["loss_g"])
        r.step(4, "d")
        assert r.status().step == 34
        r.play()
        assert r.wait_for(lambda st: st.state == "running" and r.snapshot().step >= 50, timeout=30)
        r.pause()
        assert r.status().state == "paused"
        with pytest.raises(ValueError, match="part must be"):            # the Runner's own errors come through
            r.step(1, "x")
    finally:
        reg.shutdown()


def test_admission_is_shared_by_two_replicas_and_reaping_kills_the_actor(place):
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
        actor = rb._actor
        assert b.reap(0.0) == [rb.run_id]            # nobody views it: freed, and its actor killed
        assert a.counts()["running"] == 0 and rb.run_id not in b
        deadline = time.monotonic() + 30
        with pytest.raises(ray.exceptions.RayActorError):
            while time.monotonic() < deadline:       # ray.kill is asynchronous: a call or two may still be answered
                ray.get(actor.poll.remote(0), timeout=30)
                time.sleep(0.1)
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
        assert isinstance(mine, placement.RemoteRunner) and mine._actor is not r._actor
        np.testing.assert_array_equal(mine.snapshot().history["loss_d"], snap.history["loss_d"])
        mine.step(3, owner="bob")
        assert (mine.status().step, r.status().step) == (15, 12)
    finally:
        reg.shutdown()

"""LiveRunner: the one live engine (thread, command queue, states, admission, owner check) both hosts run on."""
from __future__ import annotations

import threading

import pytest

from ganae.arena import ArenaRunner
from ganae.live import LiveRunner, NotOwner
from ganae.runner import Admission, Runner


class Counter(LiveRunner):
    """The smallest host: a number that grows by one per chunk; `crash_at` makes a chunk raise."""

    def __init__(self, crash_at: int | None = None, **kwargs):
        super().__init__("ganae-live-test", **kwargs)
        self.n, self.crash_at, self.fresh = 0, crash_at, []
        self._start()

    def _run_chunk(self, fresh: bool) -> None:
        if self.n == self.crash_at:
            raise KeyError("broken chunk")
        self.n += 1
        self.fresh.append(fresh)
        with self._published:
            self._published.notify_all()

    def _do_play(self) -> None:
        self._play_state()

    def _do_pause(self) -> None:
        self._release()
        self._set_state("paused", "")

    def _do_where(self) -> str:
        return threading.current_thread().name

    def _do_boom(self) -> None:
        raise ValueError("bad command")


@pytest.fixture
def hosts():
    made: list[Counter] = []
    yield made
    for h in made:
        h.stop()
    assert not any(h.alive for h in made)


def test_commands_run_on_the_hosts_thread_and_answer_the_caller(hosts):
    h = Counter()
    hosts.append(h)
    assert h._send("where") == "ganae-live-test" != threading.current_thread().name
    with pytest.raises(ValueError, match="bad command"):
        h._send("boom")
    assert h.alive and h.state == "idle" and h.n == 0          # a failing command does not stop the host


def test_admission_queues_then_runs_and_pause_gives_the_slot_back(hosts):
    adm = Admission(1)
    other = Counter(admission=adm)
    hosts.append(other)
    other._send("play")
    assert other.state == "running" and adm.counts() == (1, 0)
    h = Counter(admission=adm)
    hosts.append(h)
    h._send("play")
    assert h.state == "queued" and adm.position(h) == 1 and h.n == 0
    other._send("pause")                                          # the slot frees up: the queued host takes it
    assert h._wait_published(lambda: h.n >= 3, 5.0)
    assert h.state == "running" and adm.counts() == (1, 0)
    assert h.fresh[0] and not any(h.fresh[1:])                     # only the first chunk after the slot is fresh
    h._send("pause")
    n = h.n
    assert h.state == "paused" and adm.counts() == (0, 0) and h._send("where") and h.n == n


def test_a_crash_becomes_the_error_state_and_later_commands_say_stopped(hosts):
    h = Counter(crash_at=5)
    hosts.append(h)
    h._send("play")
    h._thread.join(5.0)
    assert not h.alive and h.n == 5 and h.state == "error"
    assert h._message == "Training stopped by an error (KeyError: 'broken chunk')."
    with pytest.raises(RuntimeError, match="has been stopped"):
        h._send("play")


def test_owner_check_and_both_hosts_share_the_one_engine(hosts):
    h = Counter(owner="s3cret")
    hosts.append(h)
    h._check("s3cret", "train")
    with pytest.raises(NotOwner, match="Only the browser that started this run can train it"):
        h._check("other", "train")
    for host in (Runner, ArenaRunner):       # no second copy of the thread, the queue or the state machine
        assert issubclass(host, LiveRunner)
        for name in ("_loop", "_send", "_drain", "_set_state", "_play_state", "_give_way", "stop", "_check"):
            assert getattr(host, name) is getattr(LiveRunner, name), (host.__name__, name)

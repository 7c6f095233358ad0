"""The feature table's writer lock: one holder at a time, takeover only after the lease, on a
local folder (O_EXCL) here; tests/airflow/test_store_on_s3.py runs it on S3."""

from __future__ import annotations

import threading
import time

import pytest

from fruits_job.writer_lock import LocalTickets, LockTimeoutError, WriterLock


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_put_if_absent_creates_once(tmp_path):
    tickets = LocalTickets(str(tmp_path))
    assert tickets.create("a", b"1")
    assert not tickets.create("a", b"2")
    assert tickets.read("a") == b"1"


def test_one_writer_at_a_time_and_in_turn(tmp_path):
    """Eight writers at once: never two inside, every one gets in."""
    inside, most, order = [0], [0], []
    guard = threading.Lock()

    def writer(name: str) -> None:
        with WriterLock(str(tmp_path), poll=0.01).held(name):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with guard:
                inside[0] -= 1
                order.append(name)

    threads = [threading.Thread(target=writer, args=(f"run-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert sorted(order) == [f"run-{i}" for i in range(8)]


def test_a_dead_holders_ticket_is_taken_over_after_its_lease_only(tmp_path):
    clock = Clock()
    dead = WriterLock(str(tmp_path), lease=600, poll=0.001, wait=1e9, clock=clock)
    held = dead.acquire("run-that-died")  # never released, no heartbeat
    waiting = WriterLock(str(tmp_path), lease=600, poll=0.001, wait=1e9, clock=clock)
    taken: list[int] = []

    def take() -> None:
        taken.append(waiting.acquire("next-run").seq)

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.2)
    assert taken == []  # within the lease: it waits
    clock.now += 601
    thread.join(timeout=5)
    assert taken == [held.seq + 1]


def test_a_heartbeat_keeps_the_lease(tmp_path):
    clock = Clock()
    holder = WriterLock(str(tmp_path), lease=600, poll=0.001, clock=clock)
    ticket = holder.acquire("long-merge")
    clock.now += 550
    holder.folder.put(f"{ticket.name}.alive", b'{"at": %f}' % clock.now)
    clock.now += 550  # 1,100 s since the ticket, 550 since the beat
    other = WriterLock(str(tmp_path), lease=600, poll=0.001, wait=0.05, clock=clock)
    with pytest.raises(LockTimeoutError, match="long-merge"):
        other.acquire("impatient")


def test_a_wait_has_an_end_that_names_the_holder(tmp_path):
    WriterLock(str(tmp_path)).acquire("nightly run")
    late = WriterLock(str(tmp_path), poll=0.01, wait=0.1)
    with pytest.raises(LockTimeoutError, match="still held by nightly run"):
        late.acquire("manual run")


def test_old_tickets_are_pruned(tmp_path):
    lock = WriterLock(str(tmp_path))
    for i in range(30):
        with lock.held(f"run-{i}"):
            pass
    seqs = {int(name.split(".")[0]) for name in lock.folder.names()}
    assert max(seqs) == 30 and min(seqs) > 30 - 21

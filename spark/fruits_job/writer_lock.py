"""One writer at a time for the feature table: numbered tickets, each created put-if-absent.

Delta Lake on S3 is single-writer: two drivers committing at once can both write the same
log entry, and S3 keeps one (its default log store has no mutual exclusion across
drivers). Runs that overlap (a manual run during the nightly one, maintenance) therefore
take this lock around every write of the table; readers never take it (Delta's snapshots
are consistent without it).

The lock is a folder of tickets beside the table: ``<seq>.ticket`` (who holds it),
``<seq>.alive`` (the holder's heartbeat) and ``<seq>.released``. A writer takes the next
number after the newest ticket, when that ticket is released or its holder's heartbeat is
older than the lease, by creating ``<next>.ticket`` only if it does not exist: an S3
conditional write (``If-None-Match: *``), ``O_EXCL`` on a local disk. Of two writers racing
for one number exactly one creates it; the other waits for that one. A holder that dies
leaves its ticket unreleased; the next writer takes over once the lease has passed without
a heartbeat.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlparse

log = logging.getLogger("fruits_job")

# A holder beats every LEASE / 10 s; a ticket with no beat for LEASE is taken over.
LEASE_SECONDS = 600.0
POLL_SECONDS = 5.0
# How long a writer waits for the lock before it gives up (a nightly MERGE, maintenance).
WAIT_SECONDS = 3 * 3600.0
# Released tickets kept for the record; older ones are removed by the next holder.
KEEP_TICKETS = 20


class LockTimeoutError(RuntimeError):
    """The lock stayed held by another writer for longer than the wait allowed."""


class TicketFolder(Protocol):
    def create(self, name: str, body: bytes) -> bool:
        """Write ``name`` only if it does not exist; whether this call created it."""

    def put(self, name: str, body: bytes) -> None: ...

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes | None: ...

    def delete(self, name: str) -> None: ...


class LocalTickets:
    """Tickets in a local folder: a hard link creates a name only if it does not exist, with
    its whole content at once (written aside first, as an S3 PUT shows an object whole)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _aside(self, name: str, body: bytes) -> str:
        partial = self._path(f".{name}.{os.getpid()}.{threading.get_ident()}.partial")
        with open(partial, "wb") as out:
            out.write(body)
        return partial

    def create(self, name: str, body: bytes) -> bool:
        partial = self._aside(name, body)
        try:
            os.link(partial, self._path(name))
        except FileExistsError:
            return False
        finally:
            os.remove(partial)
        return True

    def put(self, name: str, body: bytes) -> None:
        os.replace(self._aside(name, body), self._path(name))

    def names(self) -> list[str]:
        return [n for n in os.listdir(self.folder) if not n.startswith(".")]

    def read(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        with suppress(FileNotFoundError):
            os.remove(self._path(name))


class S3Tickets:
    """Tickets under an S3 prefix: a conditional PutObject creates an object only if absent.

    boto3 finds its endpoint and credentials as the AWS SDKs do (the instance profile on
    EMR; ``AWS_ENDPOINT_URL_S3`` and keys for a local S3).
    """

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3

        self.client = boto3.client("s3")
        self.bucket, self.prefix = bucket, prefix.rstrip("/") + "/"

    def create(self, name: str, body: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + name, Body=body, IfNoneMatch="*"
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            # 412: it exists. 409: another writer's conditional write on it is in flight.
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "409", "412"):
                return False
            raise
        return True

    def put(self, name: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        return [o["Key"][len(self.prefix) :] for p in pages for o in p.get("Contents", [])]

    def read(self, name: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)


def tickets_at(uri: str) -> TicketFolder:
    """The ticket folder at a URI: s3://, s3a:// (S3), file: or a local path."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a", "s3n"):
        return S3Tickets(parsed.netloc, unquote(parsed.path.lstrip("/")))
    if parsed.scheme in ("", "file"):
        return LocalTickets(unquote(parsed.path))
    raise ValueError(f"no writer lock for {uri!r}: expected s3:// or a local path")


@dataclass(frozen=True)
class Ticket:
    seq: int
    holder: str

    @property
    def name(self) -> str:
        return f"{self.seq:010d}"


class WriterLock:
    """The feature table's writer lock at ``uri`` (``with lock.held(run_id): ...``)."""

    def __init__(
        self,
        uri: str,
        lease: float = LEASE_SECONDS,
        poll: float = POLL_SECONDS,
        wait: float = WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.uri, self.folder = uri, tickets_at(uri)
        self.lease, self.poll, self.wait, self.clock = lease, poll, wait, clock

    def _newest(self) -> tuple[int, set[str]]:
        names = set(self.folder.names())
        seqs = [int(n.split(".")[0]) for n in names if n.endswith(".ticket")]
        return max(seqs, default=0), names

    def _free(self, seq: int, names: set[str]) -> tuple[bool, str]:
        """Whether ticket ``seq`` no longer holds the lock, and who holds it if it does."""
        name = f"{seq:010d}"
        if seq == 0 or f"{name}.released" in names:
            return True, ""
        beats = [self.folder.read(f"{name}.{kind}") for kind in ("alive", "ticket")]
        records = [json.loads(b) for b in beats if b]
        holder = next((r.get("holder", "?") for r in records if "holder" in r), "?")
        if not records:  # tickets appear whole: one that cannot be read is not taken over
            return False, f"the holder of ticket {name} (unreadable)"
        last = max(r.get("at", 0.0) for r in records)
        return self.clock() - last > self.lease, holder

    def acquire(self, holder: str) -> Ticket:
        started = time.monotonic()  # the wait is measured here; leases by the holders' clocks
        said = 0.0
        while True:
            newest, names = self._newest()
            free, owner = self._free(newest, names)
            if free:
                ticket = Ticket(newest + 1, holder)
                body = json.dumps({"holder": holder, "at": self.clock()}).encode()
                if self.folder.create(f"{ticket.name}.ticket", body):
                    log.info("feature table: writer lock %s taken (%s)", ticket.name, self.uri)
                    return ticket
                continue  # another writer took that number: look again
            waited = time.monotonic() - started
            if waited > self.wait:
                raise LockTimeoutError(
                    f"the feature table's writer lock ({self.uri}) is still held by {owner} "
                    f"after {waited:.0f} s of waiting; if that run is gone, its lease ends "
                    f"{self.lease:.0f} s after its last heartbeat"
                )
            if waited - said >= 60 or not said:
                log.info("feature table: waiting for the writer lock held by %s", owner)
                said = waited or 1e-9
            time.sleep(self.poll)

    def release(self, ticket: Ticket) -> None:
        self.folder.put(f"{ticket.name}.released", json.dumps({"at": self.clock()}).encode())
        log.info("feature table: writer lock %s released", ticket.name)
        names = self.folder.names()
        for name in names:
            seq = name.split(".")[0]
            if seq.isdigit() and int(seq) <= ticket.seq - KEEP_TICKETS:
                self.folder.delete(name)

    def _beat(self, ticket: Ticket, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 10):
            try:
                body = json.dumps({"holder": ticket.holder, "at": self.clock()}).encode()
                self.folder.put(f"{ticket.name}.alive", body)
            except Exception as error:  # the next beat may get through; the lease is long
                log.warning("feature table: writer lock heartbeat failed: %s", error)

    @contextmanager
    def held(self, run_id: str) -> Iterator[Ticket]:
        """Hold the lock for the block; a heartbeat keeps the lease while it runs."""
        holder = f"run {run_id} on {socket.gethostname()} (pid {os.getpid()})"
        ticket = self.acquire(holder)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(ticket, stop), daemon=True)
        beat.start()
        try:
            yield ticket
        finally:
            stop.set()
            beat.join(timeout=5)
            self.release(ticket)

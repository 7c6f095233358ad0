"""Running spark-submit next to Airflow: its output streamed into the task log, and its whole
process group stopped when it overruns, when the task is stopped, or when the task dies."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fruits_features.step_logs import step_error


class SparkJobError(RuntimeError):
    """spark-submit failed; the message is the job's error line, then the excerpt of its
    output that explains it (a failed task's traceback, the lines before the error)."""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the task process dies, even by
    SIGKILL (the OOM killer, a worker restart), so Spark never outlives its task."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(
        PR_SET_PDEATHSIG, signal.SIGKILL
    )


@contextlib.contextmanager
def _stopped_by_sigterm(on_stop: Callable[[], None]) -> Iterator[None]:
    """While inside: SIGTERM (how Airflow stops a task) stops the job, then fails the task."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers live in the main thread only
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        on_stop()
        if callable(previous):
            previous(signum, frame)
        raise SparkJobError("stopped by SIGTERM: the Spark job was killed")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_streaming(
    command: Sequence[str],
    env: dict[str, str],
    timeout_seconds: float,
    emit: Callable[[str], None],
    deadline: tuple[float, Callable[[float], None]] | None = None,
) -> None:
    """Run ``command``, pass each output line to ``emit`` as it comes; raise SparkJobError on
    failure. The command's process group is killed when the timeout passes, when the task
    is stopped (SIGTERM), and by the kernel when the task process dies. ``deadline``:
    (seconds, call) — ``call(elapsed)`` once if the command still runs then."""
    tail: deque[str] = deque(maxlen=400)
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        # A Python child writing to a pipe buffers its output by blocks: lines would come
        # late and out of order with its stderr.
        env={**env, "PYTHONUNBUFFERED": "1"},
        # Own process group: a kill reaches the JVM and its Python workers too.
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    timed_out = threading.Event()

    def kill() -> None:
        if process.poll() is None:
            timed_out.set()
            _kill_group(process.pid)

    timers = [threading.Timer(timeout_seconds, kill)]
    if deadline is not None and deadline[0] < timeout_seconds:
        seconds, call = deadline
        timers.append(threading.Timer(seconds, lambda: process.poll() is None and call(seconds)))
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        with _stopped_by_sigterm(lambda: _kill_group(process.pid)):
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                emit(line)
            code = process.wait()
    finally:
        for timer in timers:
            timer.cancel()
        if process.poll() is None:  # the task is being killed: do not leave Spark behind
            _kill_group(process.pid)
            process.wait()
    if timed_out.is_set():
        raise SparkJobError(f"spark-submit killed after {timeout_seconds:.0f} s")
    if code != 0:
        error = step_error(list(tail))
        raise SparkJobError(f"spark-submit exited {code}: {error.line}\n{error.text()}")

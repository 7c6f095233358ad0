"""The local path's process handling, with real child processes (and a real Spark job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fruits_features.compute.local import work_folder
from fruits_features.compute.spark_process import SparkJobError, run_streaming
from fruits_features.job_invocation import find_spark_submit, local_spark_env

REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is dead all the same.
    state = Path(f"/proc/{pid}/stat")
    return not state.exists() or state.read_text().split(") ", 1)[1].startswith("Z")


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _environment_without_unbuffered() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def test_spark_submit_is_found_next_to_this_interpreter():
    path = find_spark_submit()
    assert path.name == "spark-submit"
    assert os.access(path, os.X_OK)


def test_output_lines_are_streamed_as_they_come_and_in_order():
    # Without PYTHONUNBUFFERED a Python child's stdout to a pipe is held back by block:
    # run_streaming must still pass each line on when it is written, in order.
    arrived: list[tuple[str, float]] = []
    script = "import sys, time; print('one'); time.sleep(1.5); print('two', file=sys.stderr)"
    run_streaming(
        [sys.executable, "-c", script],
        _environment_without_unbuffered(),
        30,
        lambda line: arrived.append((line, time.monotonic())),
    )
    assert [line for line, _ in arrived] == ["one", "two"]
    assert arrived[1][1] - arrived[0][1] > 1.0  # "one" came before the child went on


def test_failure_reports_the_jobs_error_line():
    script = (
        "import sys\n"
        "print('INFO starting')\n"
        "print('process_fruits_data: error: --pca-components 60 > 24 images', file=sys.stderr)\n"
        "print('INFO ShutdownHookManager: Shutdown hook called')\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(SparkJobError) as error:
        run_streaming([sys.executable, "-c", script], dict(os.environ), 30, lambda line: None)
    assert str(error.value).splitlines()[0] == (
        "spark-submit exited 2: process_fruits_data: error: --pca-components 60 > 24 images"
    )


# A child that starts a grandchild in its process group (as spark-submit starts the JVM and
# the JVM its Python workers) and reports both pids, then waits.
FAMILY = textwrap.dedent(
    """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("pids", __import__("os").getpid(), grandchild.pid, flush=True)
    time.sleep(300)
    """
)


def test_a_job_over_time_is_killed_with_its_whole_process_group():
    pids: list[int] = []

    def emit(line: str) -> None:
        if line.startswith("pids "):
            pids.extend(int(p) for p in line.split()[1:])

    started = time.monotonic()
    with pytest.raises(SparkJobError, match="killed after 2 s"):
        run_streaming([sys.executable, "-c", FAMILY], dict(os.environ), 2, emit)
    assert time.monotonic() - started < 10
    assert len(pids) == 2
    assert _wait_until(lambda: all(_gone(pid) for pid in pids), 5), pids


def test_sigterm_stops_the_job_and_fails_the_task():
    # How Airflow stops a task: SIGTERM to the task process, whose main thread runs the job.
    pids: list[int] = []

    def emit(line: str) -> None:
        if line.startswith("pids "):
            pids.extend(int(p) for p in line.split()[1:])
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SparkJobError, match="stopped by SIGTERM"):
        run_streaming([sys.executable, "-c", FAMILY], dict(os.environ), 60, emit)
    assert signal.getsignal(signal.SIGTERM) == previous  # the task's own handling is back
    assert _wait_until(lambda: all(_gone(pid) for pid in pids), 5), pids


@pytest.mark.slow
def test_spark_does_not_outlive_a_task_killed_hard(tmp_path):
    """SIGKILL to the task process (the OOM killer, a worker restart): a real spark-submit,
    its JVM and its Python workers, all go within seconds."""
    job = tmp_path / "slow_job.py"
    job.write_text(
        textwrap.dedent(
            """
            import time
            from pyspark.sql import SparkSession
            spark = SparkSession.builder.getOrCreate()
            spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(300)).count()
            """
        )
    )
    task = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO / "plugins")!r})
        from fruits_features.compute.spark_process import run_streaming
        from fruits_features.job_invocation import find_spark_submit, local_spark_env
        command = [str(find_spark_submit()), "--master", "local[2]", {str(job)!r}]
        def emit(line):
            print(line, flush=True)
        run_streaming(command, local_spark_env(), 600, emit)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", task],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=local_spark_env(),
    )

    def spark_family() -> list[int]:
        out = subprocess.run(["ps", "-eo", "pid,ppid,pgid,args"], capture_output=True, text=True)
        rows = [line.split(None, 3) for line in out.stdout.splitlines()[1:]]
        group = {int(pgid) for pid, ppid, pgid, _ in rows if int(ppid) == process.pid}
        return [int(pid) for pid, _, pgid, _ in rows if int(pgid) in group]

    # Python workers started: the job is inside its UDF.
    assert _wait_until(
        lambda: any("pyspark.daemon" in line or "pyspark/daemon" in line for line in _ps()),
        120,
    ), "the Spark job did not start its Python workers"
    family = spark_family()
    assert len(family) >= 3, family  # spark-submit's JVM, the Python driver, the workers
    process.kill()
    process.wait()
    assert _wait_until(lambda: all(_gone(pid) for pid in family), 30), [
        p for p in family if not _gone(p)
    ]


def _ps() -> list[str]:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()


def test_working_folders_of_dead_tasks_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True)  # fmt: skip
    dead = tmp_path / f"run-1.{int(finished.stdout)}"
    (dead / "input").mkdir(parents=True)
    alive = tmp_path / f"run-2.{os.getpid()}"
    alive.mkdir()
    with work_folder("run-3", root=tmp_path) as folder:
        assert folder.is_dir()
        assert not dead.exists()  # its task is gone
        assert alive.exists()  # a running task's folder is left alone
    assert not folder.exists()


def test_the_working_folders_are_the_users_own(tmp_path, monkeypatch):
    """The job's code is staged there and run: a shared, predictable folder (another
    account can rename what it holds) is not a place for it."""
    import stat

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with work_folder("run-1") as folder:
        root = folder.parent
        assert root == tmp_path / "cache" / "fruits-features" / "staging"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    refused = pytest.raises(PermissionError, match=f"{shared} is writable by other users")
    with refused, work_folder("run-2", root=shared):
        pass

"""The feature store where EMR keeps it, on S3 (here the local SeaweedFS, through S3A): the
writer lock's conditional writes, and overlapping writers that both keep their rows."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.airflow.conftest import BUCKET
from tests.conftest import REPO

PROBE = REPO / "tests" / "spark" / "merge_probe.py"


@pytest.fixture
def on_s3(monkeypatch, s3_server, tmp_path):
    """boto3 and pyarrow in this process reach the test's S3; a store prefix of the test's own."""
    for name, value in s3_server.access().environment().items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/stores/{tmp_path.name}"


def test_conditional_writes_give_exactly_one_winner(on_s3):
    from fruits_job.writer_lock import tickets_at

    folder = tickets_at(f"{on_s3}/_writer_lock")
    won = []

    def race(body: bytes) -> None:
        if folder.create("0000000001.ticket", body):
            won.append(body)

    threads = [threading.Thread(target=race, args=(b"%d" % i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert folder.read("0000000001.ticket") == won[0]


def test_the_writer_lock_on_s3_lets_one_writer_in_at_a_time(on_s3):
    from fruits_job.writer_lock import WriterLock

    inside, most = [0], [0]
    guard = threading.Lock()

    def writer(name: str) -> None:
        with WriterLock(f"{on_s3}/_writer_lock", poll=0.05).held(name):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=writer, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    names = WriterLock(f"{on_s3}/_writer_lock").folder.names()
    assert sum(name.endswith(".released") for name in names) == 4


@pytest.mark.slow
@pytest.mark.long
def test_two_jobs_merging_at_once_on_s3_keep_both_runs_rows(s3_server, on_s3, tmp_path):
    """Two Spark drivers merge into one table on S3 at the same time (overlapping on 100
    images): both commit, in turn, and the table holds every row once."""
    from fruits_features.job_invocation import find_spark_submit, local_jars, local_spark_env
    from fruits_features.job_package import build_job_zip

    access = s3_server.access()
    confs = [a for k, v in access.spark_conf().items() for a in ("--conf", f"{k}={v}")]
    zip_path = build_job_zip(REPO, tmp_path)
    jobs = []
    for run_id, first in (("run-1", 0), ("run-2", 200)):
        out = tmp_path / f"{run_id}.json"
        command = [
            str(find_spark_submit()),
            *("--master", "local[1]", "--driver-memory", "1g"),
            *("--conf", "spark.ui.enabled=false", *confs),
            *("--jars", ",".join(str(jar) for jar in local_jars())),
            *("--py-files", str(zip_path)),
            *(str(PROBE), on_s3, run_id, str(first), "300", "1.0" if first else "2.0", str(out)),
        ]
        env = {**local_spark_env(), **access.environment()}
        # Each job's log to a file: a pipe left unread would stall the job that fills it.
        log = (tmp_path / f"{run_id}.log").open("w")
        jobs.append((out, log, subprocess.Popen(command, env=env, stdout=log, stderr=log)))
    versions = []
    try:
        for out, log, job in jobs:
            job.wait(timeout=600)
            log.close()
            assert job.returncode == 0, Path(log.name).read_text()[-3000:]
            versions.append(json.loads(Path(out).read_text())["version"])
    finally:  # a failed check leaves no job running
        for _, _, job in jobs:
            if job.poll() is None:
                job.kill()
                job.wait()
    assert sorted(versions) == [1, 2]

    from fruits_job.writer_lock import WriterLock

    names = WriterLock(f"{on_s3}/_writer_lock").folder.names()
    assert sum(name.endswith(".released") for name in names) == 2
    log = s3_server.keys(f"stores/{tmp_path.name}/features/_delta_log/")
    commits = sorted(k for k in log if k.endswith(".json"))
    assert [k.rsplit("/", 1)[-1] for k in commits] == [
        "00000000000000000000.json",
        "00000000000000000001.json",
        "00000000000000000002.json",
    ]
    # Every row once: the files the log adds hold 500 rows, images 0 to 499 (no loss).
    rows = 0
    for key in commits:
        body = s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        for action in map(json.loads, body.splitlines()):
            if "add" in action:
                rows += json.loads(action["add"]["stats"])["numRecords"]
            assert "remove" not in action
    assert rows == 500

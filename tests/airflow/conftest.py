"""Local stand-ins for AWS (SeaweedFS for S3, moto for EMR), an Airflow home, real job outputs.

Airflow reads its configuration when first imported, so the home and folders are set here,
at import time, before any test module imports Airflow.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from tests.airflow.fault_proxy import FaultProxy
from tests.conftest import REPO, SAMPLE, WEIGHTS, spark_submit_job
from tests.s3_server import S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, seaweedfs

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fruits-airflow-home-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    # No real AWS: no instance metadata lookups, no ~/.aws profile.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
os.environ.update(AIRFLOW_ENV)


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever ``sys.stdout`` is at the time of writing."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback

    def _target(self) -> TextIO:
        return self._fallback if sys.stdout is self else sys.stdout

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    @property
    def encoding(self) -> str:
        return getattr(self._target(), "encoding", None) or "utf-8"


def _follow_stdout_with_airflow_logs() -> None:
    """Make Airflow's log output follow ``sys.stdout``.

    Airflow binds its log stream to whatever ``sys.stdout`` is when logging is configured and
    when each logger is first used; under pytest that is one test's capture buffer, so later
    tests would lose the task logs that ``dag.test`` writes. A stream that follows
    ``sys.stdout`` lands them in the running test's ``capfd``.
    """
    import structlog

    saved = sys.stdout
    follower = _CurrentStdout(saved)
    sys.stdout = follower
    try:
        import airflow  # noqa: F401  (configures logging on import)
    finally:
        sys.stdout = saved
    factory = structlog.get_config()["logger_factory"]
    if hasattr(factory, "io"):
        factory.io = follower


_follow_stdout_with_airflow_logs()

BUCKET = "fruits-features-test"
INPUT_PREFIX = "input/fruits-360"
# What the fake EMR step publishes: a real run of the job on the sample data.
JOB_MODE, JOB_LIMIT, JOB_K = "mini", 24, 5
JOB_CONF = {"mode": JOB_MODE, "limit": JOB_LIMIT, "pca_components": JOB_K}
# dag.test talks to an in-process API server through starlette's TestClient, which warns.
QUIET_TEST_CLIENT = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    """A developer's exported FRUITS_* (or their Variable twins) must not change test results."""
    for name in list(os.environ):
        if name.startswith(("FRUITS_", "AIRFLOW_VAR_FRUITS_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """A real S3 API: SeaweedFS ``weed mini`` with the test bucket, inputs uploaded."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs"), BUCKET) as server:
        client = server.client()
        for path in sorted(SAMPLE.rglob("*")):
            if path.is_file():
                key = f"{INPUT_PREFIX}/{path.relative_to(SAMPLE).as_posix()}"
                client.upload_file(str(path), BUCKET, key)
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's EMR in this process (so tests can drive its state); yields the endpoint."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def emr_proxy(moto_server) -> Iterator[FaultProxy]:
    """moto's EMR behind a proxy that can fail as AWS does (tests/airflow/fault_proxy.py)."""
    proxy = FaultProxy(moto_server).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def emr_faults(emr_proxy) -> Iterator[FaultProxy]:
    """The proxy, with no fault queued and its counters at zero; cleared again afterwards."""
    emr_proxy.clear()
    yield emr_proxy
    emr_proxy.clear()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the session's Airflow home."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        env={**os.environ, **AIRFLOW_ENV},
        capture_output=True,
    )
    return AIRFLOW_HOME


def aws_connection(s3_endpoint: str, emr_endpoint: str, sns_endpoint: str | None = None) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT``: S3 to SeaweedFS, EMR (and SNS) to moto."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": S3_ACCESS_KEY,
            "password": S3_SECRET_KEY,
            "extra": {
                "region_name": "eu-west-1",
                "service_config": {
                    "s3": {"endpoint_url": s3_endpoint},
                    "emr": {"endpoint_url": emr_endpoint},
                    "sns": {"endpoint_url": sns_endpoint or emr_endpoint},
                },
            },
        }
    )


@pytest.fixture
def sns_topic(moto_server) -> str:
    """A new SNS topic in moto: its ARN."""
    import boto3

    sns = boto3.client(
        "sns",
        endpoint_url=moto_server,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return sns.create_topic(Name=f"alerts-{time.monotonic_ns()}")["TopicArn"]


def sns_messages(topic_arn: str) -> list[tuple[str, str]]:
    """(subject, message) of everything published to the topic, from moto's own record (the
    provider's hook publishes ``{"default": message}`` with the JSON message structure)."""
    from moto.backends import get_backend

    account, region = topic_arn.split(":")[4], topic_arn.split(":")[3]
    sent = get_backend("sns")[account][region].topics[topic_arn].sent_notifications
    return [(subject, json.loads(message)["default"]) for _, message, subject, *_ in sent]


@pytest.fixture
def pipeline_env(monkeypatch, s3_server, emr_faults, moto_server, tmp_path) -> dict[str, str]:
    """Environment of a test deployment: fast polling, its own results and output prefixes;
    EMR calls go through the fault proxy (``emr_faults``) to moto, SNS to moto."""
    connection = aws_connection(s3_server.endpoint, emr_faults.url, sns_endpoint=moto_server)
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": connection,
        "FRUITS_BUCKET": BUCKET,
        "FRUITS_INPUT_PREFIX": INPUT_PREFIX,
        # Per test, so a test never sees another test's runs.
        "FRUITS_OUTPUT_PREFIX": f"runs/{tmp_path.name}",
        "FRUITS_FEATURE_STORE_PREFIX": f"stores/{tmp_path.name}",
        "FRUITS_RESULTS_DIR": str(tmp_path / "results"),
        "FRUITS_STEP_POLL_SECONDS": "1",
        "FRUITS_STEP_TIMEOUT_SECONDS": "180",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def job_outputs(tmp_path_factory) -> Path:
    """Outputs of one real run of the Spark job on the sample data (what EMR would write)."""
    from fruits_contract.job_request import JobRequest

    work = tmp_path_factory.mktemp("job")
    request = JobRequest(
        input_uri=str(SAMPLE),
        output_uri=str(work / "run"),
        weights_uri=str(WEIGHTS),
        mode=JOB_MODE,
        pca_components=JOB_K,
        run_id="fixture",
        limit=JOB_LIMIT,
        export_features=True,  # as mode mini's runs do
    )
    result = spark_submit_job(request, work / "zip")
    assert result.returncode == 0, result.stdout[-5000:]
    return work / "run"


def _emr_backends():
    from moto.backends import get_backend

    for regions in list(get_backend("emr").values()):
        yield from list(regions.values())


def moto_emr(moto_server: str):
    """A boto3 EMR client of moto's server."""
    import boto3

    return boto3.client(
        "emr",
        endpoint_url=moto_server,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def start_moto_cluster(client, name: str, tags: dict[str, str] | None = None) -> str:
    """A waiting cluster in moto, as RunJobFlow makes one; its id."""
    return client.run_job_flow(
        Name=name,
        ReleaseLabel="emr-7.11.0",
        LogUri="s3://logs-bucket/emr-logs/",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )["JobFlowId"]


def emr_clusters() -> list:
    """Every cluster moto knows (server mode files them under us-east-1 whatever the region)."""
    return [c for backend in _emr_backends() for c in list(backend.clusters.values())]


BOOTSTRAP_FAILURE = "bootstrap action 1 returned a non-zero return code"


def sensor_is_waiting(run_id: str, task_id: str = "watch_step") -> bool:
    """Has the run's sensor deferred or rescheduled itself at least once?"""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).first()
        if ti is None:
            return False
        if ti.next_method is not None:
            return True
        rescheduled = select(TaskReschedule.id).where(TaskReschedule.ti_id == ti.id)
        return session.scalars(rescheduled).first() is not None


@dataclass
class EmrStepDriver:
    """Plays EMR's part for steps, once the run's sensor waits for one (deferred or
    rescheduled), so both wait paths get exercised.

    ``outcome``: RUN (the step's own command runs on local Spark, tests/airflow/emr_steps.py,
    and the step ends COMPLETED or FAILED by its exit code), FAILED (ended at once), or
    BOOTSTRAP_FAILURE (the cluster dies before the step starts, which EMR reports as a
    CANCELLED step).
    """

    s3: S3Server
    outcome: str = "RUN"
    max_wait: float = 60.0
    handled: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    _seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(0.2):
            for cluster in emr_clusters():
                # An ended cluster's steps never run (moto leaves them RUNNING: another
                # test's step left waiting on purpose must not be run by this driver).
                if cluster.state in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
                    continue
                for index, step in enumerate(list(cluster.steps)):
                    # Steps of other tests' clusters (no run id) are not a run's: left alone.
                    if step.state != "RUNNING" or step.id in self.handled:
                        continue
                    if "--run-id" not in step.args:
                        continue
                    run_id = list(step.args)[list(step.args).index("--run-id") + 1]
                    started = self._seen.setdefault(step.id, time.monotonic())
                    sensor = ("watch_step", "watch_maintenance")[min(index, 1)]
                    if (
                        sensor_is_waiting(run_id, sensor)
                        or time.monotonic() - started > self.max_wait
                    ):
                        self._finish(cluster, step)

    def _finish(self, cluster, step) -> None:
        from fruits_features.compute.emr_spec import step_log_uri
        from tests.airflow.emr_steps import StepExecutor

        args = list(step.args)
        values = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
        self.handled[step.id] = values
        if self.outcome == "BOOTSTRAP_FAILURE":
            cluster.state = "TERMINATED_WITH_ERRORS"
            cluster.last_state_change_reason = BOOTSTRAP_FAILURE
            step.state = "CANCELLED"
        elif self.outcome == "FAILED":
            step.state = "FAILED"
        else:
            log_uri = step_log_uri(cluster.log_uri, cluster.id, step.id)
            result = StepExecutor(self.s3.hook(), self.s3.access()).run(args, log_uri)
            self.runs[step.id] = result
            step.state = "COMPLETED" if result.code == 0 else "FAILED"
        # As EMR does (ActionOnFailure CONTINUE): the next step starts.
        waiting = [s for s in cluster.steps if s.state == "PENDING"]
        if waiting and cluster.state not in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
            waiting[0].state = "RUNNING"


def publish_job_outputs(
    s3: S3Server, outputs: Path, *, output_uri: str, run_id: str, input_uri: str, weights_uri: str
) -> None:
    """Put a real job run's outputs under ``output_uri``, as that run would have written them."""
    from fruits_features.s3_layout import split_s3_uri

    bucket, prefix = split_s3_uri(output_uri)
    client = s3.client()
    info_path = outputs / "model_info" / "model_info.json"
    info = json.loads(info_path.read_text())
    # What the job would have recorded had it run with these arguments.
    info.update(run_id=run_id, output=output_uri, input=input_uri)
    info["weights"]["uri"] = weights_uri
    files = sorted(p for p in outputs.rglob("*") if p.is_file() and p.suffix != ".crc")
    for path in sorted(files, key=lambda p: p.relative_to(outputs).as_posix() == "_SUCCESS"):
        key = f"{prefix.rstrip('/')}/{path.relative_to(outputs).as_posix()}"
        if path == info_path:
            client.put_object(Bucket=bucket, Key=key, Body=json.dumps(info).encode())
        else:
            client.upload_file(str(path), bucket, key)


@pytest.fixture
def emr_steps(s3_server, moto_server) -> Iterator[Callable[..., EmrStepDriver]]:
    """Start a step driver: ``emr_steps(outcome)``; stopped after the test."""
    drivers: list[tuple[EmrStepDriver, threading.Thread]] = []

    def start(outcome: str = "RUN") -> EmrStepDriver:
        driver = EmrStepDriver(s3=s3_server, outcome=outcome)
        thread = threading.Thread(target=driver.run, daemon=True)
        thread.start()
        drivers.append((driver, thread))
        return driver

    yield start
    for driver, thread in drivers:
        driver._stop.set()
        thread.join(timeout=5)


@pytest.fixture
def db_variables(airflow_db) -> Iterator[Callable[[str, str], None]]:
    """Set Airflow Variables in the metadata database (as the UI would); removed afterwards."""
    from airflow.models.variable import Variable

    keys: list[str] = []

    def set_variable(key: str, value: str) -> None:
        Variable.set(key, value)
        keys.append(key)

    yield set_variable
    for key in keys:
        Variable.delete(key)

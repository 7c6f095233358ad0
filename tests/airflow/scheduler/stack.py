"""Airflow as `make airflow` runs it (scripts/airflow.sh): api-server, scheduler, dag-processor
and triggerer as separate processes, driven through the REST API as a user or a client would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "airflow.sh"
DAG_ID = "fruits_features"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_environment(var_dir: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment `make airflow` would get from a clean shell, plus ``settings``.

    A developer's own AIRFLOW*/FRUITS_*/AWS_* variables (and the test session's Airflow home)
    must not reach the stack; no AWS profile or instance metadata is looked up.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "FRUITS_", "AWS_", "PYSPARK_"))
    }
    env.update(
        VENV=sys.prefix,
        VAR_DIR=str(var_dir),
        AIRFLOW_PORT=str(free_port()),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # Only the runs a test triggers: no scheduled run appears when a test unpauses the
        # DAG (unpausing would otherwise start the latest nightly interval at once).
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    env.update(settings)
    return env


def log_text(items: list[dict[str, Any]]) -> str:
    """A task log from the REST API's JSON items: each event, and each error's exceptions."""
    lines = []
    for item in items:
        lines.append(str(item.get("event", "")))
        for error in item.get("error_detail") or []:
            lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
    return "\n".join(lines)


def _family(pid: int) -> set[int]:
    """``pid``, its descendants and its session's members (what scripts/processes.sh stops)."""
    table = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,sid="], capture_output=True, text=True, check=True
    ).stdout
    rows = [tuple(int(x) for x in line.split()) for line in table.splitlines() if line.strip()]
    family = {pid} | {p for p, _, sid in rows if sid == pid}
    grew = True
    while grew:
        children = {p for p, ppid, _ in rows if ppid in family}
        grew = not children <= family
        family |= children
    return family


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@dataclass
class AirflowStack:
    """A stack started by ``scripts/airflow.sh start`` with ``env``."""

    env: dict[str, str]
    start_output: str = ""
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"{self.base_url}/api/v2", timeout=30)

    @property
    def var_dir(self) -> Path:
        return Path(self.env["VAR_DIR"])

    @property
    def port(self) -> int:
        return int(self.env["AIRFLOW_PORT"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def home(self) -> Path:
        return self.var_dir / "airflow-stack" / "home"

    def script(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), command],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    @classmethod
    def start(cls, env: dict[str, str]) -> AirflowStack:
        stack = cls(env)
        result = stack.script("start")
        stack.start_output = result.stdout
        if result.returncode != 0:
            logs = stack.var_dir / "airflow-stack" / "logs"
            raise AssertionError(f"airflow.sh start failed:\n{result.stdout}\nlogs in {logs}")
        return stack

    def pids(self) -> dict[str, int]:
        """The PID recorded for each component."""
        folder = self.var_dir / "airflow-stack" / "pids"
        return {c: int((folder / f"{c}.pid").read_text().split()[0]) for c in COMPONENTS}

    def processes(self) -> set[int]:
        """Every process of the stack now: the components and all they started."""
        return set().union(*(_family(pid) for pid in self.pids().values()))

    def session_leaders(self) -> set[int]:
        """Every session leader running with this stack's Airflow home: the scheduler,
        dag-processor and triggerer, and any second copy of them. The api-server is not
        seen (its process title overwrites its environment); task processes and parsers are
        no session leaders, a running task's spark-submit is one."""
        leaders = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue  # gone meanwhile
            session = int(stat.rsplit(")", 1)[1].split()[3])
            if session == int(entry.name) and f"AIRFLOW_HOME={self.home}".encode() in environ:
                leaders.add(session)
        return leaders

    def stop(self) -> str:
        """``airflow.sh stop``; fails unless every process of the stack is gone, its port closed."""
        before = self.processes()
        self.client.close()
        result = self.script("stop", timeout=120)
        assert result.returncode == 0, result.stdout
        left = sorted(pid for pid in before if _running(pid))
        assert not left, f"still running after stop: {left}\n{result.stdout}"
        assert not port_open(self.port), f"port {self.port} still open after stop"
        return result.stdout

    # --- REST API

    def unpause(self) -> None:
        response = self.client.patch(f"/dags/{DAG_ID}", json={"is_paused": False})
        assert response.status_code == 200, response.text

    def trigger(self, conf: dict[str, Any]) -> httpx.Response:
        return self.client.post(
            f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf}
        )

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def runs(self) -> list[dict[str, Any]]:
        response = self.client.get(f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})
        assert response.status_code == 200, response.text
        return response.json()["dag_runs"]

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        response = self.client.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        assert response.status_code == 200, response.text
        return {ti["task_id"]: ti for ti in response.json()["task_instances"]}

    def task_states(self, run_id: str) -> dict[str, str | None]:
        return {task: ti["state"] for task, ti in self.task_instances(run_id).items()}

    def task_log(self, run_id: str, task_id: str, try_number: int = 1) -> str:
        response = self.client.get(
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        assert response.status_code == 200, response.text
        return log_text(response.json()["content"])

    def wait_for_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        """The run once it has ended; fails with the task states if it takes longer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["state"] in TERMINAL:
                return run
            time.sleep(2)
        raise AssertionError(
            f"run {run_id} still {run['state']} after {timeout:.0f} s: {self.task_states(run_id)}"
        )

    def wait_for_task(
        self,
        run_id: str,
        task_id: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float,
    ) -> dict[str, Any]:
        """The task instance once ``check(ti)`` holds; fails with the run's states otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ti = self.task_instances(run_id).get(task_id)
            if ti is not None and check(ti):
                return ti
            if self.run(run_id)["state"] in TERMINAL:
                break
            time.sleep(1)
        raise AssertionError(
            f"{task_id} of {run_id} never got there: {json.dumps(self.task_states(run_id))}"
        )

    def running_jobs(self) -> list[str]:
        """The type of each job the components run (one per scheduler, triggerer, dag-processor)."""
        response = self.client.get("/jobs", params={"job_state": "running"})
        assert response.status_code == 200, response.text
        return sorted(job["job_type"] for job in response.json()["jobs"])

    def asset_events(self, run_id: str) -> list[dict[str, Any]]:
        response = self.client.get(
            "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id}
        )
        assert response.status_code == 200, response.text
        return response.json()["asset_events"]

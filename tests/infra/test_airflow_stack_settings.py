"""`make airflow` (scripts/airflow.sh) and the docker-compose dev stack run Airflow alike.

The two cannot share one file (compose needs container names and mounts, the script this
checkout's paths and free ports), so this test holds them together: every setting one of
them gives the Airflow components is given by the other, with the same value unless it
differs by design, for the reason written below.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.test_compose import _rendered

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "airflow.sh"

DIFFERENT_BY_DESIGN = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "Postgres in compose, SQLite under the checkout's var/",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "the api-server's container vs 127.0.0.1:<port>",
    "AIRFLOW__API_AUTH__JWT_SECRET": "compose's dev default vs a random secret per checkout",
    "AIRFLOW__API__SECRET_KEY": "compose's dev default vs a random secret per checkout",
    "AIRFLOW__CORE__FERNET_KEY": "empty (connections unencrypted) vs a random key per checkout",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "compose's healthcheck polls it; on a shared "
    "machine it would listen on a fixed port of every interface",
    "AIRFLOW_CONN_AWS_DEFAULT": "the SeaweedFS container vs this checkout's SeaweedFS",
    "FRUITS_PROJECT_DIR": "the container's mount vs the checkout",
    "FRUITS_RESULTS_DIR": "the container's mount vs the checkout's results/",
}
# Only the script sets these: the image has them built in, or compose passes a port mapping.
SCRIPT_ONLY = {
    "AIRFLOW_HOME": "the image's /opt/airflow",
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's /opt/airflow/dags, mounted",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "the image's /opt/airflow/plugins, mounted",
    "AIRFLOW__API__HOST": "0.0.0.0 inside the container, published as :8080",
    "AIRFLOW__API__PORT": "8080 inside the container",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO, Airflow's default",
    "PYSPARK_PYTHON": "the image has one Python",
}
SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW_CONN_AWS_DEFAULT",
}


def _normal(value: object) -> str:
    text = str(value)
    return text.lower() if text.lower() in ("true", "false") else text


@pytest.fixture(scope="module")
def script_settings(tmp_path_factory) -> dict[str, str]:
    """`scripts/airflow.sh env` as a fresh checkout prints it, from a clean shell."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "FRUITS_", "AWS_", "PYSPARK_"))
    }
    env.update(VENV=sys.prefix, VAR_DIR=str(tmp_path_factory.mktemp("var")))
    result = subprocess.run(
        [str(SCRIPT), "env"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


@pytest.fixture(scope="module")
def compose_settings() -> dict[str, str]:
    """What the compose stack gives its scheduler (where the tasks run), as rendered; settings
    passed through only when set (no value) are left out."""
    env = _rendered()["services"]["airflow-scheduler"]["environment"]
    return {name: str(value) for name, value in env.items() if value is not None}


def test_every_compose_setting_is_set_alike_by_make_airflow(compose_settings, script_settings):
    missing = sorted(set(compose_settings) - set(script_settings))
    assert not missing, f"docker-compose.yaml sets these, scripts/airflow.sh does not: {missing}"
    drifted = {
        name: (compose_settings[name], script_settings[name])
        for name in compose_settings
        if name not in DIFFERENT_BY_DESIGN
        and _normal(compose_settings[name]) != _normal(script_settings[name])
    }
    assert not drifted, f"(compose, make airflow) disagree: {drifted}"


def test_make_airflow_sets_nothing_compose_does_not_know(compose_settings, script_settings):
    extra = sorted(set(script_settings) - set(compose_settings) - set(SCRIPT_ONLY))
    assert not extra, f"set by scripts/airflow.sh only: add them to docker-compose.yaml: {extra}"


def test_the_settings_that_differ_do_so_as_described(compose_settings, script_settings, tmp_path):
    assert set(DIFFERENT_BY_DESIGN) <= set(compose_settings)
    var = Path(script_settings["AIRFLOW_HOME"]).parents[1]
    assert script_settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{var}/airflow-stack/home/airflow.db"
    )
    assert compose_settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith(":8080/execution/")
    port = script_settings["AIRFLOW__API__PORT"]
    assert script_settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://127.0.0.1:{port}/execution/"
    )
    assert script_settings["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert script_settings["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "false"
    assert script_settings["FRUITS_PROJECT_DIR"] == str(REPO)
    # Secrets are set for every component, and `env` does not print them.
    for name in SECRETS:
        assert script_settings[name] == "<secret>", name

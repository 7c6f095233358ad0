"""The dev stack: docker-compose.yaml, Dockerfile and .env.example.

No Docker engine is needed: docker-compose only renders and validates the file,
and the rest reads it as YAML.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from fruits_features.config import env_name
from fruits_features.settings import setting_fields
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
EXPECTED_SERVICES = {
    "postgres",
    "seaweedfs",
    "seed-sample-data",
    "airflow-init",
    *AIRFLOW_SERVICES,
}
ONE_SHOT_SERVICES = {"airflow-init", "seed-sample-data"}
# Bind-mounted folders the stack writes into; they appear on first start and
# must stay out of git.
RUNTIME_OUTPUT_DIRS = {"results"}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _docker_compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the file as a fresh checkout would see it.

    A developer's own .env and FRUITS_*/AIRFLOW*/AWS_* shell variables would
    otherwise leak into the rendered file; a freshly generated one (``make
    compose-env``) stands in unless ``env_file`` is given.
    """
    binary = require_tool("docker-compose")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FRUITS_", "AIRFLOW", "AWS_", "COMPOSE_"))
    }
    with tempfile.TemporaryDirectory() as scratch:
        if env_file is None:
            env_file = _generated_env(Path(scratch))
        return subprocess.run(
            [
                binary,
                "--project-directory",
                str(REPO),
                "--env-file",
                str(env_file),
                "-f",
                str(COMPOSE_FILE),
                *args,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _rendered(env_file: Path | None = None) -> dict[str, Any]:
    result = _docker_compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _host_path(volume: str) -> str | None:
    """Host side of a short-syntax bind mount, None for a named volume."""
    source = volume.split(":", 1)[0]
    return source if source.startswith((".", "/")) else None


def _env_example_names() -> dict[str, str | None]:
    """Every variable .env.example mentions, set or commented out."""
    names: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            commented = line.lstrip().startswith("#")
            names[match.group(1)] = None if commented else match.group(2)
    return names


# Run in a child process with its own AIRFLOW_HOME: importing Airflow here would
# load its configuration once for the whole pytest process.
_CLIENT_PROBE = """
import json
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
hook = S3Hook(aws_conn_id="aws_default")
client = hook.get_conn()
credentials = hook.get_credentials()
print(json.dumps({
    "endpoint": client.meta.endpoint_url,
    "region": client.meta.region_name,
    "access_key": credentials.access_key,
    "secret_key": credentials.secret_key,
}))
"""


def _s3_client_seen_by_airflow(connection: str, tmp_path: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "AWS_"))
    }
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW_CONN_AWS_DEFAULT=connection)
    result = subprocess.run(
        [sys.executable, "-c", _CLIENT_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_docker_compose_accepts_the_file():
    result = _docker_compose("config", "-q")
    assert result.returncode == 0, result.stderr
    # A variable without a default renders as "" with only a warning.
    assert "is not set" not in result.stderr, result.stderr


def test_expected_services_exist():
    assert set(_services()) >= EXPECTED_SERVICES


def test_airflow_runs_local_executor_on_postgres_with_low_parallelism():
    services = _services()
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 8, name


def test_components_share_one_jwt_secret():
    rendered = _rendered()["services"]
    secrets = {
        rendered[name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW_SERVICES
    }
    assert len(secrets) == 1
    assert secrets.pop()


def test_airflow_services_use_the_project_image_and_command():
    services = _services()
    commands = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name, command in commands.items():
        assert services[name]["command"] == command
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["airflow-init"]["image"]


def test_long_running_services_have_healthchecks():
    services = _services()
    for name in EXPECTED_SERVICES - ONE_SHOT_SERVICES:
        healthcheck = services[name].get("healthcheck")
        assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"


def test_start_order():
    services = _services()

    def condition(service: str, dependency: str) -> str:
        return services[service]["depends_on"][dependency]["condition"]

    assert condition("airflow-init", "postgres") == "service_healthy"
    assert condition("seed-sample-data", "seaweedfs") == "service_healthy"
    for name in AIRFLOW_SERVICES:
        assert condition(name, "airflow-init") == "service_completed_successfully"
        assert condition(name, "postgres") == "service_healthy"
    assert condition("airflow-scheduler", "seed-sample-data") == "service_completed_successfully"
    for name in ONE_SHOT_SERVICES:
        assert services[name].get("restart") == "no", name


def test_project_folders_are_mounted():
    volumes = _services()["airflow-scheduler"]["volumes"]
    mounted = {_host_path(v).rstrip("/") for v in volumes if _host_path(v)}
    for folder in ("dags", "plugins", "spark", "bootstrap", "models", "sample_data"):
        assert f"./{folder}" in mounted, folder


def test_mounted_host_paths_exist():
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            host = _host_path(volume)
            if host is None:
                continue
            relative = host.removeprefix("./").rstrip("/")
            if relative in RUNTIME_OUTPUT_DIRS:
                assert f"{relative}/" in ignored, f"{relative}/ should be in .gitignore"
                continue
            assert (REPO / relative).exists(), f"{name} mounts missing {host}"


def test_project_dir_matches_the_mounts():
    service = _services()["airflow-scheduler"]
    project_dir = service["environment"]["FRUITS_PROJECT_DIR"]
    targets = {v.split(":")[1] for v in service["volumes"]}
    for folder in ("spark", "bootstrap", "models"):
        assert f"{project_dir}/{folder}" in targets, folder
    assert service["environment"]["FRUITS_RESULTS_DIR"] in targets


def test_build_files_exist():
    for name, service in _services().items():
        build = service.get("build")
        if build is None:
            continue
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (context / dockerfile).is_file(), name
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY") and "--from" not in line:
            sources = [word for word in line.split()[1:] if not word.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerignore_keeps_what_the_dockerfile_copies():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    for name in ("requirements.txt", "constraints.txt"):
        assert f"!{name}" in patterns


def test_image_matches_the_pinned_airflow():
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", text, re.M)
    assert base, "the image must build FROM apache/airflow:<version>-python<version>"
    pins = (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert f"apache-airflow=={base.group(1)}\n" in pins
    assert base.group(2) == "3.11"
    assert "openjdk-17-jre-headless" in text
    assert re.search(r"pip install.*-r \S*requirements\.txt.*-c \S*constraints\.txt", text, re.S)


def test_stack_defaults_to_local_compute():
    env = _rendered()["services"]["airflow-scheduler"]["environment"]
    assert env["FRUITS_COMPUTE"] == "local"
    assert env["FRUITS_BUCKET"]
    assert env["FRUITS_AWS_CONN_ID"] == "aws_default"


def test_default_connection_sends_s3_to_seaweedfs(tmp_path):
    rendered = _rendered(_generated_env(tmp_path / "env"))["services"]
    scheduler_env = rendered["airflow-scheduler"]["environment"]

    client = _s3_client_seen_by_airflow(scheduler_env["AIRFLOW_CONN_AWS_DEFAULT"], tmp_path)

    assert client["endpoint"] == "http://seaweedfs:8333"
    assert client["region"] == scheduler_env["FRUITS_REGION"]
    seaweed_env = rendered["seaweedfs"]["environment"]
    assert client["access_key"] == seaweed_env["AWS_ACCESS_KEY_ID"]
    assert client["secret_key"] == seaweed_env["AWS_SECRET_ACCESS_KEY"]
    assert seaweed_env["S3_BUCKET"] == scheduler_env["FRUITS_BUCKET"]
    # The seed uploads where the DAG reads, through the same connection.
    seed_env = rendered["seed-sample-data"]["environment"]
    for name in (
        "AIRFLOW_CONN_AWS_DEFAULT",
        "FRUITS_AWS_CONN_ID",
        "FRUITS_BUCKET",
        "FRUITS_INPUT_PREFIX",
    ):
        assert seed_env[name] == scheduler_env[name], name


def test_env_example_real_aws_connection_is_valid_json():
    values = [
        json.loads(match.group(1))
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (match := re.match(r"^#?\s*AIRFLOW_CONN_AWS_DEFAULT=(.*)$", line.strip()))
    ]
    # The local stack's connection, and the commented one for real AWS.
    assert len(values) == 2, values
    assert all(value["conn_type"] == "aws" for value in values)
    assert [v["extra"].get("endpoint_url") for v in values] == ["http://seaweedfs:8333", None]


SETTINGS = {env_name(name) for _, name, _ in setting_fields()}


def _compose_names() -> set[str]:
    return set(re.findall(r"\bFRUITS_[A-Z0-9_]*[A-Z0-9]\b", COMPOSE_FILE.read_text("utf-8")))


def test_fruits_names_are_project_settings():
    used = _compose_names() | {name for name in _env_example_names() if name.startswith("FRUITS_")}
    unknown = sorted(used - SETTINGS)
    assert not unknown, f"not settings of the project (see config.py): {unknown}"


def test_compose_and_env_example_list_every_setting():
    # The stack passes every setting through, and .env.example shows each one.
    forwarded = set(_services()["airflow-scheduler"]["environment"])
    assert sorted(SETTINGS - forwarded) == []
    assert sorted(SETTINGS - set(_env_example_names())) == []


def test_every_env_example_setting_reaches_the_containers():
    # A line of .env.example that compose neither forwards nor interpolates
    # would be silently ignored.
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    forwarded = set(_services()["airflow-scheduler"]["environment"])
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    for name in _env_example_names():
        assert name in forwarded | interpolated, name


# --- what the stack exposes, and its secrets (issue 24 #5)

COMPOSE_ENV = REPO / "scripts" / "compose_env.py"
SECRET_NAMES = (
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
    "LOCAL_S3_ACCESS_KEY",
    "LOCAL_S3_SECRET_KEY",
)


def _generated_env(folder: Path) -> Path:
    """A fresh checkout's .env, as `make compose-env` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(COMPOSE_ENV), "--env-file", str(folder / ".env")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / ".env"


def _values(env_file: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in env_file.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def test_the_stack_listens_on_loopback_only():
    """Every visitor of the UI is an admin and the S3 server's key pair is in .env: neither
    may be reachable from the network the laptop is on."""
    for name, service in _services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_stack_has_no_fixed_secret(tmp_path):
    """No key, secret or password of the stack is in the repository: `make compose-env`
    generates them into .env, and compose refuses to start without them, saying so."""
    text = COMPOSE_FILE.read_text(encoding="utf-8") + ENV_EXAMPLE.read_text(encoding="utf-8")
    for fixed in ("fruits-secret", "dev-jwt-secret", "dev-api-secret", 'FERNET_KEY: ""'):
        assert fixed not in text, fixed
    refused = _docker_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert refused.returncode != 0
    assert "make compose-env" in refused.stderr, refused.stderr
    first, second = _values(_generated_env(tmp_path / "a")), _values(_generated_env(tmp_path / "b"))
    for name in SECRET_NAMES:
        assert len(first[name]) >= 16 and first[name] != second[name], name
    rendered = _rendered(tmp_path / "a" / ".env")["services"]
    env = rendered["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] == first["AIRFLOW_FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == first["AIRFLOW_JWT_SECRET"]
    assert (
        rendered["seaweedfs"]["environment"]["AWS_SECRET_ACCESS_KEY"]
        == first["LOCAL_S3_SECRET_KEY"]
    )


def test_compose_env_keeps_what_a_env_already_holds(tmp_path):
    env_file = _generated_env(tmp_path)
    before = _values(env_file)
    env_file.write_text(env_file.read_text() + "FRUITS_BUCKET=my-own-bucket\n")
    _generated_env(tmp_path)
    after = _values(env_file)
    assert after == {**before, "FRUITS_BUCKET": "my-own-bucket"}

"""bootstrap/install_dependencies.sh and bootstrap/requirements-emr-*.txt.

The script is also run for real, in a sandbox: fake `dnf` and `aws` on PATH, EMR's
instance.json saying master or core, the venv in a temp folder, and requirements files the
fresh venv already satisfies (the pip it was created with) with `--no-index`, so no network
is touched and a run takes seconds. What stays untested here is the download of the real
packages; their pins are checked against the project's and the job's engine registry instead.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fruits_contract.engines import BASE_MODULES, ENGINES, OFFERED
from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.settings import build_config
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bootstrap" / "install_dependencies.sh"
REQUIREMENTS = sorted((REPO / "bootstrap").glob("requirements-emr-*.txt"))
VENV_PATH = "/opt/fruits-features/venv"
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ install_dependencies: ", re.M)


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip().removesuffix("\\").strip()
        if not line or line.startswith("-"):
            continue
        name, version = line.split("==")
        pins[canonicalize_name(Requirement(name).name)] = version.strip()
    return pins


def _verify_imports(path: Path) -> list[str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# verify-imports: "), path
    return first.removeprefix("# verify-imports: ").split()


# --------------------------------------------------------------- static checks


def test_bash_parses_the_script():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_passes():
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_executable_with_strict_mode():
    text = SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert SCRIPT.stat().st_mode & stat.S_IXUSR


def test_script_installs_into_the_venv_the_cluster_uses():
    assert f"DEFAULT_VENV_DIR={VENV_PATH}\n" in SCRIPT.read_text(encoding="utf-8")


def test_cluster_config_points_pyspark_at_that_venv():
    assert build_config({}).group(EmrSettings).emr_python == f"{VENV_PATH}/bin/python"


def test_one_file_for_the_driver_and_one_per_engine_for_the_workers():
    names = {p.name for p in REQUIREMENTS}
    assert names == {"requirements-emr-driver.txt"} | {
        f"requirements-emr-worker-{engine}.txt" for engine in OFFERED
    }


def test_requirement_files_are_generated_from_the_engine_registry():
    """Roots from spark/fruits_job/engines.py, closure from what is installed here."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "emr_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("engine", OFFERED)
def test_a_worker_imports_what_its_engine_runs_and_the_driver_everything(engine):
    worker = _verify_imports(REPO / "bootstrap" / f"requirements-emr-worker-{engine}.txt")
    assert set(worker) == {*BASE_MODULES, *ENGINES[engine].worker_modules}
    driver = set(_verify_imports(REPO / "bootstrap" / "requirements-emr-driver.txt"))
    assert driver >= {*BASE_MODULES, *ENGINES[engine].driver_modules}
    assert driver >= set(ENGINES[engine].worker_modules)


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_requirements_agree_with_constraints(path):
    constraints = _pins(REPO / "constraints.txt")
    mismatched = {
        name: (version, constraints.get(name))
        for name, version in _pins(path).items()
        if constraints.get(name) != version
    }
    assert not mismatched, f"{path.name} vs constraints.txt: {mismatched}"


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_every_pin_carries_the_hashes_of_its_files(path):
    """pip installs in hash-checking mode: a file swapped on the index, a mirror or the way
    fails the bootstrap instead of running on the cluster."""
    lines = path.read_text(encoding="utf-8").splitlines()
    pins = [i for i, line in enumerate(lines) if line and line[0].isalnum()]
    assert pins
    for i in pins:
        assert lines[i].endswith(" \\") and lines[i + 1].lstrip().startswith("--hash=sha256:"), (
            lines[i]
        )


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_requirements_leave_spark_and_airflow_to_others(path):
    names = set(_pins(path))
    assert "pyspark" not in names
    assert not {name for name in names if name.startswith("apache-airflow")}
    # The venv is isolated from EMR's system Python: boto3 (listing on the executors,
    # the store's writer lock on the driver) is pinned like any other module.
    assert "boto3" in names


def test_core_nodes_install_no_tensorflow_for_the_default_engine():
    assert "tensorflow-cpu" not in _pins(
        REPO / "bootstrap" / "requirements-emr-worker-onnxruntime.txt"
    )


# ------------------------------------------------------------- sandboxed runs


def _base_python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


class Sandbox:
    """A fake EMR node: `dnf` provides python3.11, `aws s3 cp` reads a folder."""

    def __init__(self, root: Path):
        self.root = root
        self.instance_info = root / "instance.json"
        self.role("master")
        self.bin = root / "bin"
        self.bucket = root / "s3"
        self.calls = root / "calls.log"
        self.python = root / "usr" / "bin" / "python3.11"
        self.venv = root / "opt" / "fruits-features" / "venv"
        for folder in (self.bin, self.bucket, self.python.parent):
            folder.mkdir(parents=True)
        self.calls.touch()
        self._tool(
            "dnf",
            'for package in "$@"; do case "$package" in\n'
            f'  python3.11) ln -s "{_base_python()}" "{self.python}";;\n'
            "esac; done",
        )
        # aws s3 cp [--flags] s3://BUCKET/KEY DEST
        self._tool(
            "aws",
            'for arg in "$@"; do case "$arg" in s3://*) src="${arg#s3://}";; esac; done\n'
            'for dest in "$@"; do :; done\n'
            f'cp "{self.bucket}/$src" "$dest"',
        )
        self._tool("sudo", 'exec "$@"')

    def role(self, role: str) -> None:
        """What EMR's instance.json says this node is."""
        master = "true" if role == "master" else "false"
        self.instance_info.write_text(f'{{"isMaster": {master}, "instanceGroupId": "ig-1"}}\n')

    def _tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(
            f'#!/usr/bin/env bash\nset -eu\necho "{name} $*" >> "{self.calls}"\n{body}\n',
            encoding="utf-8",
        )
        path.chmod(0o755)

    def put(self, key: str, text: str) -> str:
        path = self.bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return f"s3://{key}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "BOOTSTRAP_VENV_DIR": str(self.venv),
            "BOOTSTRAP_PYTHON": str(self.python),
            "BOOTSTRAP_PIP_ARGS": "--no-index",
            "BOOTSTRAP_INSTANCE_INFO": str(self.instance_info),
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def tool_calls(self, name: str) -> list[str]:
        lines = self.calls.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.split(" ", 1)[0] == name]

    @property
    def stamp(self) -> Path:
        return self.venv / ".fruits-features-requirements.sha256"


@pytest.fixture
def sandbox(tmp_path):
    probe = subprocess.run(
        [_base_python(), "-c", "import ensurepip, venv"], capture_output=True, check=False
    )
    assert probe.returncode == 0, (
        f"{_base_python()} cannot create venvs with pip: apt-get install python3-venv"
    )
    return Sandbox(tmp_path)


def _satisfied_requirements(imports: str = "pip json") -> str:
    """A requirement a venv fresh from this interpreter already meets."""
    version = subprocess.run(
        [_base_python(), "-c", "import ensurepip; print(ensurepip.version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"# verify-imports: {imports}\n# test requirements\npip=={version}\n"


def test_fresh_node_then_rerun_then_changed_requirements(sandbox):
    uri = sandbox.put("bucket/bootstrap/requirements-emr-driver.txt", _satisfied_requirements())
    worker = sandbox.put("bucket/bootstrap/requirements-emr-worker.txt", "not read on a master")

    first = sandbox.run(uri, worker)

    assert first.returncode == 0, first.stdout + first.stderr
    assert sandbox.tool_calls("dnf") == ["dnf install -y python3.11 python3.11-pip"]
    assert sandbox.tool_calls("aws")[0].startswith("aws s3 cp ")
    assert (sandbox.venv / "bin" / "python").exists()
    assert sandbox.stamp.is_file()
    assert TIMESTAMPED.search(first.stdout)
    assert "creating venv" in first.stdout
    assert "pip installing 1 pinned packages" in first.stdout
    assert "node role: master" in first.stdout and "importing: pip json" in first.stdout
    stamp = sandbox.stamp.read_text(encoding="utf-8")

    second = sandbox.run(uri, worker)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "is up to date; nothing to do" in second.stdout
    assert "pip installing" not in second.stdout
    assert len(sandbox.tool_calls("dnf")) == 1
    assert sandbox.stamp.read_text(encoding="utf-8") == stamp

    sandbox.put(
        "bucket/bootstrap/requirements-emr-driver.txt", _satisfied_requirements() + "# v2\n"
    )
    third = sandbox.run(uri, worker)

    assert third.returncode == 0, third.stdout + third.stderr
    assert "creating venv" not in third.stdout
    assert "pip installing" in third.stdout
    assert sandbox.stamp.read_text(encoding="utf-8") != stamp
    assert len(sandbox.tool_calls("dnf")) == 1


def test_failed_install_leaves_no_stamp_and_the_next_run_finishes(sandbox, tmp_path):
    sandbox.python.symlink_to(_base_python())
    requirements = tmp_path / "requirements-emr-driver.txt"
    requirements.write_text(
        "# verify-imports: json\nno-such-package-fruits-features==1.0\n", encoding="utf-8"
    )

    failed = sandbox.run(str(requirements), str(requirements))

    assert failed.returncode != 0
    assert not sandbox.stamp.exists()
    assert sandbox.tool_calls("dnf") == []
    assert sandbox.tool_calls("aws") == []

    requirements.write_text(_satisfied_requirements(), encoding="utf-8")
    fixed = sandbox.run(str(requirements), str(requirements))

    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "creating venv" not in fixed.stdout
    assert sandbox.stamp.is_file()


def test_missing_requirements_file_fails_before_installing_anything(sandbox, tmp_path):
    result = sandbox.run(str(tmp_path / "absent.txt"), str(tmp_path / "absent.txt"))

    assert result.returncode == 1
    assert "requirements file not found" in result.stdout
    assert sandbox.tool_calls("dnf") == []
    assert not sandbox.venv.exists()


def test_a_node_with_python_installs_nothing_with_dnf(sandbox, tmp_path):
    sandbox.python.symlink_to(_base_python())
    requirements = tmp_path / "requirements-emr-driver.txt"
    requirements.write_text(_satisfied_requirements(), encoding="utf-8")

    result = sandbox.run(str(requirements), str(requirements))

    assert result.returncode == 0, result.stdout + result.stderr
    assert sandbox.tool_calls("dnf") == []

    # A node where dnf cannot provide python3.11: the bootstrap fails, naming it.
    sandbox.python.unlink()
    (sandbox.bin / "dnf").write_text("#!/usr/bin/env bash\nexit 0\n", encoding="utf-8")
    broken = sandbox.run(str(requirements), str(requirements))

    assert broken.returncode == 1
    assert f"{sandbox.python} still missing after dnf install" in broken.stdout


def test_a_core_node_installs_the_worker_file(sandbox, tmp_path):
    sandbox.role("core")
    driver = tmp_path / "requirements-emr-driver.txt"
    driver.write_text("# verify-imports: json\nno-such-package-fruits-features==1.0\n")
    worker = tmp_path / "requirements-emr-worker-onnxruntime.txt"
    worker.write_text(_satisfied_requirements("csv"))

    result = sandbox.run(str(driver), str(worker))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "node role: core" in result.stdout
    assert "importing: csv" in result.stdout


def test_a_file_without_its_import_list_is_refused(sandbox, tmp_path):
    plain = tmp_path / "requirements.txt"
    plain.write_text("pip\n")

    result = sandbox.run(str(plain), str(plain))

    assert result.returncode == 1
    assert "does not start with '# verify-imports: <modules>'" in result.stdout
    assert not sandbox.venv.exists()


def test_a_node_without_instance_json_is_refused(sandbox, tmp_path):
    sandbox.instance_info.unlink()
    requirements = tmp_path / "requirements-emr-driver.txt"
    requirements.write_text(_satisfied_requirements())

    result = sandbox.run(str(requirements), str(requirements))

    assert result.returncode == 1
    assert "instance.json not found" in result.stdout

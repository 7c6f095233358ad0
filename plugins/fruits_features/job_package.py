"""The Spark job's files as shipped to S3: entry point, package zip, bootstrap script, weights."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from fruits_contract.engines import OFFERED
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import (
    BOOTSTRAP_NAME,
    DRIVER_REQUIREMENTS_NAME,
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    MAINTENANCE_ENTRY_NAME,
    WEIGHTS_NAME,
    RunLayout,
    worker_requirements_name,
)

log = logging.getLogger(__name__)

JOB_PACKAGE = "fruits_job"
# The packages the job imports, by folder in the project: the job's own and the contract it
# shares with the Airflow side.
PACKAGES = {JOB_PACKAGE: Path("spark"), "fruits_contract": Path("plugins")}
# Fixed timestamp: the same sources give a byte-identical zip (same checksum on every run).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class MissingArtifactError(FileNotFoundError):
    """A file the job needs is not in the project directory."""


def source_files(project_dir: Path) -> dict[str, Path]:
    """Project files uploaded as they are, by artifact name."""
    return {
        ENTRY_POINT_NAME: project_dir / "spark" / ENTRY_POINT_NAME,
        MAINTENANCE_ENTRY_NAME: project_dir / "spark" / MAINTENANCE_ENTRY_NAME,
        BOOTSTRAP_NAME: project_dir / "bootstrap" / BOOTSTRAP_NAME,
        DRIVER_REQUIREMENTS_NAME: project_dir / "bootstrap" / DRIVER_REQUIREMENTS_NAME,
        **{
            name: project_dir / "bootstrap" / name
            for name in map(worker_requirements_name, OFFERED)
        },
        WEIGHTS_NAME: project_dir / "models" / WEIGHTS_NAME,
    }


def check_sources(project_dir: Path) -> None:
    """Fail with every missing file named (before anything is uploaded or started)."""
    missing = [str(p) for p in source_files(project_dir).values() if not p.is_file()]
    missing += [
        str(project_dir / folder / name / "__init__.py")
        for name, folder in PACKAGES.items()
        if not (project_dir / folder / name / "__init__.py").is_file()
    ]
    if missing:
        raise MissingArtifactError(
            "job files missing (check FRUITS_PROJECT_DIR): " + ", ".join(missing)
        )


def package_files(project_dir: Path) -> dict[str, Path]:
    """The job's Python sources by their name in the zip (``fruits_job/...``,
    ``fruits_contract/...``)."""
    files: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        package = project_dir / folder / name
        if not (package / "__init__.py").is_file():
            raise MissingArtifactError(f"{package}/__init__.py not found")
        for path in sorted(package.rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[path.relative_to(package.parent).as_posix()] = path
    return dict(sorted(files.items()))


def build_job_zip(project_dir: Path, dest_dir: Path) -> Path:
    """Zip the job's packages (importable from --py-files)."""
    target = dest_dir / JOB_ZIP_NAME
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_files(project_dir).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def artifact_files(project_dir: Path, build_dir: Path) -> dict[str, Path]:
    """Every artifact of a run, by name, with the zip built into ``build_dir``."""
    check_sources(project_dir)
    files = source_files(project_dir)
    files[JOB_ZIP_NAME] = build_job_zip(project_dir, build_dir)
    return files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_run_artifacts(
    s3: RunS3Hook, layout: RunLayout, project_dir: Path, extra: Mapping[str, Path] | None = None
) -> dict[str, str]:
    """Upload every artifact of the run under its artifacts prefix, and ``extra`` ones (the
    lineage listener's jar); their SHA-256 by name."""
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fruits-artifacts-") as build_dir:
        files = {**artifact_files(project_dir, Path(build_dir)), **(extra or {})}
        for name, path in files.items():
            key = layout.artifact_key(name)
            s3.conn.upload_file(str(path), layout.bucket, key)
            digests[name] = sha256_file(path)
            log.info(
                "Uploaded %s (%d bytes, sha256 %s) to s3://%s/%s",
                *(path, path.stat().st_size, digests[name], layout.bucket, key),
            )
    return digests


if __name__ == "__main__":
    # python -m fruits_features.job_package [DEST_DIR]: build the job zip (make job-zip).
    import sys

    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
    dest.mkdir(parents=True, exist_ok=True)
    print(build_job_zip(Path(__file__).resolve().parents[2], dest))

"""The Spark job's files as shipped to S3: entry point, package zip, bootstrap script, weights."""

from __future__ import annotations

import zipfile
from pathlib import Path

from fruits_features.engines import ENGINES
from fruits_features.s3_layout import (
    BOOTSTRAP_NAME,
    DRIVER_REQUIREMENTS_NAME,
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    WEIGHTS_NAME,
    worker_requirements_name,
)

JOB_PACKAGE = "fruits_job"
# Fixed timestamp: the same sources give a byte-identical zip (same checksum on every run).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class MissingArtifactError(FileNotFoundError):
    """A file the job needs is not in the project directory."""


def source_files(project_dir: Path) -> dict[str, Path]:
    """Project files uploaded as they are, by artifact name."""
    return {
        ENTRY_POINT_NAME: project_dir / "spark" / ENTRY_POINT_NAME,
        BOOTSTRAP_NAME: project_dir / "bootstrap" / BOOTSTRAP_NAME,
        DRIVER_REQUIREMENTS_NAME: project_dir / "bootstrap" / DRIVER_REQUIREMENTS_NAME,
        **{
            name: project_dir / "bootstrap" / name
            for name in map(worker_requirements_name, ENGINES)
        },
        WEIGHTS_NAME: project_dir / "models" / WEIGHTS_NAME,
    }


def check_sources(project_dir: Path) -> None:
    """Fail with every missing file named (before anything is uploaded or started)."""
    missing = [str(p) for p in source_files(project_dir).values() if not p.is_file()]
    package = project_dir / "spark" / JOB_PACKAGE
    if not (package / "__init__.py").is_file():
        missing.append(str(package / "__init__.py"))
    if missing:
        raise MissingArtifactError(
            "job files missing (check FRUITS_PROJECT_DIR): " + ", ".join(missing)
        )


def package_files(project_dir: Path) -> dict[str, Path]:
    """The job package's source files by their name in the zip (``fruits_job/...``)."""
    package = project_dir / "spark" / JOB_PACKAGE
    files = sorted(
        p
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )
    if not any(p.name == "__init__.py" and p.parent == package for p in files):
        raise MissingArtifactError(f"{package}/__init__.py not found")
    return {path.relative_to(package.parent).as_posix(): path for path in files}


def build_job_zip(project_dir: Path, dest_dir: Path) -> Path:
    """Zip ``spark/fruits_job/`` as ``fruits_job/...`` (importable from --py-files)."""
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


if __name__ == "__main__":
    # python -m fruits_features.job_package [DEST_DIR]: build the job zip (make job-zip).
    import sys

    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
    dest.mkdir(parents=True, exist_ok=True)
    print(build_job_zip(Path(__file__).resolve().parents[2], dest))

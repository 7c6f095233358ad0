"""Write bootstrap/requirements-emr-*.txt: what each EMR node role installs, fully pinned.

    .venv/bin/python scripts/emr_requirements.py          # rewrite the files
    .venv/bin/python scripts/emr_requirements.py --check  # exit 1 if they are out of date

The roots come from the job's engine registry (spark/fruits_job/engines.py): a core node
runs Python workers only, so it gets the worker modules of one engine; the master runs the
driver, which exports the model for any engine, so it gets every engine's modules. Each file
pins the whole dependency closure at the versions installed here (constraints.txt), so a
cluster built next month gets what was measured. The first line of each file names the
modules the bootstrap imports once installed.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
from fruits_contract.engines import BASE_MODULES, ENGINES, OFFERED  # noqa: E402

BOOTSTRAP = REPO / "bootstrap"
# pip and venv bring these; they are not the job's.
NOT_PINNED = {"pip", "setuptools", "wheel"}


def distribution_of(module: str) -> str:
    return canonicalize_name(metadata.packages_distributions()[module][0])


def closure(roots: set[str]) -> dict[str, str]:
    """Every distribution the roots need (their default extras), with its installed version."""
    seen: dict[str, str] = {}
    stack = list(roots)
    while stack:
        name = canonicalize_name(stack.pop())
        if name in seen or name in NOT_PINNED:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for requirement in dist.requires or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                stack.append(parsed.name)
    return dict(sorted(seen.items()))


def role_modules() -> dict[str, tuple[str, ...]]:
    """Modules each file's node imports: ``driver`` and ``worker-<engine>``."""
    driver = list(BASE_MODULES)
    offered = [ENGINES[name] for name in OFFERED]
    for spec in offered:
        driver += [*spec.driver_modules, *spec.worker_modules]
    roles = {"driver": tuple(dict.fromkeys(driver))}
    for spec in offered:
        name = spec.name
        roles[f"worker-{name}"] = tuple(dict.fromkeys([*BASE_MODULES, *spec.worker_modules]))
    return roles


def render(role: str, modules: tuple[str, ...]) -> str:
    pins = closure({distribution_of(m) for m in modules})
    where = "the master (the Spark driver)" if role == "driver" else "the core nodes"
    lines = [
        f"# verify-imports: {' '.join(modules)}",
        f"# Installed by bootstrap/install_dependencies.sh on {where} into",
        "# /opt/fruits-features/venv. Written by scripts/emr_requirements.py from the job's",
        "# engine registry at the versions of constraints.txt: do not edit by hand.",
        "# Not here: pyspark (EMR's Spark puts its own on PYTHONPATH) and Airflow.",
        "",
        *(f"{name}=={version}" for name, version in pins.items()),
    ]
    return "\n".join(lines) + "\n"


def expected_files() -> dict[Path, str]:
    return {
        BOOTSTRAP / f"requirements-emr-{role}.txt": render(role, modules)
        for role, modules in role_modules().items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = [p for p, text in expected_files().items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run scripts/emr_requirements.py")
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write bootstrap/requirements-emr-*.txt: what each EMR node role installs, fully pinned.

    .venv/bin/python scripts/emr_requirements.py          # rewrite the files (uses PyPI)
    .venv/bin/python scripts/emr_requirements.py --check  # exit 1 if they are out of date

The roots come from the job's engine registry (spark/fruits_job/engines.py): a core node
runs Python workers only, so it gets the worker modules of one engine; the master runs the
driver, which exports the model for any engine, so it gets every engine's modules. Each file
pins the whole dependency closure at the versions installed here (constraints.txt), so a
cluster built next month gets what was measured, and each pin carries the SHA-256 of the
files PyPI serves for it that an EMR node can install (CPython 3.11 on x86_64 Linux, and the
sdist): pip then installs in hash-checking mode, so a file swapped on the index or on the
way fails the bootstrap instead of running on the cluster. The first line of each file names
the modules the bootstrap imports once installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
from fruits_contract.engines import BASE_MODULES, ENGINES, OFFERED  # noqa: E402

BOOTSTRAP = REPO / "bootstrap"
# pip and venv bring these; they are not the job's.
NOT_PINNED = {"pip", "setuptools", "wheel"}
INDEX = "https://pypi.org/simple"
# What an EMR 7 node installs: CPython 3.11 (bootstrap/install_dependencies.sh) on x86_64.
INTERPRETERS = {"cp311", "py3", "py311", *(f"cp3{minor}" for minor in range(2, 12))}
ABIS = {"cp311", "abi3", "none"}
HASH_LINE = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})")


def installable(filename: str, version: str) -> bool:
    """A file of this version an EMR node may install: a wheel for it, or the sdist."""
    if filename.endswith(".whl"):
        _, wheel_version, _, tags = parse_wheel_filename(filename)
        return str(wheel_version) == version and any(
            (tag.interpreter in INTERPRETERS and tag.abi in ABIS)
            and (
                tag.platform == "any"
                or (tag.platform.endswith("x86_64") and "linux" in tag.platform)
            )
            and (tag.abi != "abi3" or tag.interpreter.startswith("cp3"))
            for tag in tags
        )
    return filename.endswith((f"-{version}.tar.gz", f"-{version}.zip"))


def index_hashes(name: str, version: str) -> list[str]:
    """SHA-256 of every file of ``name==version`` on the index that an EMR node may install."""
    request = urllib.request.Request(
        f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        files = json.load(answer)["files"]
    hashes = sorted(
        f["hashes"]["sha256"]
        for f in files
        if installable(f["filename"], version) and not f.get("yanked")
    )
    if not hashes:
        raise SystemExit(f"{name}=={version}: no file an EMR node can install on {INDEX}")
    return hashes


def committed_hashes(path: Path) -> dict[str, list[str]]:
    """The hashes a requirements file already holds, by pin (``name==version``)."""
    hashes: dict[str, list[str]] = {}
    pin = None
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        if match := HASH_LINE.match(line):
            hashes.setdefault(pin, []).append(match.group(1))
        elif line and not line.startswith("#"):
            pin = line.split()[0]
    return hashes


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


def render(role: str, modules: tuple[str, ...], hashes: dict[str, list[str]]) -> str:
    """The file of a role; ``hashes`` by pin (a pin without any is written without)."""
    pins = closure({distribution_of(m) for m in modules})
    where = "the master (the Spark driver)" if role == "driver" else "the core nodes"
    lines = [
        f"# verify-imports: {' '.join(modules)}",
        f"# Installed by bootstrap/install_dependencies.sh on {where} into",
        "# /opt/fruits-features/venv. Written by scripts/emr_requirements.py from the job's",
        "# engine registry at the versions of constraints.txt: do not edit by hand.",
        "# Not here: pyspark (EMR's Spark puts its own on PYTHONPATH) and Airflow.",
        "",
    ]
    for name, version in pins.items():
        pin = f"{name}=={version}"
        lines.append(pin + (" \\" if hashes.get(pin) else ""))
        digests = hashes.get(pin, [])
        lines += [f"    --hash=sha256:{d}" + (" \\" if i < len(digests) - 1 else "")
                  for i, d in enumerate(digests)]  # fmt: skip
    return "\n".join(lines) + "\n"


def expected_files(fetch: bool) -> dict[Path, str]:
    """Each file as it should be: the hashes it holds, those of new pins from the index
    (``fetch``; without, a new pin stays without and the file is out of date)."""
    files = {}
    for role, modules in role_modules().items():
        path = BOOTSTRAP / f"requirements-emr-{role}.txt"
        hashes = committed_hashes(path)
        if fetch:
            for name, version in closure({distribution_of(m) for m in modules}).items():
                pin = f"{name}=={version}"
                if pin not in hashes:
                    hashes[pin] = index_hashes(name, version)
        files[path] = render(role, modules, hashes)
    return files


def unhashed(text: str) -> list[str]:
    """Pins of a file that carry no hash."""
    lines = text.splitlines()
    return [
        line.split()[0]
        for i, line in enumerate(lines)
        if line and not line[0].isspace() and not line.startswith("#")
        and not (i + 1 < len(lines) and HASH_LINE.match(lines[i + 1]))
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    files = expected_files(fetch=not args.check)
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
    stale += [p for p, text in files.items() if unhashed(text) and p not in stale]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run scripts/emr_requirements.py")
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

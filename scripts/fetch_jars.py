"""Fetch the JVM packages of requirements-jvm.txt into a folder, each checked by its SHA-256.

    python scripts/fetch_jars.py .venv/jars        # what `make setup` runs
    python scripts/fetch_jars.py --requirements FILE DIR

Downloads go through a cache shared by checkouts (FRUITS_MAVEN_CACHE, default
~/.cache/fruits-features/maven), from Maven Central or the repository in MAVEN_REPOSITORY.
A file whose digest differs from the pinned one is refused, never used. Jars in the folder
that the file does not list are removed, so the folder holds exactly what is pinned.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements-jvm.txt"
REPOSITORY = os.environ.get("MAVEN_REPOSITORY", "https://repo1.maven.org/maven2").rstrip("/")
CACHE = Path(os.environ.get("FRUITS_MAVEN_CACHE", Path.home() / ".cache/fruits-features/maven"))


def pinned(path: Path = REQUIREMENTS) -> list[tuple[str, str, str, str]]:
    """(group, artifact, version, sha256) of each line."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            coordinates, sha256 = line.split()
            group, artifact, version = coordinates.split(":")
            entries.append((group, artifact, version, sha256))
    return entries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached(group: str, artifact: str, version: str, sha256: str) -> Path:
    """The jar in the cache, downloaded and checked first if it is not there."""
    name = f"{artifact}-{version}.jar"
    path = CACHE / name
    if path.is_file() and sha256_of(path) == sha256:
        return path
    url = f"{REPOSITORY}/{group.replace('.', '/')}/{artifact}/{version}/{name}"
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{name}.{os.getpid()}.partial")
    print(f"fetch_jars: downloading {url}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        found = sha256_of(partial)
        if found != sha256:
            raise SystemExit(f"fetch_jars: {url} has SHA-256 {found}, pinned {sha256}: refused")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def main(argv: list[str]) -> int:
    requirements = REQUIREMENTS
    if argv[:1] == ["--requirements"]:
        requirements, argv = Path(argv[1]), argv[2:]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[0])
    target.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for group, artifact, version, sha256 in pinned(requirements):
        source = cached(group, artifact, version, sha256)
        wanted.add(source.name)
        dest = target / source.name
        if not dest.is_file() or sha256_of(dest) != sha256:
            dest.unlink(missing_ok=True)
            try:
                os.link(source, dest)  # the cache's copy, when both are on one file system
            except OSError:
                shutil.copyfile(source, dest)
    for stale in target.glob("*.jar"):
        if stale.name not in wanted:
            stale.unlink()
    print(f"fetch_jars: {len(wanted)} jars in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

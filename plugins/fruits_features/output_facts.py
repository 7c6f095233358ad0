"""What a run's data sets hold, read from their part files' ends: each Parquet part's footer
(rows, and the values and nulls of its vector column) and each CSV part's header line.

The same reading for a run on S3 (ranged GETs, many in flight) and for a downloaded copy:
validation reads a bounded amount whatever the bank's size, a few KB per part file.
"""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fruits_contract import outputs
from fruits_features.output_layout import RunFolder, is_part
from fruits_features.s3 import RunS3Hook

# A footer of our schemas is ~1 KB per row group: one read of the tail holds it.
TAIL_BYTES = 64 * 1024
# A CSV header: path, label and up to 1280 column names, ~8 KB.
HEAD_BYTES = 16 * 1024
# Part ends read at once from S3 (latency-bound small GETs).
IN_FLIGHT = 16


@dataclass(frozen=True)
class Part:
    name: str  # relative to the run's folder: <data set>/<format>/part-...
    size: int


class PartReader(Protocol):
    """Where a run's part files are, and their ends."""

    def parts(self, dataset: str, fmt: str) -> list[Part]: ...

    def read(self, part: Part, byte_range: tuple[int, int]) -> bytes:
        """Bytes [start, end) of the part; a negative start counts from its end."""
        ...

    def csv_rows(self, parts: list[Part]) -> tuple[int | None, list[str]]:
        """Data rows of CSV parts and what a standard reader finds wrong in them (None: not
        counted, the parts are not read whole)."""
        ...


@dataclass(frozen=True)
class S3Parts:
    """A run's part files on S3, under ``s3://bucket/run_prefix``."""

    s3: RunS3Hook
    bucket: str
    run_prefix: str

    def parts(self, dataset: str, fmt: str) -> list[Part]:
        folder = f"{self.run_prefix}{dataset}/{fmt}/"
        return [
            Part(o["Key"][len(self.run_prefix) :], int(o["Size"]))
            for o in self.s3.iter_objects(self.bucket, folder)
            if is_part(o["Key"], fmt)
        ]

    def read(self, part: Part, byte_range: tuple[int, int]) -> bytes:
        start, end = byte_range
        wanted = f"bytes=-{-start}" if start < 0 else f"bytes={start}-{end - 1}"
        key = self.run_prefix + part.name
        return self.s3.conn.get_object(Bucket=self.bucket, Key=key, Range=wanted)["Body"].read()

    def csv_rows(self, parts: list[Part]) -> tuple[int | None, list[str]]:
        return None, []


@dataclass(frozen=True)
class LocalParts:
    """A downloaded run's part files."""

    folder: RunFolder

    def parts(self, dataset: str, fmt: str) -> list[Part]:
        root = self.folder.root
        return [
            Part(str(p.relative_to(root)), p.stat().st_size)
            for p in self.folder.parts(dataset, fmt)
        ]

    def read(self, part: Part, byte_range: tuple[int, int]) -> bytes:
        start, end = byte_range
        with (self.folder.root / part.name).open("rb") as handle:
            handle.seek(max(0, part.size + start) if start < 0 else start)
            return handle.read(-start if start < 0 else end - start)

    def csv_rows(self, parts: list[Part]) -> tuple[int | None, list[str]]:
        rows, _, problems = csv_rows([self.folder.root / part.name for part in parts])
        return rows, problems


def csv_rows(paths: list[Path]) -> tuple[int, list[list[str]], list[str]]:
    """Data rows of CSV files (a Spark CSV folder has a header in each part), their distinct
    headers, and the problems a standard (RFC 4180) reader finds: rows not as wide as the
    header, text it cannot parse."""
    rows, headers, problems = 0, [], []
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle, strict=True)
                header = next(reader, None)
                if header is None:  # Spark may leave an empty part for an empty partition
                    continue
                if header not in headers:
                    headers.append(header)
                for row in reader:
                    rows += 1
                    if len(row) != len(header):
                        problems.append(
                            f"{path.name} line {reader.line_num}: {len(row)} fields under a "
                            f"{len(header)}-field header"
                        )
                        break
        except (csv.Error, UnicodeDecodeError) as error:
            problems.append(f"{path.name}: not standard CSV ({error})")
    return rows, headers, problems


@dataclass(frozen=True)
class FooterFacts:
    """What one Parquet footer says."""

    rows: int
    values: int  # of the vector column's elements
    nulls: int  # of those elements


def read_footer(reader: PartReader, part: Part, vector: str | None) -> FooterFacts:
    """A Parquet part's footer, from its last bytes (one read, two for a big footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tail = reader.read(part, (-min(part.size, TAIL_BYTES), 0))
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise ValueError("not a Parquet file (no PAR1 at its end)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = reader.read(part, (-(length + 8), 0))
    # The footer alone, framed as a file: pyarrow reads metadata from the end.
    footer = pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-(length + 8) :]))
    values = nulls = 0
    column = f"{vector}.list.element"
    for group in range(footer.num_row_groups):
        row_group = footer.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema == column:
                values += chunk.num_values
                stats = chunk.statistics
                nulls += stats.null_count if stats is not None and stats.has_null_count else 0
    return FooterFacts(footer.num_rows, values, nulls)


def read_header(reader: PartReader, part: Part) -> list[str] | None:
    """A CSV part's header (None: an empty part, as Spark may leave for an empty partition)."""
    if part.size == 0:
        return None
    head = reader.read(part, (0, min(part.size, HEAD_BYTES)))
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(line)))


@dataclass
class DatasetFacts:
    """One data set, as its part files' ends tell it."""

    name: str
    parquet_parts: int = 0
    rows: int = 0
    vector_values: int = 0
    vector_nulls: int = 0
    csv_parts: int = 0
    csv_headers: list[list[str]] = field(default_factory=list)
    csv_rows: int | None = None  # counted only where the parts are read whole (a download)
    problems: list[str] = field(default_factory=list)


def _each(function: Callable, items: Iterable, pool: ThreadPoolExecutor | None) -> Iterable:
    return map(function, items) if pool is None else pool.map(function, items)


def dataset_facts(
    reader: PartReader, name: str, pool: ThreadPoolExecutor | None = None
) -> DatasetFacts:
    """Rows, vector values and CSV headers of one data set, in every format it has."""
    facts = DatasetFacts(name)
    vector = outputs.VECTOR_COLUMN.get(name)

    def footer(part: Part) -> FooterFacts | str:
        try:
            return read_footer(reader, part, vector)
        except (ValueError, OSError) as error:
            return f"{part.name}: {error}"

    if outputs.PARQUET in outputs.formats(name):
        parts = reader.parts(name, outputs.PARQUET)
        facts.parquet_parts = len(parts)
        for seen in _each(footer, parts, pool):
            if isinstance(seen, str):
                facts.problems.append(seen)
                continue
            facts.rows += seen.rows
            facts.vector_values += seen.values
            facts.vector_nulls += seen.nulls
    if outputs.CSV in outputs.formats(name):
        parts = reader.parts(name, outputs.CSV)
        facts.csv_parts = len(parts)
        for header in _each(lambda part: read_header(reader, part), parts, pool):
            if header is not None and header not in facts.csv_headers:
                facts.csv_headers.append(header)
        facts.csv_rows, unreadable = reader.csv_rows(parts)
        facts.problems += [f"{name}/{outputs.CSV}: {problem}" for problem in unreadable]
    return facts


def run_facts(
    reader: PartReader, names: Iterable[str] = outputs.DATASETS
) -> dict[str, DatasetFacts]:
    """Every data set's facts, their part ends read ``IN_FLIGHT`` at a time."""
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return {name: dataset_facts(reader, name, pool) for name in names}


def facts_on_s3(s3: RunS3Hook, bucket: str, run_prefix: str) -> dict[str, DatasetFacts]:
    return run_facts(S3Parts(s3, bucket, run_prefix))


def facts_in_folder(path: Path) -> dict[str, DatasetFacts]:
    return run_facts(LocalParts(RunFolder(path)))

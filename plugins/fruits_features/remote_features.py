"""features/ of a run checked where it lies, on S3, when it is not downloaded.

Only the parts' ends are read: each Parquet part's footer (row count, and the count and
nulls of the vector elements) and each CSV part's header line, with ranged GETs, so a
67,692-image run is checked in a few requests per part instead of a 1 GB download.
"""

from __future__ import annotations

import csv
import io
import struct
from typing import Any

from fruits_contract import outputs as layout
from fruits_contract.engines import FEATURE_DIM
from fruits_features.output_validation import FeaturesSeen
from fruits_features.s3 import RunS3Hook

# A footer of the features' schema is ~1 KB per row group; one GET of the tail holds it.
TAIL_BYTES = 64 * 1024
# The CSV header: path, label and 1280 column names, ~8 KB.
HEAD_BYTES = 16 * 1024


def _ranged(s3: RunS3Hook, bucket: str, key: str, byte_range: str) -> bytes:
    return s3.conn.get_object(Bucket=bucket, Key=key, Range=f"bytes={byte_range}")["Body"].read()


def _parquet_footer(s3: RunS3Hook, bucket: str, key: str, size: int) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tail = _ranged(s3, bucket, key, f"-{min(size, TAIL_BYTES)}")
    if tail[-4:] != b"PAR1":
        raise ValueError("not a Parquet file (no PAR1 at its end)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = _ranged(s3, bucket, key, f"-{length + 8}")
    # The footer alone, framed as a file: pyarrow reads metadata from the end.
    return pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-(length + 8) :]))


def _parts(s3: RunS3Hook, bucket: str, prefix: str, fmt: str) -> list[dict[str, Any]]:
    return [
        o
        for o in s3.iter_objects(bucket, prefix)
        if o["Key"].endswith(f".{fmt}") and not o["Key"].rsplit("/", 1)[-1].startswith(("_", "."))
    ]


def features_on_s3(s3: RunS3Hook, bucket: str, run_prefix: str) -> FeaturesSeen:
    """What validation needs of ``<run_prefix>features/``, read from S3's part ends."""
    problems: list[str] = []
    rows = elements = nulls = 0
    column = f"{layout.VECTOR_COLUMN[layout.FEATURES]}.list.element"
    parquet_prefix = f"{run_prefix}{layout.FEATURES}/{layout.PARQUET}/"
    for part in _parts(s3, bucket, parquet_prefix, layout.PARQUET):
        name = part["Key"].rsplit("/", 1)[-1]
        try:
            footer = _parquet_footer(s3, bucket, part["Key"], part["Size"])
        except (ValueError, OSError) as error:
            problems.append(f"{layout.FEATURES}/{layout.PARQUET}/{name}: {error}")
            continue
        rows += footer.num_rows
        for group in range(footer.num_row_groups):
            row_group = footer.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if chunk.path_in_schema == column:
                    elements += chunk.num_values
                    stats = chunk.statistics
                    nulls += stats.null_count if stats is not None and stats.has_null_count else 0
    # Every vector 1280 long and none null, as far as a footer tells: no null element and
    # as many elements as rows x 1280.
    lengths = {FEATURE_DIM} if elements == rows * FEATURE_DIM else set()
    if rows and not lengths:
        problems.append(
            f"{layout.FEATURES}/{layout.PARQUET}: {elements} vector values for {rows} rows, "
            f"not {FEATURE_DIM} each"
        )
    headers: list[list[str]] = []
    csv_prefix = f"{run_prefix}{layout.FEATURES}/{layout.CSV}/"
    for part in _parts(s3, bucket, csv_prefix, layout.CSV):
        if part["Size"] == 0:
            continue
        head = _ranged(s3, bucket, part["Key"], f"0-{HEAD_BYTES - 1}")
        line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        header = next(csv.reader(io.StringIO(line)))
        if header not in headers:
            headers.append(header)
    return FeaturesSeen(
        rows=rows, lengths=lengths, nulls=nulls, csv_rows=None, csv_headers=headers,
        problems=problems,
    )  # fmt: skip

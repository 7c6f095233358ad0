"""The feature store's maintenance: compact the table's small files (OPTIMIZE), then delete
the files no version within the retention uses (VACUUM), under the writer lock.

Nightly merges each add a few small files; OPTIMIZE rewrites them into few large ones (the
same rows: readers see the same table), and VACUUM removes what the table's versions of the
last ``--retention-hours`` no longer use. A run reads the table at the version it started
with: a retention longer than the longest run keeps every run in flight readable, and the
default, Delta Lake's own 7 days, keeps a week of versions for time travel.

    spark-submit --py-files fruits_job.zip spark/maintain_feature_store.py \\
        --feature-store URI --output URI --run-id ID [--retention-hours 168]
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from fruits_contract.job_request import JobRequestError, MaintenanceRequest
from fruits_contract.outputs import STORE_MAINTENANCE, SUCCESS
from fruits_job import storage
from fruits_job.feature_store import StoreTable
from fruits_job.session import build_session

log = logging.getLogger("fruits_job")


def maintain(table: StoreTable, run_id: str, retention_hours: int) -> dict[str, Any]:
    """OPTIMIZE then VACUUM the table; what it had and has, in files and bytes."""
    spark = table.spark
    with table.lock.held(run_id):
        before = table.describe()
        log.info(
            "feature table before: version %(version)s, %(files)d files, %(bytes)d bytes", before
        )
        table.write(f"OPTIMIZE {table.sql_name}", f"fruits-features maintenance {run_id}")
        compacted = table.describe()
        vacuum = f"VACUUM {table.sql_name} RETAIN {retention_hours} HOURS"
        removable = spark.sql(f"{vacuum} DRY RUN").count()
        spark.sql(vacuum)
        after = table.describe()
    log.info(
        "feature table after OPTIMIZE: version %(version)s, %(files)d files, %(bytes)d bytes",
        compacted,
    )
    log.info(
        "feature table after VACUUM (retention %d h): %d unused files deleted",
        retention_hours,
        removable,
    )
    return {
        "before": before,
        "after_optimize": compacted,
        "after": after,
        "vacuumed_files": removable,
        "retention_hours": retention_hours,
    }


def run(spark: SparkSession, request: MaintenanceRequest) -> dict[str, Any]:
    started = datetime.now(UTC)
    table = StoreTable(spark, storage.qualify(spark, request.feature_store))
    record: dict[str, Any] = {"run_id": request.run_id, "table": table.uri}
    if table.exists():
        record.update(maintain(table, request.run_id, request.retention_hours))
    else:
        log.info("feature store %s has no table yet: nothing to maintain", table.root)
    finished = datetime.now(UTC)
    record.update(started_at=started.isoformat(), finished_at=finished.isoformat())
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    output = request.output_uri.rstrip("/")
    storage.write_text(spark, f"{output}/{STORE_MAINTENANCE}", text)
    if table.exists():
        table.record(record)
    storage.write_text(spark, f"{output}/{SUCCESS}", "")
    return record


def main(argv: list[str] | None = None) -> int:
    try:
        request = MaintenanceRequest.from_argv(sys.argv[1:] if argv is None else argv)
    except JobRequestError as exc:
        print(f"{MaintenanceRequest.PROG}: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    spark = build_session()
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, request)
    finally:
        spark.stop()
    return 0

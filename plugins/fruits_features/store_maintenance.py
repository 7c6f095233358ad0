"""When the feature store's maintenance runs: decided by check_inputs from the store's record.

Nightly merges each add a few small files to the feature table; the maintenance (OPTIMIZE,
then VACUUM: fruits_job/maintenance.py) compacts them and deletes the files no version
within the retention uses. It runs after a run's job, on the same compute (EMR: a second
step on the run's cluster), when the store's record (``maintenance.json``: the last
maintenance, or the table's creation) is ``FRUITS_FEATURE_STORE_MAINTENANCE_DAYS`` old.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import RunLayout

log = logging.getLogger(__name__)


def maintenance_due(record: str | None, now: datetime, days: int) -> tuple[bool, str]:
    """Whether the maintenance is due, and why, from the store's record (None: no table)."""
    if record is None:
        return False, "the feature store has no table yet"
    try:
        last = datetime.fromisoformat(json.loads(record)["finished_at"])
    except (ValueError, KeyError, TypeError) as error:
        return True, f"its record cannot be read ({error})"
    age = now - (last if last.tzinfo else last.replace(tzinfo=UTC))
    when = f"the last maintenance or the table's creation was {age.days} day(s) ago"
    return age.days >= days, when


def check_maintenance(s3: RunS3Hook, layout: RunLayout, days: int) -> bool:
    """Read the store's record and say, in the log, whether this run maintains the store."""
    due, why = maintenance_due(
        s3.read_text(layout.bucket, layout.maintenance_key), datetime.now(UTC), days
    )
    log.info(
        "Feature store maintenance %s: %s (every %d days)", "due" if due else "not due", why, days
    )
    return due

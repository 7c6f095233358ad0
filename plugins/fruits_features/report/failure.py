"""The report of a failed run: which task failed and the job's own error, where the full
report would have been (``report/report.html``), so a failed night has a page too."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fruits_features.report.render import _environment
from fruits_features.s3_layout import REPORT_PAGE


def build_failure_report(
    out_dir: Path, *, run_id: str, mode: str, failures: Sequence[Mapping[str, Any]]
) -> list[Path]:
    """Write ``report.html`` and ``report.json`` of a failed run into ``out_dir``.

    :param failures: ``{"task", "error", "excerpt"}`` of each failed task, as its failure
        callback recorded them (``alert_callbacks.announce_failure``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "mode": mode,
        "state": "failed",
        "generated_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "failures": [dict(f) for f in failures],
    }
    html = _environment().get_template("failure.html.j2").render(**record)
    paths = [out_dir / REPORT_PAGE, out_dir / "report.json"]
    paths[0].write_text(html, encoding="utf-8")
    paths[1].write_text(json.dumps(record, indent=2), encoding="utf-8")
    return paths

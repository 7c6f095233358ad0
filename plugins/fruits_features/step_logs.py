"""The job's own error, out of a failed step's log: the line that explains it, and the Python
traceback of a failed executor task when the driver's log holds one.

Both backends use it: the local backend on the output it streamed, the EMR sensor on the
``stderr.gz`` EMR pushes to the cluster's log URI (waiting for it, bounded: EMR copies step
logs to S3 a few minutes after the step ends).
"""

from __future__ import annotations

import gzip
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fruits_contract.job_request import ERROR_PREFIX
from fruits_features.s3_layout import split_s3_uri

log = logging.getLogger(__name__)

# Most telling first: the job's own error line, then exceptions, then anything that errs.
MARKERS = (ERROR_PREFIX, "Error:", "Exception:", "error:")
TRACEBACK = "Traceback (most recent call last):"
# A traceback ends on its exception line: unindented, "Name: message" or a bare name.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
CONTEXT_LINES = 5
TRACEBACK_MAX = 30


def last_error_line(lines: Sequence[str]) -> str:
    """The line that best explains a failure: the job's own ``error:`` line, else the last
    Python/Java exception line, else the last line."""
    for marker in MARKERS:
        for line in reversed(lines):
            if marker in line:
                return line.strip()
    return lines[-1].strip() if lines else "no output"


def last_traceback(lines: Sequence[str]) -> tuple[list[str], int]:
    """The last Python traceback in the lines (a driver log quotes a failed task's, after
    ``PythonException:``), up to its exception line, and the index of the line after it;
    ([], 0) when there is none."""
    starts = [i for i, line in enumerate(lines) if TRACEBACK in line]
    if not starts:
        return [], 0
    first = starts[-1]
    block, end = [lines[first][lines[first].index(TRACEBACK) :]], len(lines)
    for index in range(first + 1, len(lines)):
        block.append(lines[index])
        if EXCEPTION_LINE.match(lines[index]):
            end = index + 1
            break
    if len(block) > TRACEBACK_MAX:  # the frames nearest the error tell the most
        block = [block[0], "  ...", *block[-(TRACEBACK_MAX - 2) :]]
    return block, end


@dataclass(frozen=True)
class StepError:
    """What a failed job's output says: its error line and the excerpt around it."""

    line: str
    excerpt: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.excerpt) if self.excerpt else self.line


def step_error(lines: Sequence[str]) -> StepError:
    """The error line, and an excerpt: the last traceback, then the lines that lead to the
    error line (when the traceback does not already end on it)."""
    lines = [line.rstrip() for line in lines]
    line = last_error_line(lines)
    excerpt, after = last_traceback(lines)
    if line not in (text.strip() for text in excerpt):
        at = max(i for i, text in enumerate(lines) if text.strip() == line) if lines else 0
        # The lines that lead to the error line, those of the traceback not twice.
        excerpt += lines[max(after, at - CONTEXT_LINES) : at + 1]
    return StepError(line=line, excerpt=excerpt)


def read_step_log(
    client: Any,
    folder_uri: str,
    *,
    wait_seconds: float,
    poll_seconds: float = 15,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str] | None:
    """The lines of a step's ``stderr.gz`` under ``folder_uri`` (EMR's
    ``<LogUri><cluster>/steps/<step>/``), waiting at most ``wait_seconds`` for EMR to push
    it; None if it never came."""
    bucket, prefix = split_s3_uri(folder_uri)
    key = prefix.rstrip("/") + "/stderr.gz"
    deadline = clock() + wait_seconds
    while True:
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            body = None
        if body is not None:
            return gzip.decompress(body).decode(errors="replace").splitlines()
        left = deadline - clock()
        if left <= 0:
            return None
        log.info("Waiting for EMR to push s3://%s/%s (%.0f s left)", bucket, key, left)
        sleep(min(poll_seconds, left))

"""The local path's process handling, with real child processes."""

from __future__ import annotations

import os
import sys

import pytest

from fruits_features.compute.local import SparkJobError, last_error_line, run_streaming
from fruits_features.job_invocation import find_spark_submit


def test_spark_submit_is_found_next_to_this_interpreter():
    path = find_spark_submit()
    assert path.name == "spark-submit"
    assert os.access(path, os.X_OK)


def test_output_lines_are_streamed_in_order():
    lines: list[str] = []
    run_streaming(
        [sys.executable, "-c", "import sys; print('one'); print('two', file=sys.stderr)"],
        dict(os.environ),
        30,
        lines.append,
    )
    assert lines == ["one", "two"]


def test_failure_reports_the_jobs_error_line():
    script = (
        "import sys\n"
        "print('INFO starting')\n"
        "print('process_fruits_data: error: --pca-components 60 > 24 images', file=sys.stderr)\n"
        "print('INFO ShutdownHookManager: Shutdown hook called')\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(SparkJobError) as error:
        run_streaming([sys.executable, "-c", script], dict(os.environ), 30, lambda line: None)
    assert str(error.value) == (
        "spark-submit exited 2: process_fruits_data: error: --pca-components 60 > 24 images"
    )


def test_a_job_over_time_is_killed():
    with pytest.raises(SparkJobError, match="killed after 1 s"):
        run_streaming(
            [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), 1, print
        )


def test_last_error_line_prefers_exceptions_over_noise():
    lines = [
        "INFO a",
        "Traceback (most recent call last):",
        "ValueError: no image left after decoding",
        "INFO ShutdownHookManager: Deleting directory /tmp/x",
    ]
    assert last_error_line(lines) == "ValueError: no image left after decoding"
    assert last_error_line(["only line"]) == "only line"
    assert last_error_line([]) == "no output"

"""What a compute backend adds to the run report: a section of facts, a table and a note.

Values are plain text with a style; the page escapes them like every other run value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Value:
    text: str
    # "" plain, "code" (ids, types), "strong" (a total), "warn" (missing or doubtful)
    style: str = ""


@dataclass(frozen=True)
class ComputeSection:
    key: str  # the section's anchor, and its key in report.json
    title: str
    facts: tuple[tuple[str, Value], ...]
    head: tuple[str, ...] = ()
    rows: tuple[tuple[Value, ...], ...] = ()
    numeric: tuple[int, ...] = ()  # right-aligned columns of the table
    note: str = ""
    summary: Mapping[str, Any] = field(default_factory=dict)  # report.json

"""What a compute backend tells about a run, as data: the report draws it.

A backend's ``report_section`` returns ``ComputeFacts``: labelled values, an optional table,
a note, and what report.json records. Each value says what it is (an id, an amount of USD, a
duration, a moment, something missing); how that looks on the page is the report's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["text", "id", "count", "usd", "total_usd", "seconds", "moment", "missing"]


@dataclass(frozen=True)
class Fact:
    """One value: ``text`` plain; ``id`` an identifier or a type name; ``count`` an integer;
    ``usd`` a price, ``total_usd`` the total; ``seconds`` a duration; ``moment`` a datetime
    (None: not yet); ``missing`` why a value is unknown."""

    value: str | int | float | datetime | None
    kind: Kind = "text"
    note: str = ""  # said after the value, e.g. "(still running)"


@dataclass(frozen=True)
class ComputeFacts:
    key: str  # the section's anchor, and its key in report.json
    title: str
    facts: tuple[tuple[str, Fact], ...]
    head: tuple[str, ...] = ()
    rows: tuple[tuple[Fact, ...], ...] = ()
    note: str = ""
    summary: Mapping[str, Any] = field(default_factory=dict)  # report.json

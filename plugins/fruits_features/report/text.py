"""How the report writes numbers, durations and times."""

from __future__ import annotations

from datetime import datetime


def integer(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when(value: str | datetime | None) -> str:
    if value is None:
        return "not recorded"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    zone = moment.strftime("%Z") or ("UTC" if moment.utcoffset() is None else "")
    return f"{moment:%Y-%m-%d %H:%M:%S} {zone}".strip()

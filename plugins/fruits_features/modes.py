"""The modes a run can take: what each processes, as the trigger form and check_inputs see it.

The Spark job keeps its own table (spark/fruits_job/modes.py): the two sides share nothing
at import time, and a test holds the tables equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    # One line for the trigger form's drop-down.
    label: str
    # Class folders whose name starts with this are read; "" reads every class.
    class_prefix: str
    # At most this many images, spread round-robin over the classes; None: every image.
    max_images: int | None = None

    def selects(self, label: str) -> bool:
        return label.startswith(self.class_prefix)

    def planned_images(self, available: int, limit: int | None) -> int:
        """How many images the job will select out of ``available`` (docs/contract.md)."""
        caps = [cap for cap in (self.max_images, limit) if cap is not None]
        return min([available, *caps])


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("mini", "mini: 300 Apple images (a fixed selection, for smoke tests)", "Apple", 300),
        Mode("apples", "apples: every Apple* image (~6,400 in full Fruits-360)", "Apple"),
        Mode("full", "full: every image (67,692 in full Fruits-360)", ""),
    )
}

"""The run modes: which class folders of ``Training/`` a run reads, and how many images."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    # One line for the trigger form's drop-down and the job's --help.
    label: str
    # Class folders whose name starts with this are read; "" reads every class.
    class_prefix: str
    # At most this many images, spread round-robin over the classes; None: every image.
    max_images: int | None = None

    def selects(self, label: str) -> bool:
        return label.startswith(self.class_prefix)

    @property
    def class_glob(self) -> str:
        """Hadoop glob of the class folders under Training/ the mode reads."""
        return f"{self.class_prefix}*"

    def cap(self, limit: int | None) -> int | None:
        """How many images a run takes at most (the mode's cap and the run's limit), or None
        for every image. A capped run takes a deterministic subset (round-robin over the
        classes, by a hash of each file's class and name)."""
        caps = [cap for cap in (self.max_images, limit) if cap is not None]
        return min(caps) if caps else None

    def planned_images(self, available: int, limit: int | None) -> int:
        """How many images the job selects out of ``available``."""
        cap = self.cap(limit)
        return available if cap is None else min(available, cap)


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("mini", "mini: 300 Apple images (a fixed selection, for smoke tests)", "Apple", 300),
        Mode("apples", "apples: every Apple* image (~6,400 in full Fruits-360)", "Apple"),
        Mode("full", "full: every image (67,692 in full Fruits-360)", ""),
    )
}

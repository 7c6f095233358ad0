"""The run modes: which class folders of ``Training/`` a run reads, and how many images."""

from __future__ import annotations

from dataclasses import dataclass

# Whether a run writes its vectors (features/): the mode decides (auto), or the run does.
EXPORT_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class Mode:
    name: str
    # One line for the trigger form's drop-down and the job's --help.
    label: str
    # Class folders whose name starts with this are read; "" reads every class.
    class_prefix: str
    # At most this many images, spread round-robin over the classes; None: every image.
    max_images: int | None = None
    # Whether a run exports its 1280-d vectors (features/) unless told otherwise: a small
    # or capped mode, for exploration; not ``full``, whose export grows with the bank
    # (10 KB of CSV per image) while the feature store already holds every vector.
    exports_features: bool = True

    def selects(self, label: str) -> bool:
        return label.startswith(self.class_prefix)

    def exports(self, choice: str) -> bool:
        """Whether a run exports its vectors: ``always``, ``never`` or ``auto`` (the mode's
        default)."""
        if choice not in EXPORT_CHOICES:
            raise ValueError(f"export_features must be one of {', '.join(EXPORT_CHOICES)}")
        return self.exports_features if choice == "auto" else choice == "always"

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
        Mode("full", "full: every image (67,692 in full Fruits-360)", "", exports_features=False),
    )
}

"""The job's modes: which class folders of Training/ a run reads, and how many images.

One table; the Airflow side keeps its own (plugins/fruits_features/modes.py) and a test
holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    description: str
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


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("mini", "300 images of the Apple* classes, spread over the classes", "Apple", 300),
        Mode("apples", "every image of the Apple* classes", "Apple"),
        Mode("full", "every image", ""),
    )
}

"""How classes look, the same on the map and in the per-class table: a colour and a marker."""

from __future__ import annotations

# matplotlib's tab20, its saturated half first, then its light half: neighbouring classes in
# sorted order (e.g. Apple Red 1, Apple Red 2) get clearly different colours, and light
# colours are only used past 10 classes.
PALETTE = (
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"),
    *("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"),
    *("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"),
    *("#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# The markers as text, for the table's swatches.
MARKER_GLYPHS = {"o": "●", "s": "■", "^": "▲", "D": "◆", "v": "▼", "P": "✚", "X": "✖", "*": "★"}


def class_style(index: int) -> tuple[str, str]:
    """(colour, marker) of the class with this index: 20 colours × 8 markers = 160 styles."""
    return PALETTE[index % len(PALETTE)], MARKERS[(index // len(PALETTE)) % len(MARKERS)]

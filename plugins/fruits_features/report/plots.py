"""The report's figures, as PNG bytes.

Figures are built with matplotlib's object API on an Agg canvas, never pyplot: no global
figure state and no GUI backend inside an Airflow worker.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fruits_features.report.metrics import sample_indices
from fruits_features.report.model import ClassRow, RunReport

DPI = 110
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
ACCENT = "#2f6fde"
ACCENT_2 = "#e8590c"
# Up to this many classes the map has a legend with names; above, the numbers at the
# class centres and the per-class table of the report are the key.
LEGEND_MAX_CLASSES = 24
# Points drawn on the map; more only overplot and slow the render.
MAP_MAX_POINTS = 20000
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    # Class names are folder names: text, never mathtext between two dollar signs.
    "text.parse_math": False,
}


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return out.getvalue()


def variance_plot(
    explained: Sequence[float],
    cumulative: Sequence[float],
    targets: Sequence[tuple[float, int | None]],
) -> bytes:
    """Each component's share and the cumulative share; ``targets``: (share, components
    needed to reach it or None)."""
    with matplotlib.rc_context(_STYLE):
        k = len(explained)
        figure = Figure(figsize=(7.4, 4.2))
        ax = figure.add_subplot()
        components = np.arange(1, k + 1)
        ax.bar(
            components,
            explained,
            width=0.8 if k <= 100 else 1.0,
            color=ACCENT,
            alpha=0.85,
            label="explained by the component",
        )
        ax.plot(
            components,
            cumulative,
            color=ACCENT_2,
            linewidth=2,
            marker="o" if k <= 60 else None,
            markersize=3.5,
            label="cumulative",
        )
        for target, needed in targets:
            ax.axhline(target, color="#9aa5b1", linewidth=0.8, linestyle="--", zorder=0)
            text = f"{target:.0%}: " + (f"{needed} comp." if needed else f"not reached, K={k}")
            ax.text(
                1.005,
                target,
                text,
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=8.5,
                color=MUTED,
            )
            if needed:
                ax.plot(needed, cumulative[needed - 1], "o", color=ACCENT_2, markersize=7)
        if k:
            ax.annotate(
                f"{cumulative[-1]:.1%} at K={k}",
                (k, cumulative[-1]),
                xytext=(-8, 10),
                textcoords="offset points",
                ha="right",
                fontsize=9.5,
                fontweight="bold",
                color=ACCENT_2,
            )
        ax.set_xlim(0.3, k + 0.7)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("principal component")
        ax.set_ylabel("share of the variance")
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.45))
        return _png(figure)


def pca_map(vectors: np.ndarray, labels: np.ndarray, classes: Sequence[ClassRow]) -> bytes:
    """Images on the first two principal components, one colour/marker per class.

    ``classes`` fixes the class numbering and style shared with the per-class table.
    """
    index_of = {row.label: i for i, row in enumerate(classes)}
    keep = sample_indices(len(vectors), MAP_MAX_POINTS, seed=7)
    xy = vectors[keep, :2]
    if xy.shape[1] < 2:  # K=1: spread along one axis only
        xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    codes = np.array([index_of[label] for label in labels[keep]])
    with_legend = len(classes) <= LEGEND_MAX_CLASSES
    # Few points can be big; thousands must be small to stay separable.
    size = 30 if len(xy) < 500 else 12 if len(xy) < 5000 else 5
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(12.5 if with_legend else 11, 7.5))
        ax = figure.add_subplot()
        for code, row in enumerate(classes):
            points = xy[codes == code]
            if not len(points):
                continue
            ax.scatter(
                points[:, 0],
                points[:, 1],
                s=size,
                c=row.colour,
                marker=row.marker,
                alpha=0.8,
                linewidths=0,
                label=f"{row.number}  {row.label}",
            )
        halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
        for code in np.unique(codes):
            # Median, not mean: one stray image does not drag the number off its cluster.
            cx, cy = np.median(xy[codes == code], axis=0)
            ax.text(
                cx,
                cy,
                str(code + 1),
                fontsize=8.5 if len(classes) <= 60 else 7,
                fontweight="bold",
                ha="center",
                va="center",
                color=INK,
                path_effects=halo,
            )
        if with_legend:
            ax.legend(
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize=9,
                markerscale=1.6,
                handletextpad=0.3,
                title="class",
                alignment="left",
            )
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.grid(color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        return _png(figure)


def stage_plot(stages: Mapping[str, Mapping[str, float]]) -> bytes:
    names = list(stages)
    seconds = [float(stages[n].get("seconds", 0.0)) for n in names]
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.0, 0.42 * len(names) + 1.0))
        ax = figure.add_subplot()
        y = np.arange(len(names))[::-1]
        ax.barh(y, seconds, color=ACCENT, alpha=0.85, height=0.6)
        for yi, value in zip(y, seconds, strict=True):
            ax.text(value, yi, f"  {value:.1f} s", va="center", fontsize=9, color=INK)
        ax.set_yticks(y, names)
        ax.set_xlabel("seconds")
        ax.set_xlim(0, max(seconds, default=1) * 1.15 or 1)
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        return _png(figure)


@dataclass(frozen=True)
class Figures:
    variance: bytes | None
    pca_map: bytes | None
    stages: bytes | None


def figures(report: RunReport) -> Figures:
    """The report's figures; None for what a run has nothing to plot of."""
    run = report.run
    show_map = run.pca is not None and run.pca.shape[1] >= 1
    return Figures(
        variance=(
            variance_plot(run.explained, run.cumulative, report.variance_rows)
            if run.explained
            else None
        ),
        pca_map=pca_map(run.pca, run.pca_labels, report.classes) if show_map else None,
        stages=stage_plot(run.stages) if run.stages else None,
    )

"""The report's model of a run: every figure the page, the plots and report.json show,
derived once from the run's files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from fruits_features.compute.facts import ComputeFacts
from fruits_features.report.load import RunData
from fruits_features.report.metrics import (
    VARIANCE_TARGETS,
    NeighbourScore,
    components_needed,
    loo_1nn_accuracy,
)
from fruits_features.report.style import class_style
from fruits_features.report.verdicts import (
    consistency_problems,
    pc1_share,
    quality_verdict,
    status_of,
)


@dataclass(frozen=True)
class ClassRow:
    number: int  # on the map and in the table
    colour: str
    marker: str
    label: str
    selected: int
    failed: int


@dataclass(frozen=True)
class RunReport:
    run: RunData
    status: tuple[str, str]  # (tone, text)
    problems: list[str]  # model_info and the files disagree
    score: NeighbourScore | None  # leave-one-out 1-NN of the PCA features
    pc1: float | None  # share of the variance of PC 1
    quality: tuple[str, str]  # (tone, word)
    # (target share of the variance, components needed to reach it, or None)
    variance_rows: list[tuple[float, int | None]]
    classes: list[ClassRow]
    overall: list[tuple[str, int | None]]  # the counts table
    compute: ComputeFacts | None
    generated_at: datetime

    def summary(self) -> dict[str, Any]:
        """report.json: the computed figures, for machines (XCom, tests)."""
        run = self.run
        summary = {
            "run_id": run.info.get("run_id"),
            "status": self.status[1],
            "counts": run.counts,
            "classes": len(run.per_class),
            "errors_listed": len(run.errors or []),
            "variance_at_k": run.cumulative[-1] if run.cumulative else None,
            "components_needed": {f"{t:.0%}": needed for t, needed in self.variance_rows},
            "knn": asdict(self.score) if self.score else None,
            "pc1_share": self.pc1,
            "quality": self.quality[1],
            "generated_at": self.generated_at.isoformat(),
        }
        if self.compute is not None:
            summary[self.compute.key] = dict(self.compute.summary)
        return summary


def _score(run: RunData) -> NeighbourScore | None:
    pca, labels = run.pca, run.pca_labels
    if pca is None or len(pca) < 2 or len(set(labels.tolist())) < 2:
        return None
    # Scored on the run's PCA sample (summary/pca_sample): of all its images with features.
    score = loo_1nn_accuracy(pca, labels)
    return replace(score, total=int(run.counts.get("features", score.total)))


def _overall(run: RunData) -> list[tuple[str, int | None]]:
    counts = run.counts
    return [
        ("files listed", counts.get("files_listed")),
        # Runs before the skipped-files list counted only the files that were not images.
        ("files skipped", counts.get("skipped_files", counts.get("non_image_files"))),
        ("images selected", counts.get("images_selected")),
        ("images with features", counts.get("features")),
        *(
            # Runs before the feature store computed every feature.
            [
                ("of which computed by this run", counts["features_computed"]),
                ("of which reused from the feature store", counts["features_reused"]),
            ]
            if "features_reused" in counts
            else []
        ),
        ("errors", counts.get("errors")),
        ("classes", len(run.per_class)),
        ("images in the PCA sample (1-NN score, map)", None if run.pca is None else len(run.pca)),
    ]


def derive(run: RunData, compute: ComputeFacts | None, generated_at: datetime) -> RunReport:
    """The report's figures of ``run`` (what a compute backend adds, as ``compute``)."""
    score, pc1 = _score(run), pc1_share(run)
    classes = [
        ClassRow(index + 1, *class_style(index), label, selected, failed)
        for index, (label, (selected, failed)) in enumerate(run.per_class.items())
    ]
    return RunReport(
        run=run,
        status=status_of(run),
        problems=consistency_problems(run),
        score=score,
        pc1=pc1,
        quality=quality_verdict(score, pc1),
        variance_rows=[(t, components_needed(run.cumulative, t)) for t in VARIANCE_TARGETS],
        classes=classes,
        overall=_overall(run),
        compute=compute,
        generated_at=generated_at,
    )

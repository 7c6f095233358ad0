"""The report's judgements of a run: did it complete, are the features any good, do the files
agree with model_info. Shared by the page and report.json."""

from __future__ import annotations

from fruits_contract import outputs as layout
from fruits_features.report.load import RunData
from fruits_features.report.metrics import NeighbourScore

# Above these 1-NN accuracies the features are fine / worth a look. Fruits-360 photos are
# centred fruits on white: the pretrained weights score ~0.95-1.0. Untrained weights still
# score 0.6-0.95 there (colour alone tells many fruits apart), hence the second signal:
# their features vary along one direction, PC 1 alone carrying 60-97% of the variance
# (pretrained: 18-36%), measured on the sample images with 6 seeds.
KNN_GOOD = 0.90
KNN_DOUBTFUL = 0.60
DOMINANT_PC1_SHARE = 0.50


def pc1_share(run: RunData) -> float | None:
    return run.explained[0] if run.explained else None


def quality_verdict(score: NeighbourScore | None, pc1: float | None) -> tuple[str, str]:
    """(tone, word) for the features: from the 1-NN accuracy and the share of PC 1."""
    if score is None:
        return "", "not measured"
    if score.accuracy < KNN_DOUBTFUL:
        return "bad", "poor"
    if score.accuracy < KNN_GOOD or (pc1 is not None and pc1 > DOMINANT_PC1_SHARE):
        return "warn", "doubtful"
    return "good", "good"


def status_of(run: RunData) -> tuple[str, str]:
    """(tone, text): OK, with errors, or incomplete when _SUCCESS is missing."""
    errors = run.counts.get("errors", 0)
    if not run.complete:
        return "bad", "incomplete (no _SUCCESS)"
    if errors:
        return "warn", f"with errors ({errors:,})"
    return "good", "OK"


def consistency_problems(run: RunData) -> list[str]:
    """Disagreements between model_info and the summary: they mean a partial download."""
    problems = []
    counts = run.counts
    features, errors = counts.get("features"), counts.get("errors")
    if run.pca is None:
        problems.append(f"{layout.SUMMARY_PCA_SAMPLE} is missing or empty: no map, no 1-NN score")
    elif isinstance(features, int) and len(run.pca) != min(features, layout.PCA_SAMPLE_ROWS):
        problems.append(
            f"model_info counts {features:,} images with features, "
            f"{layout.SUMMARY_PCA_SAMPLE} holds {len(run.pca):,} rows"
        )
    if run.errors is None:
        problems.append(f"{layout.SUMMARY_ERRORS} is missing: failed files cannot be listed")
    elif isinstance(errors, int) and len(run.errors) != min(errors, layout.SAMPLE_ROWS):
        problems.append(
            f"model_info counts {errors:,} errors, {layout.SUMMARY_ERRORS} lists "
            f"{len(run.errors):,}"
        )
    return problems

"""The pure parts: variance thresholds, leave-one-out 1-NN, cost."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fruits_features.compute.emr_cost import (
    DEFAULT_HOURLY_PRICES_USD,
    EmrRunInfo,
    InstanceGroup,
    estimate_cost,
)
from fruits_features.report import components_needed, loo_1nn_accuracy
from fruits_features.report.metrics import sample_indices

CLUSTER_ID = "j-2AXXXXXXGAPLF"
CREATED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "expected"),
    [(0.80, 2), (0.90, 3), (0.95, 5), (0.99, None)],
)
def test_components_needed(target, expected):
    cumulative = [0.55, 0.81, 0.90, 0.94, 0.97]
    assert components_needed(cumulative, target) == expected


def test_components_needed_forgives_float_rounding_but_not_more():
    # A sum of explained variances printed as 90 % must count as reaching 90 %.
    assert components_needed([0.5, 0.8999999999999], 0.90) == 2
    assert components_needed([0.5, 0.8999], 0.90) is None
    assert components_needed([], 0.80) is None


def _clusters(classes=6, per_class=40, dim=10, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(classes, dim))
    labels = np.repeat([f"class {i}" for i in range(classes)], per_class)
    vectors = np.repeat(centres, per_class, axis=0) + rng.normal(0, 1, (len(labels), dim))
    return vectors, labels


def _brute_force(vectors, labels):
    distances = ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float(np.mean(labels[distances.argmin(axis=1)] == labels))


def test_1nn_separates_clusters_and_not_shuffled_labels():
    vectors, labels = _clusters()
    clustered = loo_1nn_accuracy(vectors, labels)
    assert clustered.accuracy >= 0.99
    assert clustered.images == clustered.total == 240 and clustered.classes == 6
    # Balanced classes: a random other image has the same class (40-1)/(240-1) of the time.
    assert clustered.chance == pytest.approx(39 / 239)
    shuffled = np.random.default_rng(2).permutation(labels)
    random_labels = loo_1nn_accuracy(vectors, shuffled)
    assert random_labels.accuracy < 0.35
    assert clustered.accuracy - random_labels.accuracy > 0.6


def test_1nn_chunks_give_the_exact_brute_force_answer():
    # Overlapping clusters, so that some neighbours are wrong and the count is non-trivial.
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(203, 5))
    labels = rng.choice(["a", "b", "c"], size=203)
    expected = _brute_force(vectors, labels)
    assert 0.2 < expected < 0.6
    for chunk in (1, 7, 64, 512):
        assert loo_1nn_accuracy(vectors, labels, chunk=chunk).accuracy == pytest.approx(expected)


def test_1nn_on_large_runs_scores_a_fixed_sample_spread_over_the_run():
    # Overlapping classes in path order (as a run's PCA rows come): a sample of the first
    # rows would see 2 of the 4 classes and score them as if the others did not exist.
    vectors, labels = _clusters(classes=4, per_class=300, dim=3)
    vectors = vectors + np.random.default_rng(5).normal(0, 6, vectors.shape)
    first = loo_1nn_accuracy(vectors, labels, limit=500)
    assert (first.images, first.total, first.classes) == (500, 1200, 4)
    assert first == loo_1nn_accuracy(vectors, labels, limit=500)
    sample = sample_indices(1200, 500)
    assert len(set(sample)) == 500 and list(sample) == sorted(sample)
    per_class = Counter(labels[sample])
    assert len(per_class) == 4 and min(per_class.values()) >= 90, per_class
    # The score is the exact 1-NN score of that sample.
    assert first.accuracy == pytest.approx(_brute_force(vectors[sample], labels[sample]))
    assert 0.4 < first.accuracy < 0.95


def test_1nn_rejects_mismatched_input():
    with pytest.raises(ValueError, match="do not match"):
        loo_1nn_accuracy(np.zeros((3, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="at least 2"):
        loo_1nn_accuracy(np.zeros((1, 2)), ["a"])


def _emr(minutes: float, groups=None) -> EmrRunInfo:
    return EmrRunInfo(
        cluster_id=CLUSTER_ID,
        instance_groups=groups
        or [InstanceGroup("MASTER", "m5.2xlarge", 1), InstanceGroup("CORE", "m5.2xlarge", 2)],
        created_at=CREATED,
        terminated_at=CREATED + timedelta(minutes=minutes),
    )


def test_cost_is_wall_hours_times_hourly_price_of_every_instance():
    cost = estimate_cost(_emr(90), {"m5.2xlarge": 0.524})
    assert cost.wall_hours == pytest.approx(1.5)
    assert cost.hourly_usd == pytest.approx(3 * 0.524)
    assert cost.total_usd == pytest.approx(1.5 * 3 * 0.524)
    assert cost.missing_prices == () and not cost.still_running


def test_cost_mixes_instance_types_and_uses_the_default_table():
    groups = [InstanceGroup("MASTER", "m5.xlarge", 1), InstanceGroup("CORE", "c5.4xlarge", 4)]
    cost = estimate_cost(_emr(30, groups))
    expected = 0.5 * (
        DEFAULT_HOURLY_PRICES_USD["m5.xlarge"] + 4 * DEFAULT_HOURLY_PRICES_USD["c5.4xlarge"]
    )
    assert cost.total_usd == pytest.approx(expected)


def test_cost_without_a_price_is_unknown_not_partial():
    groups = [InstanceGroup("MASTER", "m5.2xlarge", 1), InstanceGroup("CORE", "x9.huge", 2)]
    cost = estimate_cost(_emr(60, groups), {"m5.2xlarge": 0.5})
    assert cost.total_usd is None
    assert cost.missing_prices == ("x9.huge",)


def test_cost_of_a_cluster_still_running_counts_up_to_now():
    running = EmrRunInfo(CLUSTER_ID, (InstanceGroup("MASTER", "m5.2xlarge", 1),), CREATED)
    cost = estimate_cost(running, {"m5.2xlarge": 1.0}, now=CREATED + timedelta(hours=2))
    assert cost.still_running and cost.total_usd == pytest.approx(2.0)


def test_emr_info_from_boto3_responses():
    cluster = {
        "Id": CLUSTER_ID,
        "Status": {
            "State": "TERMINATED",
            "Timeline": {
                "CreationDateTime": CREATED,
                "EndDateTime": CREATED + timedelta(minutes=42),
            },
        },
    }
    groups = [
        {"InstanceGroupType": "MASTER", "InstanceType": "m5.2xlarge", "RequestedInstanceCount": 1,
         "RunningInstanceCount": 0},
        {"InstanceGroupType": "CORE", "InstanceType": "m5.xlarge", "RequestedInstanceCount": 3,
         "RunningInstanceCount": 0},
    ]  # fmt: skip
    info = EmrRunInfo.from_emr(cluster, groups)
    assert info == EmrRunInfo(
        CLUSTER_ID,
        (InstanceGroup("MASTER", "m5.2xlarge", 1), InstanceGroup("CORE", "m5.xlarge", 3)),
        CREATED,
        CREATED + timedelta(minutes=42),
    )


def test_emr_info_rejects_termination_before_creation():
    with pytest.raises(ValueError, match="before"):
        _emr(-5)

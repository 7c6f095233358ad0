"""What an EMR run cost: wall time of the cluster × the hourly price of its instances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fruits_features.compute.facts import ComputeFacts, Fact

# Estimate only: approximate on-demand list prices (USD per instance-hour) in eu-west-1
# (Ireland), Linux, EC2 price + the EMR uplift for the same type. They leave out EBS
# volumes, S3 requests, data transfer, spot/savings-plan discounts and price changes:
# check https://aws.amazon.com/emr/pricing/ before relying on a figure, and pass
# `hourly_prices_usd` to build_report for another region or newer prices.
DEFAULT_HOURLY_PRICES_USD: Mapping[str, float] = {
    "m5.xlarge": 0.214 + 0.048,
    "m5.2xlarge": 0.428 + 0.096,
    "m5.4xlarge": 0.856 + 0.192,
    "m6i.xlarge": 0.214 + 0.048,
    "m6i.2xlarge": 0.428 + 0.096,
    "m6i.4xlarge": 0.856 + 0.192,
    "c5.2xlarge": 0.384 + 0.085,
    "c5.4xlarge": 0.768 + 0.170,
    "r5.xlarge": 0.282 + 0.063,
    "r5.2xlarge": 0.564 + 0.126,
}


@dataclass(frozen=True)
class InstanceGroup:
    """One EMR instance group: its role (MASTER, CORE, TASK), type and instance count."""

    role: str
    instance_type: str
    count: int


@dataclass(frozen=True)
class EmrRunInfo:
    """The EMR cluster a run used, as far as the report needs it.

    ``terminated_at`` None means the cluster was still up when the report was made: the
    wall time (and cost) then runs up to that moment.
    """

    cluster_id: str
    instance_groups: tuple[InstanceGroup, ...]
    created_at: datetime
    terminated_at: datetime | None = None

    def __post_init__(self) -> None:
        # Lists are accepted for convenience but the dataclass stays hashable/immutable.
        object.__setattr__(self, "instance_groups", tuple(self.instance_groups))
        if self.terminated_at is not None and self.terminated_at < self.created_at:
            raise ValueError(
                f"cluster {self.cluster_id}: terminated_at {self.terminated_at} is before "
                f"created_at {self.created_at}"
            )

    @classmethod
    def from_emr(
        cls, cluster: Mapping[str, Any], instance_groups: Sequence[Mapping[str, Any]]
    ) -> EmrRunInfo:
        """From boto3: ``describe_cluster()["Cluster"]`` and
        ``list_instance_groups()["InstanceGroups"]``."""
        timeline = cluster["Status"]["Timeline"]
        groups = tuple(
            InstanceGroup(
                role=group.get("InstanceGroupType", group.get("Name", "?")),
                instance_type=group["InstanceType"],
                # Requested, not running: a terminated cluster reports 0 running instances.
                count=int(group.get("RequestedInstanceCount", group.get("RunningInstanceCount"))),
            )
            for group in instance_groups
        )
        return cls(
            cluster_id=cluster["Id"],
            instance_groups=groups,
            created_at=timeline["CreationDateTime"],
            terminated_at=timeline.get("EndDateTime"),
        )


@dataclass(frozen=True)
class CostEstimate:
    wall_hours: float
    # Sum of count × price over the groups whose price is known.
    hourly_usd: float
    # None when a type has no price: a partial sum would look like a real total.
    total_usd: float | None
    missing_prices: tuple[str, ...]
    still_running: bool


def estimate_cost(
    emr: EmrRunInfo,
    hourly_prices_usd: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> CostEstimate:
    """Wall hours from creation to termination × Σ count × hourly price of the type."""
    prices = DEFAULT_HOURLY_PRICES_USD if hourly_prices_usd is None else hourly_prices_usd
    end = emr.terminated_at
    if end is None:
        end = now or datetime.now(tz=emr.created_at.tzinfo or UTC)
    wall_hours = (end - emr.created_at).total_seconds() / 3600
    missing = tuple(
        sorted({g.instance_type for g in emr.instance_groups if g.instance_type not in prices})
    )
    hourly = sum(
        g.count * prices[g.instance_type] for g in emr.instance_groups if g.instance_type in prices
    )
    return CostEstimate(
        wall_hours=wall_hours,
        hourly_usd=hourly,
        total_usd=None if missing else wall_hours * hourly,
        missing_prices=missing,
        still_running=emr.terminated_at is None,
    )


def cost_section(
    emr: EmrRunInfo,
    hourly_prices_usd: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> ComputeFacts:
    """What the report shows of the cluster: its life, instances and estimated cost."""
    prices = DEFAULT_HOURLY_PRICES_USD if hourly_prices_usd is None else hourly_prices_usd
    cost = estimate_cost(emr, prices, now=now)
    rows = []
    for group in emr.instance_groups:
        price = prices.get(group.instance_type)
        unknown = Fact("unknown")
        rows.append(
            (
                Fact(group.role),
                Fact(group.instance_type, "id"),
                Fact(group.count, "count"),
                unknown if price is None else Fact(price, "usd"),
                unknown if price is None else Fact(group.count * price, "usd"),
            )
        )
    total = (
        Fact(cost.total_usd, "total_usd")
        if cost.total_usd is not None
        else Fact("unknown: no price for " + ", ".join(cost.missing_prices), "missing")
    )
    running = "(still running when this report was made)" if cost.still_running else ""
    return ComputeFacts(
        key="emr",
        title="EMR cluster and cost",
        facts=(
            ("Cluster id", Fact(emr.cluster_id, "id")),
            ("Created", Fact(emr.created_at, "moment")),
            ("Terminated", Fact(emr.terminated_at, "moment", running)),
            ("Wall time", Fact(cost.wall_hours * 3600, "seconds")),
            ("Instances per hour", Fact(cost.hourly_usd, "usd")),
            ("Estimated cost", total),
        ),
        head=("group", "instance type", "count", "$/hour each", "$/hour"),
        rows=tuple(rows),
        note=(
            "Estimate: wall time from cluster creation to termination × Σ count × hourly "
            "price (on-demand EC2 + EMR uplift). EBS, S3, data transfer and discounts are "
            "not included."
        ),
        summary={"cluster_id": emr.cluster_id, **asdict(cost)},
    )

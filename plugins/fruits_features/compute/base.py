"""What a compute backend provides (see ``fruits_features.compute``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fruits_features.compute.facts import ComputeFacts
from fruits_features.config import PipelineConfig, SettingsGroup
from fruits_features.plan import RunPlan


@dataclass(frozen=True)
class Segment:
    """A backend's tasks as the DAG wires them.

    ``start`` runs after the artifacts are uploaded; when ``end`` succeeds the run's outputs
    are on S3; the report waits for ``done`` (a teardown, say), and receives ``report_inputs``
    (XComArgs) as keyword arguments of ``report_section``.
    """

    start: Any
    end: Any
    done: Any = None
    report_inputs: Mapping[str, Any] = field(default_factory=dict)


class ComputeBackend(Protocol):
    name: str
    settings: type[SettingsGroup]
    # The job's driver runs off the Airflow machine (a cluster): what it needs is resolved
    # there, and it cannot write files here (lineage).
    remote_driver: bool

    def plan_section(self, config: PipelineConfig, plan: RunPlan) -> dict[str, Any]:
        """What the backend adds to the run plan (pure; JSON values; keys it owns)."""
        ...

    def segment(self, plan: Any) -> Segment:
        """Its tasks, created inside the DAG's context; ``plan`` is check_inputs' output."""
        ...

    def report_section(self, plan: RunPlan, **inputs: Any) -> ComputeFacts | None:
        """What the run report shows about the compute, or None."""
        ...

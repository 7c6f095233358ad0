"""The run plan: everything a run will do, decided once by ``check_inputs``, passed by XCom.

``RunPlan`` is frozen and typed; ``to_xcom``/``from_xcom`` are its only way in and out of
XCom. Every top-level key of its XCom form becomes an XCom of its own (check_inputs uses
``multiple_outputs``), so operators take exactly the part they need, e.g. EMR's
``plan["emr_cluster"]``. The compute backend adds its own section (``plan_section``), whose
keys it owns. The deployment's settings are read once, by check_inputs: the plan carries
the values later tasks need, so no task reads or validates them again.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fruits_contract.job_request import JobRequest, MaintenanceRequest
from fruits_features.alerts import DAG_ID, AlertSettings, Notifiers, job_deadline
from fruits_features.config import PipelineConfig
from fruits_features.job_invocation import JobInvocation
from fruits_features.results import download_scope
from fruits_features.run_params import RunParams
from fruits_features.s3_layout import (
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    MAINTENANCE_ENTRY_NAME,
    WEIGHTS_NAME,
    RunLayout,
    run_key,
    run_layout,
)


@dataclass(frozen=True)
class RunPlan:
    """One run: its id, parameters, where it reads and writes, what check_inputs found, how
    tasks reach AWS, and the compute backend's own section."""

    run_id: str
    params: RunParams
    layout: RunLayout
    planned_images: int  # how many images the job will select
    skipped_files: int  # how many listed files it will not process (the job names them)
    inventory: str | None  # the inventory manifest the job reads the listing from, if any
    identity: Mapping[str, Any] | None  # what its outputs depend on (run_identity)
    download: str  # what download_outputs copies: all | summary
    results_dir: str  # the local copy: <results dir>/<mode>/<run key>
    results_keep: int  # downloaded runs kept per mode
    project_dir: str  # holding spark/, bootstrap/, models/
    compute: str  # the backend's name
    aws_conn_id: str
    region: str
    deployment: str = "default"  # FRUITS_DEPLOYMENT, on every cluster of the run
    # Made once per run by check_inputs: what the run's cluster carries and its sweeps look
    # for. Run ids repeat across deployments (``scheduled__<time>``); tokens do not.
    run_token: str = ""
    maintain: bool = False  # the feature store's maintenance is due: run it after the job
    retention_hours: int = 168  # what its VACUUM keeps
    # When its job is overdue (alerts.job_deadline), or None: {"seconds", "timeout_seconds", "why"}
    deadline: Mapping[str, Any] | None = None
    # The Spark conf of the OpenLineage listener (lineage.plan_conf), on every program the
    # run submits; empty: lineage is off.
    lineage: Mapping[str, str] = field(default_factory=dict)
    # Artifact URIs of the JVM packages a cluster's driver needs beyond the cluster's own
    # (Delta Kernel: job_invocation.shipped_jars); empty when the driver runs here.
    jars: tuple[str, ...] = ()
    backend: Mapping[str, Any] = field(default_factory=dict)  # the backend's section

    @property
    def results_path(self) -> Path:
        return Path(self.results_dir)

    def invocation(self) -> JobInvocation:
        """The job reading and writing the run's S3 locations, from its uploaded artifacts."""
        layout, params = self.layout, self.params
        request = JobRequest(
            input_uri=layout.input_uri,
            output_uri=layout.output_uri,
            weights_uri=layout.artifact_uri(WEIGHTS_NAME),
            mode=params.mode,
            pca_components=params.pca_components,
            run_id=self.run_id,
            engine=params.engine,
            limit=params.limit,
            inventory=self.inventory,
            feature_store=layout.feature_store_uri,
            recompute=not params.reuse_features,
            export_features=params.exports,
        )
        return JobInvocation(
            entry_point=layout.artifact_uri(ENTRY_POINT_NAME),
            job_zip=layout.artifact_uri(JOB_ZIP_NAME),
            request=request,
            spark_conf=self.spark_conf(),
        )

    def maintenance_invocation(self) -> JobInvocation:
        """The feature store's maintenance (OPTIMIZE, VACUUM), from the run's artifacts."""
        layout = self.layout
        request = MaintenanceRequest(
            feature_store=layout.feature_store_uri,
            output_uri=layout.maintenance_uri,
            run_id=self.run_id,
            retention_hours=self.retention_hours,
        )
        return JobInvocation(
            entry_point=layout.artifact_uri(MAINTENANCE_ENTRY_NAME),
            job_zip=layout.artifact_uri(JOB_ZIP_NAME),
            request=request,
            spark_conf=self.spark_conf(),
        )

    def spark_conf(self) -> dict[str, str]:
        """The Spark conf of every program the run submits: lineage's, the shipped jars."""
        conf = dict(self.lineage)
        jars = [*self.jars, *filter(None, [conf.get("spark.jars")])]
        if jars:
            conf["spark.jars"] = ",".join(jars)
        return conf

    def with_backend(self, section: Mapping[str, Any]) -> RunPlan:
        clash = sorted(set(section) & {f.name for f in fields(self)})
        if clash:
            raise ValueError(f"compute backend {self.compute!r} overrides plan keys {clash}")
        return replace(self, backend=dict(section))

    def to_xcom(self) -> dict[str, Any]:
        """JSON values, one top-level key each (the backend's keys beside the plan's)."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "backend"}
        own.update(
            params=asdict(self.params),
            layout=asdict(self.layout),
            identity=None if self.identity is None else dict(self.identity),
            lineage=dict(self.lineage),
            jars=list(self.jars),
        )
        return {**own, **self.backend}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RunPlan:
        names = {f.name for f in fields(cls)} - {"backend"}
        own = {name: data[name] for name in names}
        own.update(
            params=RunParams(**data["params"]),
            layout=RunLayout(**data["layout"]),
            jars=tuple(data["jars"]),
        )
        return cls(**own, backend={k: v for k, v in data.items() if k not in names})


def build_plan(
    config: PipelineConfig,
    params: RunParams,
    run_id: str,
    planned_images: int,
    skipped_files: int = 0,
    identity: Mapping[str, Any] | None = None,
    maintain: bool = False,
    inventory: str | None = None,
    lineage: Mapping[str, str] | None = None,
    jars: tuple[str, ...] = (),
) -> RunPlan:
    """Plan of one run, without the backend's section, with a new run token."""
    layout = run_layout(config, params.mode, run_key(run_id))
    return RunPlan(
        run_id=run_id,
        params=params,
        layout=layout,
        planned_images=planned_images,
        skipped_files=skipped_files,
        inventory=inventory,
        identity=identity,
        download=download_scope(config, params),
        results_dir=str(results_folder(config, params.mode, layout.run_key)),
        results_keep=config.core.results_keep,
        project_dir=str(config.project_path),
        compute=config.compute,
        aws_conn_id=config.storage.aws_conn_id,
        region=config.storage.region,
        deployment=config.storage.deployment,
        run_token=secrets.token_hex(8),
        maintain=maintain,
        retention_hours=config.store.feature_store_retention_hours,
        deadline=run_deadline(config, params, run_id, planned_images),
        lineage=dict(lineage or {}),
        jars=jars,
    )


def run_deadline(
    config: PipelineConfig, params: RunParams, run_id: str, planned_images: int
) -> dict[str, Any] | None:
    """The job's deadline (``alerts.job_deadline``) with what its announcement needs."""
    deadline = job_deadline(
        config.group(AlertSettings), planned_images, config.core.step_timeout_seconds
    )
    if deadline is None:
        return None
    run = {"dag_id": DAG_ID, "run_id": run_id, "mode": params.mode}
    return {**deadline, **run, "notifiers": Notifiers.from_config(config).to_dict()}


def results_folder(config: PipelineConfig, mode: str, key: str) -> Path:
    """Where a run is downloaded: ``<results dir>/<mode>/<run key>``."""
    return config.results_path / mode / key

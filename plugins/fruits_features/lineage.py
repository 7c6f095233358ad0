"""OpenLineage of a run: the Spark job's listener, configured from Airflow's ``[openlineage]``
settings and linked to the Airflow task that starts the job, so one run's lineage holds the
bank, the feature table and the PCA outputs.

Off unless configured: the OpenLineage provider decides (``conf.is_disabled``: no
``[openlineage] transport``, ``config_path``, ``OPENLINEAGE_URL``... means off), so the job
gets a listener exactly when the DAG's own tasks emit events. Off, a run's Spark conf, its
classpath and its steps are what they were without this module.

Both sides send where Airflow's transport says: an ``http`` transport is handed to the
listener as the provider hands it to other Spark operators; a ``file`` transport makes the
job write its events beside Airflow's file (``<name>.spark.jsonl``), except on EMR, whose
driver cannot write on the Airflow machine; any other transport: the driver's log.

The job reads the photos by path in Python (pandas UDFs), which Spark's plan does not show:
the listener reports what Spark reads and writes (the listing, the feature table, the
outputs), and the bank is an input of the parent task, reported by it (``record_datasets``).
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LISTENER = "io.openlineage.spark.agent.OpenLineageSparkListener"
LISTENERS_KEY = "spark.extraListeners"
# The listener's Maven coordinates and SHA-256: `make setup` fetches it into <venv>/jars/lineage
# (apart from the jars every local run loads); an EMR run takes that jar with its artifacts.
REQUIREMENTS_NAME = "requirements-jvm-lineage.txt"
JARS_FOLDER = "lineage"
# Where an EMR driver (on the master node) writes its events when Airflow's transport is a
# file: a path the step's user may create, on the cluster, not on the Airflow machine.
REMOTE_EVENTS_DIR = "/tmp/fruits-features-openlineage"
SPARK_SUFFIX = ".spark.jsonl"


class MissingLineageJarError(FileNotFoundError):
    """Lineage is on but the listener's jar is not where `make setup` puts it."""


def enabled() -> bool:
    """Whether Airflow's OpenLineage is configured (and its provider installed)."""
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    return not conf.is_disabled()


def is_on(spark_conf: Mapping[str, str]) -> bool:
    """Whether a job's Spark conf carries the listener (the plan decided lineage is on)."""
    return LISTENER in spark_conf.get(LISTENERS_KEY, "").split(",")


def spark_events_path(airflow_path: str) -> str:
    """The Spark job's event file beside Airflow's: ``/x/ol.jsonl`` -> ``/x/ol.spark.jsonl``.

    A file of its own, not Airflow's: two processes appending whole lines to one file is
    safe on a local disk only for lines shorter than the pipe buffer, and Spark's are not."""
    path = Path(airflow_path)
    stem = path.name[: -len(path.suffix)] if path.suffix in (".json", ".jsonl") else path.name
    return str(path.with_name(stem + SPARK_SUFFIX))


def transport_conf(transport: Mapping[str, Any], *, remote: bool) -> dict[str, str]:
    """The listener's transport for Airflow's ``[openlineage] transport`` (a file or the
    driver's log; http is the provider's, see ``plan_conf``). ``remote``: the driver runs on
    a cluster, not on the Airflow machine."""
    if transport.get("type") == "file" and transport.get("log_file_path"):
        location = spark_events_path(str(transport["log_file_path"]))
        if remote:
            location = f"{REMOTE_EVENTS_DIR}/{Path(location).name}"
        return {
            "spark.openlineage.transport.type": "file",
            "spark.openlineage.transport.location": location,
        }
    return {"spark.openlineage.transport.type": "console"}


JAR_ARTIFACT = "openlineage-spark.jar"


def spark_conf(
    transport: Mapping[str, str], namespace: str, jar_uri: str | None = None
) -> dict[str, str]:
    """The job's Spark conf for lineage: the listener, its namespace (Airflow's, so both
    sides' jobs are found together) and transport; ``jar_uri``: the listener's jar among the
    run's artifacts, for a cluster (the local backend puts the jar on --jars instead): no
    download from Maven Central at step time."""
    conf = {LISTENERS_KEY: LISTENER, "spark.openlineage.namespace": namespace, **transport}
    if jar_uri:
        conf["spark.jars"] = jar_uri
    return conf


def shipped_jar(spark_conf: Mapping[str, str]) -> str | None:
    """The artifact URI of the listener's jar, when the run ships it to a cluster."""
    return spark_conf.get("spark.jars") if is_on(spark_conf) else None


def plan_conf(*, remote: bool, jar_uri: str | None = None) -> dict[str, str]:
    """The run's Spark conf for lineage, from Airflow's settings; empty when lineage is off.

    Read once, by check_inputs (the plan carries it); the parent run is the task's that
    starts the job, added by that task (``parent_conf``)."""
    if not enabled():
        return {}
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.utils.spark import (
        inject_transport_information_into_spark_properties,
    )

    configured = conf.transport()
    # http (or a composite holding http): the provider's own mapping, auth included.
    transport = inject_transport_information_into_spark_properties({}, None)
    if not transport:
        transport = transport_conf(configured, remote=remote)
        if remote and configured.get("type") == "file":
            log.warning(
                "OpenLineage: Airflow's transport is a file; the Spark job on EMR cannot write "
                "on this machine: its events go to %s on the cluster's master node (use an "
                "http transport to collect them)",
                transport["spark.openlineage.transport.location"],
            )
    return spark_conf(transport, conf.namespace(), jar_uri if remote else None)


def local_jars() -> list[Path]:
    """The listener's jar for a local run: ``<venv>/jars/lineage``, made by `make setup`."""
    folder = Path(sys.prefix) / "jars" / JARS_FOLDER
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise MissingLineageJarError(
            f"OpenLineage is configured but no listener jar is in {folder}: run `make setup` "
            f"(it fetches {REQUIREMENTS_NAME})"
        )
    return jars


def parent_conf(context: Any) -> dict[str, str]:
    """The parent run of the Spark job: the running task (its OpenLineage namespace, job
    name, run id and root run), as the provider injects it into other Spark operators."""
    from airflow.providers.openlineage.utils.spark import (
        inject_parent_job_information_into_spark_properties,
    )

    return inject_parent_job_information_into_spark_properties({}, context)


def is_step_on(step: Mapping[str, Any]) -> bool:
    """Whether an EMR step's spark-submit runs the listener."""
    args = step.get("HadoopJarStep", {}).get("Args", [])
    return "spark-submit" in args and f"{LISTENERS_KEY}={LISTENER}" in args


def step_with_parent(step: Mapping[str, Any], parent: Mapping[str, str]) -> dict[str, Any]:
    """An EMR step (a copy) with the parent run's ``--conf`` right after ``spark-submit``,
    when it runs the listener and names no parent yet."""
    step = copy.deepcopy(dict(step))
    args: list[str] = step.get("HadoopJarStep", {}).get("Args", [])
    if not is_step_on(step) or any(a.startswith("spark.openlineage.parent") for a in args):
        return step
    at = args.index("spark-submit") + 1
    confs = [arg for key, value in parent.items() for arg in ("--conf", f"{key}={value}")]
    step["HadoopJarStep"]["Args"] = [*args[:at], *confs, *args[at:]]
    return step


def record_datasets(hook: Any, inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """Report datasets of the running task through Airflow's hook lineage (the OpenLineage
    listener puts them in the task's events; a no-op collector when lineage is off)."""
    from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    for uri in inputs:
        collector.add_input_asset(context=hook, uri=uri)
    for uri in outputs:
        collector.add_output_asset(context=hook, uri=uri)

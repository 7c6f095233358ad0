"""The EMR backend's settings (``FRUITS_COMPUTE=emr``)."""

from __future__ import annotations

import json
from typing import Annotated, ClassVar

from pydantic import AfterValidator

from fruits_features.config import Prefix, SettingsGroup, matching, setting

InstanceType = Annotated[
    str, matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as 'm5.2xlarge'")
]
IamName = Annotated[str, matching(r"[A-Za-z0-9_+=,.@/-]{1,128}", "an IAM role or profile name")]


def _prices(text: str) -> str:
    if not text:
        return ""
    try:
        prices = json.loads(text)
    except ValueError:
        prices = None
    if not isinstance(prices, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in prices.values()
    ):
        raise ValueError('expected a JSON object such as {"m5.2xlarge": 0.524}')
    return json.dumps(prices, sort_keys=True)


class EmrSettings(SettingsGroup):
    title: ClassVar[str] = "EMR compute (`FRUITS_COMPUTE=emr`)"

    log_prefix: Prefix = setting("fruits-features/emr-logs", "EMR `LogUri`")
    emr_release: Annotated[
        str, matching(r"emr-\d+\.\d+\.\d+", "an EMR release label such as 'emr-7.11.0'")
    ] = setting("emr-7.11.0", "EMR release (Spark 3.5)")
    master_instance_type: InstanceType = setting("m5.2xlarge", "master node type")
    core_instance_type: InstanceType = setting("m5.2xlarge", "core node type")
    core_instance_count: int = setting(2, "core nodes", ge=1, le=100)
    ebs_volume_gb: int = setting(
        64, "gp3 data volume per node (YARN, HDFS, shuffle)", ge=8, le=4096
    )
    ebs_root_volume_gb: int = setting(
        30, "root volume per node (the OS and the job's venv, ~2 GB on the master)", ge=15, le=100
    )
    emr_service_role: IamName = setting("EMR_DefaultRole", "EMR service role")
    emr_instance_profile: IamName = setting("EMR_EC2_DefaultRole", "EC2 instance profile")
    # The interpreter of the venv that bootstrap/install_dependencies.sh creates on every node.
    emr_python: Annotated[str, matching(r"/\S+", "an absolute path to a python interpreter")] = (
        setting(
            "/opt/fruits-features/venv/bin/python",
            "Python the bootstrap installs, used by Spark",
        )
    )
    subnet_id: Annotated[
        str, matching(r"(subnet-[0-9a-f]{8,17})?", "a subnet id 'subnet-…' or empty")
    ] = setting("", "subnet of the cluster (empty: the default VPC)")
    idle_timeout_seconds: int = setting(
        3600,
        "EMR auto-termination when idle, a safety net behind the teardown",
        ge=60,
        le=7 * 24 * 3600,
    )
    sensor_deferrable: bool = setting(True, "wait for the step in the triggerer")
    step_log_wait_seconds: int = setting(
        300,
        "on a failed step, how long to wait for EMR to push its `stderr.gz` to S3 (it copies "
        "step logs every few minutes) to quote the job's error in the task log; 0: no wait",
        ge=0,
        le=1800,
    )
    hourly_prices_usd: Annotated[str, AfterValidator(_prices)] = setting(
        "",
        'JSON `{"m5.2xlarge": 0.524}`: EC2 + EMR price per hour, for the report\'s cost '
        "(empty: a built-in eu-west-1 table)",
    )

    @property
    def hourly_prices(self) -> dict[str, float] | None:
        """Configured prices, or None for the built-in table."""
        return json.loads(self.hourly_prices_usd) if self.hourly_prices_usd else None

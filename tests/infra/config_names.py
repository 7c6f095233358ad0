"""The FRUITS_* configuration names the project accepts.

The source of truth is the plugin's config module: the names are read from its
text so these tests need not import Airflow. Until that module exists the list
agreed for the project stands in.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG_MODULE = REPO / "plugins" / "fruits_features" / "config.py"
NAME_PATTERN = re.compile(r"\bFRUITS_[A-Z0-9_]*[A-Z0-9]\b")

FALLBACK_NAMES = frozenset(
    {
        "FRUITS_COMPUTE",
        "FRUITS_AWS_CONN_ID",
        "FRUITS_REGION",
        "FRUITS_BUCKET",
        "FRUITS_INPUT_PREFIX",
        "FRUITS_OUTPUT_PREFIX",
        "FRUITS_ARTIFACTS_PREFIX",
        "FRUITS_LOG_PREFIX",
        "FRUITS_EMR_RELEASE",
        "FRUITS_MASTER_INSTANCE_TYPE",
        "FRUITS_CORE_INSTANCE_TYPE",
        "FRUITS_CORE_INSTANCE_COUNT",
        "FRUITS_EBS_VOLUME_GB",
        "FRUITS_EMR_SERVICE_ROLE",
        "FRUITS_EMR_INSTANCE_PROFILE",
        "FRUITS_SUBNET_ID",
        "FRUITS_IDLE_TIMEOUT_SECONDS",
        "FRUITS_STEP_TIMEOUT_SECONDS",
        "FRUITS_STEP_POLL_SECONDS",
        "FRUITS_SENSOR_DEFERRABLE",
        "FRUITS_RESULTS_DIR",
        "FRUITS_SCHEDULE",
        "FRUITS_SCHEDULE_TIMEZONE",
        "FRUITS_SCHEDULED_MODE",
        "FRUITS_PCA_COMPONENTS",
        "FRUITS_LOCAL_SPARK_MASTER",
        "FRUITS_PROJECT_DIR",
    }
)


def names_in(text: str) -> set[str]:
    return set(NAME_PATTERN.findall(text))


def known_names() -> tuple[frozenset[str], str]:
    """The accepted names and where they came from."""
    if CONFIG_MODULE.is_file():
        names = names_in(CONFIG_MODULE.read_text(encoding="utf-8"))
        if names:
            return frozenset(names), str(CONFIG_MODULE.relative_to(REPO))
    return FALLBACK_NAMES, "the fallback list in tests/infra/config_names.py"

"""The IAM policies a deployment needs, rendered for its settings.

The templates are ``iam/*.json`` in the project; ``${name}`` placeholders take the bucket,
prefixes, region and roles of the configuration, and the account id you give:

    PYTHONPATH=plugins .venv/bin/python -m fruits_features.iam --account 123456789012

- ``airflow``: the identity behind the Airflow AWS connection (S3 transfers, the cluster's
  life, the report's cost lookups, the SNS alerts when a topic is set);
- ``emr-instance-profile``: what the cluster's nodes (the job) may do on S3.

A test replays every AWS call the DAG makes in its EMR runs against these policies.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from typing import Any

from fruits_features.alerts import AlertSettings
from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.compute.emr_spec import PROJECT_TAG
from fruits_features.config import PipelineConfig
from fruits_features.settings import config_at_parse_time

POLICIES = {"airflow": "airflow.json", "emr-instance-profile": "emr-instance-profile.json"}


def placeholders(config: PipelineConfig, account: str) -> dict[str, str]:
    storage, emr = config.storage, config.group(EmrSettings)
    return {
        "bucket": storage.bucket,
        "input_prefix": storage.input_prefix,
        "output_prefix": storage.output_prefix,
        "artifacts_prefix": storage.artifacts_prefix,
        "feature_store_prefix": config.store.feature_store_prefix,
        "log_prefix": emr.log_prefix,
        "region": storage.region,
        "account": account,
        "service_role": emr.emr_service_role,
        # EMR's default instance profile and its role share a name; PassRole names the role.
        "instance_profile": emr.emr_instance_profile,
        "project_tag": PROJECT_TAG,
        "deployment": storage.deployment,
    }


def render_policy(name: str, config: PipelineConfig, account: str = "ACCOUNT") -> dict[str, Any]:
    template = (config.project_path / "iam" / POLICIES[name]).read_text(encoding="utf-8")
    policy = json.loads(string.Template(template).substitute(placeholders(config, account)))
    topic = config.group(AlertSettings).alert_sns_topic_arn
    if name == "airflow" and topic:  # alerts (FRUITS_ALERT_SNS_TOPIC_ARN): that topic only
        publish = {"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish"}
        policy["Statement"].append({**publish, "Resource": topic})
    return policy


def readme_blocks(config: PipelineConfig) -> str:
    """The README's policies: the reference deployment's, for account ``ACCOUNT``."""
    blocks = []
    for name, file in POLICIES.items():
        policy = json.dumps(render_policy(name, config), indent=2)
        blocks.append(f"`{name}` (`iam/{file}`):\n\n```json\n{policy}\n```\n")
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fruits_features.iam", description=__doc__)
    parser.add_argument("--account", default="ACCOUNT", help="AWS account id")
    parser.add_argument("--policy", choices=list(POLICIES), help="only this one")
    parser.add_argument("--readme", action="store_true", help="the README's blocks")
    args = parser.parse_args(argv)
    config = config_at_parse_time()
    if args.readme:
        print(readme_blocks(config), end="")
        return 0
    for name in [args.policy] if args.policy else list(POLICIES):
        print(f"# {name}")
        print(json.dumps(render_policy(name, config, args.account), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

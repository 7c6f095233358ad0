"""Every AWS call a test makes, recorded through botocore's event hooks, and judged by IAM.

``record_aws_calls()`` registers a ``before-parameter-build`` handler on every botocore session
created while it is active (aiobotocore's, which the deferred sensor's trigger uses, derive
from botocore's), so it sees every call the DAG's tasks, operators and triggers make, with
the caller's own parameters.

``iam_decision(call, policy)`` evaluates one call against an identity policy the way IAM
does for what the project uses: Allow statements, action and resource wildcards, and
``StringEquals`` conditions on request and resource tags. Everything else is denied.
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class AwsCall:
    service: str  # botocore's service name: "emr", "s3"
    operation: str  # "RunJobFlow", "PutObject", ...
    params: Mapping[str, Any]
    region: str


@dataclass
class CallLog:
    calls: list[AwsCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: AwsCall) -> None:
        with self._lock:
            self.calls.append(call)

    def operations(self, service: str | None = None) -> list[str]:
        return [c.operation for c in self.calls if service in (None, c.service)]


@contextlib.contextmanager
def record_aws_calls() -> Iterator[CallLog]:
    import botocore.session

    log = CallLog()
    original = botocore.session.Session.__init__

    def handler(params, model, context=None, **_: Any) -> None:
        # The caller's own parameters (Bucket, Key, ClusterId, Tags...), before serialization.
        region = (context or {}).get("client_region") or ""
        log.add(AwsCall(model.service_model.service_name, model.name, dict(params), region))

    def recording_init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-parameter-build", handler)

    botocore.session.Session.__init__ = recording_init
    try:
        yield log
    finally:
        botocore.session.Session.__init__ = original


# --- from a call to what IAM authorizes


@dataclass(frozen=True)
class Request:
    """One IAM authorization: an action on a resource, with its condition context."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


S3_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
# EMR actions scoped to a cluster ARN (the others take "*").
EMR_CLUSTER_ACTIONS = {
    "DescribeCluster",
    "ListInstanceGroups",
    "AddJobFlowSteps",
    "DescribeStep",
    "ListSteps",
    "TerminateJobFlows",
    "AddTags",
}


def requests_of(call: AwsCall, cluster_tags: Callable[[str], Mapping[str, str]]) -> list[Request]:
    """What IAM checks for this call; ``cluster_tags(id)`` gives an EMR cluster's tags."""
    if call.service == "s3":
        action = S3_ACTIONS.get(call.operation, f"s3:{call.operation}")
        bucket, key = call.params.get("Bucket", ""), call.params.get("Key", "")
        if action == "s3:ListBucket":
            return [Request(action, f"arn:aws:s3:::{bucket}")]
        return [Request(action, f"arn:aws:s3:::{bucket}/{key}")]
    if call.service == "emr":
        action = f"elasticmapreduce:{call.operation}"
        if call.operation == "RunJobFlow":
            # Tags given at creation are authorized with RunJobFlow's request tags (EMR's
            # "Require cluster tagging when a cluster is created"), not as AddTags.
            tags = {t["Key"]: t["Value"] for t in call.params.get("Tags", [])}
            context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
            requests = [Request(action, "*", context)]
            # The service role goes to EMR, the instance profile's role to the EC2 instances.
            for role, service in (
                (call.params.get("ServiceRole"), "elasticmapreduce.amazonaws.com"),
                (call.params.get("JobFlowRole"), "ec2.amazonaws.com"),
            ):
                if role:
                    requests.append(pass_role(role, service))
            return requests
        cluster_ids = call.params.get("JobFlowIds") or [
            call.params.get("ClusterId")
            or call.params.get("JobFlowId")
            or call.params.get("ResourceId")
        ]
        if call.operation in EMR_CLUSTER_ACTIONS:
            return [
                Request(
                    action,
                    f"arn:aws:elasticmapreduce:{call.region}:{ACCOUNT}:cluster/{cluster}",
                    {
                        f"elasticmapreduce:ResourceTag/{k}": v
                        for k, v in cluster_tags(cluster).items()
                    },
                )
                for cluster in cluster_ids
            ]
        return [Request(action, "*")]
    if call.service == "sns" and call.operation == "Publish":
        return [Request("sns:Publish", call.params["TargetArn"])]
    return [Request(f"{call.service}:{call.operation}", "*")]


def pass_role(role: str, service: str) -> Request:
    return Request(
        "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{role}", {"iam:PassedToService": service}
    )


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def allowed(request: Request, policy: Mapping[str, Any]) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(request.action, a) for a in _as_list(statement["Action"])):
            continue
        if not any(
            fnmatch.fnmatchcase(request.resource, r) for r in _as_list(statement["Resource"])
        ):
            continue
        conditions = statement.get("Condition", {})
        unknown = set(conditions) - {"StringEquals"}
        assert not unknown, f"the test evaluator does not know {unknown}"
        wanted = conditions.get("StringEquals", {})
        if all(request.context.get(key) in _as_list(value) for key, value in wanted.items()):
            return True
    return False


def denied_calls(
    calls: list[AwsCall],
    policy: Mapping[str, Any],
    cluster_tags: Callable[[str], Mapping[str, str]],
) -> list[tuple[AwsCall, Request]]:
    """The calls IAM would refuse under ``policy``, each with the authorization that fails."""
    return [
        (call, request)
        for call in calls
        for request in requests_of(call, cluster_tags)
        if not allowed(request, policy)
    ]

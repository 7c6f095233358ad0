"""Requests held to botocore's own service model: what moto accepts and AWS would not.

``request_problems(service, operation, params)`` is botocore's parameter validation (types,
required members, ranges, enums) plus the members the model documents as no longer supported
or deprecated, which AWS ignores or refuses while moto takes them silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from botocore.session import get_session
from botocore.validate import ParamValidator

OUTDATED = re.compile(r"no longer supported|deprecated", re.IGNORECASE)


@cache
def service_model(service: str):
    return get_session().get_service_model(service)


def _outdated_members(shape, value: Any, path: str) -> Iterator[str]:
    if shape is None:
        return
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for name, member in value.items():
            member_shape = shape.members.get(name)
            if member_shape is None:
                continue
            docs = shape.members[name].documentation or ""
            if OUTDATED.search(re.sub(r"<[^>]+>", " ", docs)):
                yield f"{path}.{name}" if path else name
            yield from _outdated_members(member_shape, member, f"{path}.{name}" if path else name)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _outdated_members(shape.member, item, f"{path}[{index}]")
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _outdated_members(shape.value, item, f"{path}[{key}]")


def request_problems(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    shape = service_model(service).operation_model(operation).input_shape
    problems = []
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        problems.append(report.generate_report())
    problems += [
        f"{member}: the model says it is no longer supported or deprecated"
        for member in _outdated_members(shape, params, "")
    ]
    return problems

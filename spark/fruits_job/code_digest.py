"""A digest of Python code as it runs: what the feature store's fingerprint and the model
export cache key by, so that a change to the code is never mistaken for the same model."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect

# The modules whose code turns an image's bytes into its features.
SHAPING_MODULES = ("fruits_job.preprocess", "fruits_job.features", "fruits_job.engines")


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body.pop(0)
    return tree


def code_digest(modules: tuple[str, ...] = SHAPING_MODULES) -> str:
    """SHA-256 of the modules' code as Python parses it: comments, docstrings and layout do
    not count, any change to what runs does."""
    digest = hashlib.sha256()
    for name in modules:
        tree = _without_docstrings(ast.parse(inspect.getsource(importlib.import_module(name))))
        digest.update(f"{name}\0{ast.dump(tree)}\n".encode())
    return digest.hexdigest()

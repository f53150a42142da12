"""The `rewrite` fault's edits: JSON response bodies changed by path, the way a lagging index, a wrong
alias or a missing synonym file changes an answer while every status code stays 200."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from typing import Any

from probes.faults.model import RewriteOp
from probes.jsonpaths import compile_path, find


def apply_op(document: Any, op: RewriteOp) -> Any:
    """`document` with one edit made (lists in place); a path matching nothing changes nothing."""
    if op.op == "set":
        return compile_path(op.path).update(document, copy.deepcopy(op.value))
    for value in find(op.path, document):
        if not isinstance(value, list):
            continue
        if op.op == "reverse":
            value.reverse()
        elif op.op == "drop_first":
            del value[: op.count or 1]
        elif op.op == "drop":
            assert op.index is not None, "validated by the model"
            if -len(value) <= op.index < len(value):
                del value[op.index]
        elif op.op == "shuffle":
            random.Random(op.seed or 0).shuffle(value)
    return document


def rewrite_json(body: bytes, ops: Sequence[RewriteOp]) -> bytes | None:
    """The edited body, or None when it is not JSON (compressed, HTML, empty...): it then passes unchanged."""
    try:
        document = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return None
    for op in ops:
        document = apply_op(document, op)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

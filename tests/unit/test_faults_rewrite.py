"""The `rewrite` fault: how each edit changes a JSON answer, and the 422 messages for wrong ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from probes.faults.model import Fault, describe_validation_error
from probes.faults.rewrite import rewrite_json

BODY = json.dumps({"total": 5, "hits": [{"id": f"h{i}"} for i in range(5)]}).encode()


def rewrite(*ops: dict[str, Any], body: bytes = BODY) -> Any:
    fault = Fault.model_validate({"type": "rewrite", "rewrite": list(ops)})
    out = rewrite_json(body, fault.rewrite)
    return None if out is None else json.loads(out)


def ids(document: Any) -> list[str]:
    return [hit["id"] for hit in document["hits"]]


def test_list_edits() -> None:
    assert ids(rewrite({"path": "$.hits", "op": "reverse"})) == ["h4", "h3", "h2", "h1", "h0"]
    assert ids(rewrite({"path": "$.hits", "op": "drop_first"})) == ["h1", "h2", "h3", "h4"]
    assert ids(rewrite({"path": "$.hits", "op": "drop_first", "count": 2})) == ["h2", "h3", "h4"]
    assert ids(rewrite({"path": "$.hits", "op": "drop", "index": 1})) == ["h0", "h2", "h3", "h4"]
    assert ids(rewrite({"path": "$.hits", "op": "drop", "index": -1})) == ["h0", "h1", "h2", "h3"]
    assert ids(rewrite({"path": "$.hits", "op": "drop", "index": 9})) == ["h0", "h1", "h2", "h3", "h4"]


def test_shuffle_is_the_same_every_time_for_a_seed() -> None:
    first = ids(rewrite({"path": "$.hits", "op": "shuffle", "seed": 7}))
    assert sorted(first) == ids(json.loads(BODY)) != first
    assert ids(rewrite({"path": "$.hits", "op": "shuffle", "seed": 7})) == first


def test_set_and_edits_in_order() -> None:
    out = rewrite({"path": "$.total", "op": "set", "value": 0}, {"path": "$.hits[0].id", "op": "set", "value": "x"},
                  {"path": "$.hits", "op": "drop_first", "count": 1})
    assert out["total"] == 0
    assert ids(out) == ["h1", "h2", "h3", "h4"]


def test_a_path_matching_nothing_changes_nothing() -> None:
    assert rewrite({"path": "$.results", "op": "reverse"}) == json.loads(BODY)


@pytest.mark.parametrize("body", [b"<html>hi</html>", b"", b"\x1f\x8b\x08\x00binary"])
def test_bodies_that_are_not_json_pass_unchanged(body: bytes) -> None:
    assert rewrite({"path": "$.hits", "op": "reverse"}, body=body) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "rewrite"}, "rewrite: a rewrite fault needs at least one edit"),
        ({"type": "error", "rewrite": [{"path": "$.hits", "op": "reverse"}]}, "rewrite: only for type rewrite"),
        ({"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "drop"}]}, "rewrite.0: op drop needs an index"),
        ({"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "set"}]}, "rewrite.0: op set needs a value"),
        ({"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "reverse", "index": 1}]}, "takes no index"),
        ({"type": "rewrite", "rewrite": [{"path": "$.hits[", "op": "reverse"}]}, "rewrite.0.path: invalid JSONPath"),
        ({"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "sort"}]}, "rewrite.0.op: Input should be"),
    ],
)
def test_wrong_rewrites_are_explained(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Fault.model_validate(data)
    assert any(message in line for line in describe_validation_error(info.value)), describe_validation_error(info.value)


def test_a_dumped_rewrite_fault_validates_again() -> None:
    fault = Fault.model_validate({"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "shuffle", "seed": 3}]})
    assert Fault.model_validate(fault.model_dump(mode="json")) == fault
    assert Fault.model_validate(fault.model_dump(mode="json", exclude_none=True)) == fault

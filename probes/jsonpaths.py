"""JSONPath compiled once per expression (jsonpath-ng's parser is slow; probes reuse a few paths)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as _parse


@lru_cache(maxsize=4096)
def compile_path(expression: str) -> Any:
    try:
        return _parse(expression)
    except (JsonPathParserError, Exception) as exc:
        raise ValueError(f"invalid JSONPath {expression!r}: {exc}") from None


def find(expression: str, document: Any) -> list[Any]:
    return [match.value for match in compile_path(expression).find(document)]

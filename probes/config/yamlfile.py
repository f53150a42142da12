"""YAML files read from users: line numbers for every field, ${VAR} interpolation, and pydantic errors
reported as `FILE:LINE: field.path: message` (never a traceback)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from probes.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Document:
    """A parsed YAML file and the line of every mapping key and sequence item in it."""

    def __init__(self, path: str, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, loc: Loc) -> int:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def error(self, loc: Loc, message: str) -> str:
        return f"{self.path}:{self.line_of(loc)}: {format_loc(loc) or '(top)'}: {message}"


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*loc, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _record_lines(item, (*loc, index), lines)


# libyaml's parser when PyYAML has it: a config of 10,000 probes parses in about a second instead of
# six, which is what a worker process restarting or a reload waits for.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_Base):  # type: ignore[valid-type,misc]
    pass


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, path: str) -> Document:
    loader = _UniqueKeyLoader(text)
    try:
        # One parse: the node tree gives the line numbers, and the data is constructed from it.
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{line}: (yaml): invalid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return Document(path, {} if data is None else data, lines)


def read(path: str | Path) -> Document:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:0: (file): cannot read: {exc.strerror or exc}"]) from None
    return parse(text, str(path))


def interpolate(doc: Document, env: Mapping[str, str] | None = None,
                keep: Callable[[Loc, str], bool] = lambda loc, name: False) -> list[str]:
    """Replace ${VAR} in every string from `env`; `$${VAR}` is a literal `${VAR}`.

    A variable that `keep(loc, name)` claims is left for later (a scripted probe's extracted value);
    any other unset variable is an error, returned as a message.
    """
    environ = os.environ if env is None else env
    errors: list[str] = []

    def substitute(value: str, loc: Loc) -> str:
        def one(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if keep(loc, name):
                return match.group(0)
            if name in environ:
                return environ[name]
            errors.append(doc.error(loc, f"environment variable {name} is not set"))
            return ""

        return _VAR.sub(one, value)

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, str):
            return substitute(value, loc) if "${" in value else value
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    doc.data = walk(doc.data, ())
    return errors


def _clean_loc(data: Any, loc: Loc) -> Loc:
    """Drop the parts pydantic adds that are not in the file (union tags, 'function-after[...]')."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the discriminator tag of a tagged union
        elif isinstance(node, dict):
            # A missing field names itself; a wrapper name does not exist in the data.
            if isinstance(part, str) and not part.startswith(("function-", "tagged-union", "list[", "dict[")):
                out.append(part)
                node = None
        elif not isinstance(node, list):
            break
    return tuple(out)


def validation_messages(doc: Document, exc: ValidationError, prefix: Loc = ()) -> list[str]:
    messages = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(doc.data, (*prefix, *err["loc"]))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        messages.append(doc.error(loc, msg))
    return messages


def validate(doc: Document, model: type[M], context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise ConfigError(validation_messages(doc, exc)) from None

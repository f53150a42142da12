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
from probes.redaction import register_secret

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_VAR = re.compile(r"\$(\$?)\{(file:[^}]+|[A-Za-z_][A-Za-z0-9_]*)\}")
# A mounted Kubernetes secret is small; anything bigger is the wrong file.
MAX_SECRET_FILE_BYTES = 64 * 1024


def _identity(loc: Loc) -> bool:
    """Where an interpolated value names the agent or a probe rather than holding a credential: these show
    as labels and in logs by design (`agent.region: ${REGION}`), so they are not registered as secrets."""
    return bool(loc) and (loc[0] == "agent" or loc[-1] == "name")


_URL_FIELDS = frozenset({"url", "host", "hosts", "control", "prometheus", "alertmanager", "proxy_url"})
_PLAIN_BASE_URL = re.compile(r"^https?://[^@/?#\s]+(/[^?#@\s]*)?$")


def _plain_base_url(loc: Loc, value: str) -> bool:
    """`url: ${API_BASE}/health`: a scheme, host and path (no userinfo, no query) in a URL field is where a
    probe looks, not a credential; showing it is the point of a status page. Userinfo and secret-looking
    query values are redacted from every URL anyway."""
    field = loc[-2] if len(loc) >= 2 and isinstance(loc[-1], int) else (loc[-1] if loc else None)
    return field in _URL_FIELDS and bool(_PLAIN_BASE_URL.match(value))


def read_secret_file(path: str, base_dir: str) -> str:
    """The content of a `${file:/path}` secret, one trailing newline dropped (`echo pw > f` adds one);
    raises ValueError with a message for the user."""
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    try:
        with open(full, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read secret file {full}: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"secret file {full} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"secret file {full} is not UTF-8 text") from None
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


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


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
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
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{line}: (yaml): invalid YAML: {problem}"]) from None
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
    """Replace ${VAR} in every string from `env` and `${file:/path}` with the file's content (a path relative
    to the config file's directory); `$${VAR}` is a literal `${VAR}`. Every value filled in is registered
    as a secret (see probes.redaction), except names and the agent's identity.

    A variable that `keep(loc, name)` claims is left for later (a scripted probe's extracted value);
    any other unset variable is an error, returned as a message.
    """
    environ = os.environ if env is None else env
    errors: list[str] = []
    base_dir = os.path.dirname(os.path.abspath(doc.path))

    def substitute(value: str, loc: Loc) -> str:
        def one(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if keep(loc, name):
                return match.group(0)
            if name.startswith("file:"):
                try:
                    value = read_secret_file(name[len("file:"):].strip(), base_dir)
                except ValueError as exc:
                    errors.append(doc.error(loc, str(exc)))
                    return ""
            elif name in environ:
                value = environ[name]
            else:
                errors.append(doc.error(loc, f"environment variable {name} is not set"))
                return ""
            if not _identity(loc) and not _plain_base_url(loc, value):
                register_secret(value)
            return value

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


def _describe(value: Any) -> str:
    """A YAML value as its author would name it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 40 else "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# pydantic's wording names Python types and classes ("instance of Expect"); say it in YAML's words.
_FRIENDLY = {
    "model_type": "should be a mapping (key: value)",
    "dict_type": "should be a mapping (key: value)",
    "model_attributes_type": "should be a mapping (key: value)",
    "list_type": "should be a list, e.g. [a, b]",
    "string_type": "should be a text",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
}


def _friendly(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _FRIENDLY:
        wording = _FRIENDLY[kind]
        return f"{wording}, not {_describe(err.get('input'))}"
    if msg.startswith("Value error, "):
        return str(msg[len("Value error, "):])
    if msg.startswith("Input should be "):
        return f"should be {msg[len('Input should be '):]}, not {_describe(err.get('input'))}"
    return str(msg)


_LINE = re.compile(r"^(?P<file>.*?):(?P<line>\d+): ")


def by_line(messages: list[str]) -> list[str]:
    """`FILE:LINE: ...` messages in file order, as an editor lists them (stable for one line)."""
    def key(message: str) -> tuple[str, int]:
        match = _LINE.match(message)
        return (match["file"], int(match["line"])) if match else ("", 0)

    return sorted(messages, key=key)


def validation_messages(doc: Document, exc: ValidationError, prefix: Loc = ()) -> list[str]:
    messages = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(doc.data, (*prefix, *err["loc"]))
        messages.append(doc.error(loc, _friendly(err)))
    return by_line(messages)


def validate(doc: Document, model: type[M], context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise ConfigError(validation_messages(doc, exc)) from None

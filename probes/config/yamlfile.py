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


# Bounds on what a file may make the loader build. A real agent.yaml nests a dozen levels, and its aliases
# (merge keys for shared settings) expand it a few times over; an alias bomb of a few hundred bytes
# expands to billions of values. A file may expand to MAX_NODES values, or to EXPANSION times the values
# it writes out, whichever is more (10,000 probes without aliases are a few hundred thousand values).
MAX_DEPTH = 64
MAX_NODES = 200_000
EXPANSION = 20

# libyaml parses and composes several times faster than pure Python, which matters at 10,000 probes.
_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
# Timestamps stay the text the user wrote: no field wants a datetime, and a JSON body must serialise.
_AS_TEXT = {_STR, "tag:yaml.org,2002:timestamp"}
_SCALARS = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float"}


class _Invalid(Exception):
    def __init__(self, where: Any, message: str) -> None:
        """`where`: a node, a mark, or None (line 1)."""
        super().__init__(message)
        mark = where.start_mark if isinstance(where, yaml.Node) else where
        self.line = mark.line + 1 if mark is not None else 1
        self.message = message


def _check_depth(text: str) -> int:
    """The number of values written in `text` (aliases not expanded); refuses deep nesting first.
    The event parser is iterative; the composer and everything after it recurse once per level."""
    depth = 0
    written = 0
    for event in yaml.parse(text, Loader=_PARSER):
        if isinstance(event, yaml.CollectionStartEvent):
            written += 1
            depth += 1
            if depth > MAX_DEPTH:
                raise _Invalid(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            written += 1
    return written


def _expanded_size(root: yaml.Node, limit: int) -> None:
    """Count the nodes the document has once every alias is expanded, without expanding them: an alias
    bomb or a self-referencing alias is refused before a single object is built."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise _Invalid(node, "an alias refers to a node that contains it (infinite recursion)")
        if depth > MAX_DEPTH:
            raise _Invalid(node, f"aliases nest more than {MAX_DEPTH} levels deep")
        visiting.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node, depth + 1) + size(value_node, depth + 1)
                if total > limit:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
                if total > limit:
                    break
        visiting.discard(key)
        if total > limit:
            raise _Invalid(node, f"aliases expand the document to more than {limit} values "
                                 "(an 'alias bomb'?)")
        sizes[key] = total
        return total

    size(root, 0)


class _Builder:
    """Python data from a composed node tree, with the line of every key and item on the way.

    Only plain YAML is built: mappings with scalar keys (merge keys `<<` included), sequences, strings,
    numbers, booleans and null. Anything else (unknown or Python tags, complex keys, a scalar its tag
    cannot hold) is an error at its line, never an exception from deep inside PyYAML.
    """

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise _Invalid(node, f"unsupported tag {node.tag!r} on a mapping")
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _Invalid(node, f"unsupported tag {node.tag!r} on a sequence")
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*loc, index)))
            return items
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag in _AS_TEXT:
            return str(node.value)
        if node.tag not in _SCALARS:
            raise _Invalid(node, f"unsupported tag {node.tag!r}")
        try:
            return self._scalars.construct_object(node, deep=True)
        except Exception:
            kind = node.tag.rsplit(":", 1)[-1]
            raise _Invalid(node, f"{node.value!r} is not a valid {kind}") from None

    def _key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _Invalid(node, "a mapping key must be a plain value, not a list or a mapping")
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        own: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = {**self._merge_sources(value_node, loc), **merged}
                continue
            key = self._key(key_node)
            if key in own:
                raise _Invalid(key_node, f"duplicate key {key!r}")
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            own[key] = self.build(value_node, (*loc, key))
        return {**merged, **own}

    def _merge_sources(self, node: yaml.Node, loc: Loc) -> dict[Any, Any]:
        # `<<: *base` or `<<: [*a, *b]`; earlier sources win, keys written beside `<<` win over all.
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise _Invalid(source, "a merge key (<<) takes a mapping or a list of mappings")
            for key, value in self.build(source, loc).items():
                merged.setdefault(key, value)
        return merged


def parse(text: str, path: str) -> Document:
    try:
        written = _check_depth(text)
        node = yaml.compose(text, Loader=_PARSER)
        if node is None:
            raise _Invalid(None, "the file is empty")
        _expanded_size(node, max(MAX_NODES, EXPANSION * written))
        builder = _Builder()
        data = builder.build(node, ())
    except _Invalid as exc:
        raise ConfigError([f"{path}:{exc.line}: (yaml): {exc.message}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{line}: (yaml): invalid YAML: {problem}"]) from None
    except RecursionError:  # a last line of defence; the depth check should have caught it
        raise ConfigError([f"{path}:1: (yaml): nested too deeply"]) from None
    return Document(path, data, builder.lines)


def read(path: str | Path) -> Document:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{path}:{line}: (file): not valid UTF-8 (byte {exc.start}); "
                           "save the file as UTF-8"]) from None
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

"""From a YAML document to a validated model, in the same steps for every file the project reads:
`${VAR}` interpolation, prechecks on the raw data, strict validation, then load-time checks that need the
whole model. Every error is `FILE:LINE: field.path: message`, and all of them are reported at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel

from probes.config import yamlfile
from probes.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

Precheck = Callable[[yamlfile.Document], list[str]]


def load_model(doc: yamlfile.Document, model: type[M], *, env: Mapping[str, str] | None = None,
               keep: Callable[[yamlfile.Loc, str], bool] = lambda loc, name: False,
               prechecks: Sequence[Precheck] = (),
               checks: Sequence[Callable[[M, yamlfile.Document], list[str]]] = ()) -> M:
    errors = yamlfile.interpolate(doc, env, keep=keep)
    for precheck in prechecks:
        errors += precheck(doc)
    if errors:
        raise ConfigError(yamlfile.by_line(errors))
    config = yamlfile.validate(doc, model)
    errors = [message for check in checks for message in check(config, doc)]
    if errors:
        raise ConfigError(yamlfile.by_line(errors))
    return config

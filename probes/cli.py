"""`probe-agent` command line: parse, call one module, turn the outcome into an exit code."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from probes import __version__
from probes.errors import CannotRun, ConfigError, UsageError
from probes.redaction import redact_text

DESCRIPTION = ("Synthetic monitoring, CI load stages and alert-rule fire drills for HTTP search APIs. "
               "Exit codes: 0 success, 1 a check failed, 2 invalid invocation or config, 3 could not run.")

# Feature packages add their own subcommands through `add_parser(subparsers)`; each such module
# must stay cheap to import (no locust, no elasticsearch at import time).
COMMAND_MODULES = (
    "probes.agent.command",
    "probes.demo.command",
    "probes.faults.command",
    "probes.load.command",
    "probes.drills.command",
    "probes.consistency.command",
    "probes.slo.command",
    "probes.blackbox.command",
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="probe-agent", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"probe-agent {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except ConfigError as exc:
        # Already `FILE:LINE: field.path: message`, one per line, the form editors jump to. Redacted: a
        # message may quote the value it rejects (a URL with a password in it).
        print(redact_text(str(exc)), file=sys.stderr)
        return exc.exit_code
    except UsageError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except CannotRun as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`probe-agent once | head`): not an error worth a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown flushes stdout once more
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

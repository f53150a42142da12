"""Flags shared by the commands that run a server; cheap to import (the CLI builds every parser)."""

from __future__ import annotations

from typing import Any

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def add_log_arguments(parser: Any, *, default_level: str = "info") -> None:
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="text (default) or json: one JSON object a line")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default_level,
                        help=f"default {default_level}")


def add_web_config_argument(parser: Any) -> None:
    parser.add_argument(
        "--web.config.file", dest="web_config_file", metavar="FILE",
        help="TLS and basic auth for this server, in the exporter-toolkit format (tls_server_config, "
             "basic_auth_users with bcrypt hashes)")

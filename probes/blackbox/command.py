"""`probe-agent import-blackbox` and `run --blackbox-config` (the drop-in /probe endpoint)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    imp = subparsers.add_parser(
        "import-blackbox", help="print agent.yaml probes equivalent to blackbox_exporter http modules",
        description="Convert blackbox_exporter http modules, each with the targets it probes, into agent.yaml "
                    "probes (printed on stdout). Modules of other probers (tcp, icmp, dns, grpc) are an error.")
    imp.add_argument("file", metavar="BLACKBOX_YML")
    imp.add_argument("--target", action="append", required=True, metavar="MODULE=URL",
                     help="a module and a target it probes (repeatable), e.g. http_2xx=https://example.org")
    imp.set_defaults(handler=_import)
    run = subparsers.choices.get("run")
    if run is not None:
        run.add_argument("--blackbox-config", metavar="FILE",
                         help="also serve blackbox_exporter's /probe?module=&target= for the http modules of FILE")
        run.set_defaults(web_plugins=[*(run.get_default("web_plugins") or []), _endpoint])


def _endpoint(args: argparse.Namespace) -> Any:
    if not getattr(args, "blackbox_config", None):
        return None
    from probes.blackbox.config import load_blackbox
    from probes.blackbox.dropin import BlackboxEndpoint

    return BlackboxEndpoint(load_blackbox(args.blackbox_config))


def _import(args: argparse.Namespace) -> int:
    import yaml

    from probes.blackbox.config import load_blackbox
    from probes.blackbox.convert import module_to_probe, probe_name
    from probes.errors import UsageError
    from probes.probers.http import HttpProbeConfig

    config = load_blackbox(args.file)
    probes: list[dict[str, Any]] = []
    names: set[str] = set()
    for spec in args.target:
        module_name, sep, target = spec.partition("=")
        if not sep or not target:
            raise UsageError(f"--target {spec!r}: use MODULE=URL")
        module = config.modules.get(module_name)
        if module is None:
            known = ", ".join(sorted(config.modules)) or "none"
            raise UsageError(f"--target {spec!r}: no module {module_name!r} in {args.file} (modules: {known})")
        name = base = probe_name(module_name, target)
        suffix = 2
        while name in names:
            name, suffix = f"{base}-{suffix}", suffix + 1
        names.add(name)
        try:
            probe = module_to_probe(name, module, target)
            HttpProbeConfig.model_validate(probe)
        except ValueError as exc:
            raise UsageError(f"module {module_name}: {exc}") from None
        probes.append(probe)
    print(f"# agent.yaml probes from {args.file}, made by probe-agent import-blackbox")
    print(yaml.safe_dump({"probes": probes}, sort_keys=False, allow_unicode=True, default_flow_style=None), end="")
    return 0

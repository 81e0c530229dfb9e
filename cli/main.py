"""``cloudops`` entry point: a small argparse dispatcher; each subcommand lives in its module.

A subcommand module exposes ``add_parser(subparsers)`` which registers its parser and sets
``handler=<callable(args) -> int>`` as a default. Add new ones to ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: list[str] = ["cli.local", "cli.operations", "cli.queries"]
USAGE_ERROR = 3  # argparse exits 2 on bad usage; the API commands document 3


def build_parser() -> argparse.ArgumentParser:
    from cli.client import cli_version

    parser = argparse.ArgumentParser(prog="cloudops", description="CloudOps control plane")
    parser.add_argument("--version", action="version", version=f"cloudops {cli_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return USAGE_ERROR if exc.code == 2 else int(exc.code or 0)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return USAGE_ERROR
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

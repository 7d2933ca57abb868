"""``policyd`` command line: one module per subcommand, this file only dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from policyd import __version__
from policyd.cli.common import configure_logging
from policyd.errors import PolicydError
from policyd.lifecycle import collector_paused

COMMANDS = ("serve", "check", "explain", "plugins", "cache", "health", "stats", "eval", "router", "hash_token")
"""Subcommand modules under ``policyd.cli``; each has ``add_parser`` and ``run``."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand module ``argv`` names (``hash-token`` → ``hash_token``), or None when it names none
    or asks for the top-level help or version: then every subcommand's parser is built."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--log-level":
            next(tokens, None)
        elif token.startswith("-") and not token.startswith("--log-level="):
            return None  # -h, --help, --version or a typo: the full parser answers
        elif not token.startswith("-"):
            name = token.replace("-", "_")
            return name if name in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``policyd`` parser; with ``only``, just that subcommand's (its module alone is imported, so
    ``policyd serve`` never loads what ``eval`` or ``router`` need: docs/deploy.md, "Start-up")."""
    parser = argparse.ArgumentParser(prog="policyd", description="LLM routing policy engine.")
    parser.add_argument("--version", action="version", version=f"policyd {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"{', '.join(LOG_LEVELS)} (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        import_module(f"policyd.cli.{name}_cmd").add_parser(sub)
    return parser


def command_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """:func:`build_parser` for what ``argv`` names, the garbage collector paused while the command's
    modules are imported (``serve``: ~500 of them; see :func:`policyd.lifecycle.collector_paused`)."""
    with collector_paused():
        return build_parser(chosen_command(argv))


def describe_os_error(exc: OSError) -> str:
    """``/etc/passwd/x: Not a directory`` rather than ``[Errno 20] Not a directory: '/etc/passwd/x'``."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = command_parser(argv).parse_args(argv)
    if not getattr(args, "configures_logging", False):  # serve: when its workers have started
        configure_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except PolicydError as exc:
        print(f"policyd: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file, directory or address the command was given
        import logging

        logging.getLogger("policyd.cli").debug("OS error", exc_info=True)
        print(f"policyd: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Options and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path


def configure_logging(level: str) -> None:
    """Log to stderr from ``level`` (``INFO``...) up. ``policyd serve`` calls it itself: a group's supervisor
    only once its workers have started, so that ``logging`` is not among what it imports before them."""
    import logging

    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("POLICYD_CONFIG"),
        help="policy file (YAML); default $POLICYD_CONFIG, else the bundled offline default",
    )


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="cache and ledger directory (default $POLICYD_DATA_DIR, else ~/.local/state/policyd)",
    )


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum`` (``--concurrency 0`` would hang)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        return value

    return parse

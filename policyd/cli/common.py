"""Options and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path


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

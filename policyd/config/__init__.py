"""Policy file → typed, immutable Config."""

from __future__ import annotations

from policyd.config.loader import load, load_default, load_file, load_text
from policyd.config.model import Config, Plan, Policy, Rule

__all__ = ["Config", "Plan", "Policy", "Rule", "load", "load_default", "load_file", "load_text"]

"""``make bench``'s front-door figures: policyd's OpenAI HTTP door against direct calls and LiteLLM's proxy.

Runs ``bench/openai_vs_litellm.py`` (its own processes, pinned like the rest) with this run's
duration and reads the legs' figures back: the door's added p50 at concurrency 1, its CPU per
request, and, when LiteLLM's harness is installed (``.venv-litellm`` at the repository root,
or ``--litellm PATH``), the per-core CPU ratio against LiteLLM's proxy. Without LiteLLM those
rows say how to install it instead of failing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.figures import Row  # noqa: E402

LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
INSTALL = "python -m venv .venv-litellm && .venv-litellm/bin/pip install 'litellm[proxy]'"
TARGETS = {"added_p50_ms": 1.0, "cpu_ratio": 20.0}
"""The door adds at most 1 ms p50; LiteLLM's proxy spends at least 20x policyd's CPU per request."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--litellm", default=str(LITELLM), help="the litellm CLI of LiteLLM's harness (front-door rows)")
    p.add_argument("--c1-requests", type=int, default=300, help="front door: requests one at a time, per figure")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="policyd-frontdoor-") as tmp:
        out = Path(tmp) / "legs.json"
        cmd = [sys.executable, str(ROOT / "bench" / "openai_vs_litellm.py"), "--litellm", args.litellm]
        cmd += ["--duration", str(args.duration), "--c1-requests", str(args.c1_requests), "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["exited with " + str(proc.returncode)])[-1]}
        print(proc.stdout.rstrip())
        legs = json.loads(out.read_text())
    return {"legs": legs, "litellm": args.litellm if Path(args.litellm).exists() else ""}


def rows(results: dict[str, Any]) -> list[Row]:
    """Front-door added p50, policyd's CPU per request, and the per-core ratio against LiteLLM."""
    legs = results.get("legs", {})
    why = f"front-door bench failed: {results['error']}" if "error" in results else ""
    door = legs.get("policyd")
    added = door["p50_ms"] - door["base_p50_ms"] if door else None
    out = [Row("front door added p50, c=1", added, TARGETS["added_p50_ms"], "ms", "<=", why)]
    lite = legs.get("litellm")
    if door and lite and door.get("cpu_us") and lite.get("cpu_us"):
        ratio: float | None = lite["cpu_us"] / door["cpu_us"]
        note = f"policyd {door['cpu_us']:.0f} us, LiteLLM {lite['cpu_us']:.0f} us of CPU per request"
    else:
        ratio, note = None, why or f"not installed: {INSTALL}"
    out.append(Row("LiteLLM CPU per request / policyd's (per core)", ratio, TARGETS["cpu_ratio"], "x", ">=", note))
    return out

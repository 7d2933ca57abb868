"""The command line: check, explain, plugins and serve (as a real process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from policyd.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_prints_a_summary(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "<bundled default>: OK" in out
    assert "policy default (default)" in out


def test_check_reports_errors_with_key_path(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  p:\n    rules:\n      - name: r\n        plan: {strategy: singel}\n")
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: policies.p.rules[0].plan.strategy: unknown strategy 'singel'" in err
    assert "did you mean 'single'?" in err


def test_explain_shows_plan_and_cost_without_calling(capsys):
    assert main(["explain", "--prompt", "sort a list", "--task", "coding", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rule"] and data["strategy"]
    assert data["estimatedCost"]["worstUsd"] >= data["estimatedCost"]["bestUsd"] > 0


def test_explain_rejects_bad_request_json(tmp_path, capsys):
    req = tmp_path / "req.json"
    req.write_text('{"messages": [{"role": "ROLE_USER", "content": "hi"}], "params": {"maxOutputTokens": -3}}')
    assert main(["explain", "--request", str(req)]) == 2
    assert "params.max_output_tokens: must be positive (got -3)" in capsys.readouterr().err


def test_plugins_lists_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "policyd_simulated" in out and "provider:simulated" in out
    assert "policyd_strategies" in out and "strategy:single" in out


def test_serve_runs_the_offline_default_and_the_example_calls_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "POLICYD_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyd", "serve", "--listen", "127.0.0.1:0", "--grace", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("policyd listening on 127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        port = line.split()[3].rsplit(":", 1)[1]
        example = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "complete.py"),
                "Write a binary search",
                "--task",
                "coding",
                "--target",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert example.returncode == 0, example.stderr
        assert "simulated" in example.stdout
        assert "total $" in example.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

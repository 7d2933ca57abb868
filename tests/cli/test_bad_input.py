"""Bad flags and files: each subcommand answers with one clear error line and exit code 2, never a traceback."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc.aio
import pytest

from policyd.cli.main import main
from policyd.server import listen
from tests.eval.synthetic import write

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stderr) of the CLI in process; argparse's own errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_unknown_log_level_is_refused(capsys):
    code, err = run(["--log-level", "loud", "plugins"], capsys)
    assert code == 2
    assert "argument --log-level: invalid choice: 'LOUD'" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.json", "--request: cannot read {path}: No such file or directory"),
        (lambda d: d, "--request: cannot read {path}: Is a directory"),
        (
            lambda d: _write(d / "list.json", "[1, 2]"),
            "--request: expected a JSON object (a CompleteRequest)",
        ),
        (lambda d: _write(d / "bad.json", "{bad"), "--request: not valid JSON: Expecting property name"),
        (lambda d: _write(d / "unknown.json", '{"bogus": 1}'), 'has no field named "bogus"'),
    ],
)
def test_explain_names_a_bad_request_file(tmp_path, capsys, make, message):
    path = make(tmp_path)
    code, err = run(["explain", "--request", str(path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message.format(path=path) in err


def test_explain_refuses_an_output_allowance_protobuf_cannot_hold(capsys):
    code, err = run(["explain", "--prompt", "x", "--max-output-tokens", "99999999999"], capsys)
    assert code == 2
    assert "argument --max-output-tokens: 99999999999 is out of range (at most 2147483647)" in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--concurrency", "0", "argument --concurrency: must be at least 1 (got 0)"),  # it used to hang
        ("--limit", "-3", "argument --limit: must be at least 1 (got -3)"),  # it used to drop the last 3
        ("--folds", "1", "argument --folds: must be at least 2 (got 1)"),
        ("--folds", "two", "argument --folds: expected an integer, got 'two'"),
    ],
)
def test_eval_refuses_counts_out_of_range(tmp_path, capsys, flag, value, message):
    data = write(tmp_path / "r.jsonl", n_train=3, n_test=3)
    code, err = run(["eval", "--dataset", f"jsonl:{data}", "--no-plot", "--no-progress", flag, value], capsys)
    assert code == 2
    assert message in err


def test_eval_refuses_an_output_folder_it_cannot_create_before_running(tmp_path, capsys):
    data = write(tmp_path / "r.jsonl", n_train=3, n_test=3)
    blocker = _write(tmp_path / "file", "")
    code, err = run(["eval", "--dataset", f"jsonl:{data}", "--no-progress", "--out", str(blocker / "out")], capsys)
    assert code == 2
    assert err == f"policyd: error: --out: cannot create {blocker / 'out'}: Not a directory\n"


def test_hash_token_refuses_bytes_that_are_not_text(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfetoken\n"), errors="surrogateescape"))
    code, err = run(["hash-token"], capsys)
    assert code == 2
    assert err == "policyd: error: stdin: the token is not UTF-8 text\n"


@pytest.mark.parametrize("value", ["-1", "0", "nan"])
def test_health_refuses_a_timeout_that_cannot_succeed(capsys, value):
    code, err = run(["health", f"--timeout={value}"], capsys)
    assert code == 2
    assert f"argument --timeout: must be a positive number of seconds (got {value})" in err


def test_check_says_an_empty_file_is_empty(tmp_path, capsys):
    code, err = run(["check", str(_write(tmp_path / "empty.yaml", ""))], capsys)
    assert code == 2
    assert err.startswith(f"policyd: error: {tmp_path / 'empty.yaml'}: the file is empty")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:99999", "'127.0.0.1:99999': expected HOST:PORT with a port from 0 to 65535"),  # grpc wrapped it
        ("localhost", "'localhost': expected HOST:PORT"),
        ("unix:", "'unix:': expected unix:///path/to.sock"),
    ],
)
def test_serve_refuses_a_listen_address_grpc_would_misread(tmp_path, capsys, address, message):
    code, err = run(["serve", "--listen", address, "--data-dir", str(tmp_path)], capsys)
    assert code == 2
    assert err.startswith(f"policyd: error: --listen: {message}")
    assert err.count("\n") == 1


async def test_a_port_another_server_holds_is_refused_not_shared():
    """grpc sets SO_REUSEPORT by default: a second daemon on a busy port used to bind and take half the calls."""
    other = grpc.aio.server()  # default options, as a daemon before this fix (or any grpc server) has them
    port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        ours = grpc.aio.server(options=listen.SERVER_OPTIONS)
        with pytest.raises(OSError, match=rf"cannot listen on 127.0.0.1:{port}: the address is in use"):
            listen.bind(ours, f"127.0.0.1:{port}", None, "test.yaml")
    finally:
        await other.stop(None)


def test_serve_on_a_busy_port_exits_2_with_one_line(tmp_path):
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "GRPC_VERBOSITY": "NONE"}
    argv = [sys.executable, "-m", "policyd", "--log-level", "ERROR", "serve", "--data-dir", str(tmp_path)]
    with holder:
        proc = subprocess.run(
            [*argv, "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=60
        )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"policyd: error: cannot listen on 127.0.0.1:{port}: the address is in use" in proc.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path

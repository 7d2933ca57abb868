"""`policyd serve --http-listen` as a container runs it, and the README's curl examples against it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.daemon_process import ENV, ROOT, free_port, run, start, stop

README = ROOT / "README.md"
EMBEDDINGS_DOC = ROOT / "docs" / "embeddings.md"
CURL_BLOCK = re.compile(r"^```sh\n(curl .*?)^```", re.S | re.M)
README_PORT = "127.0.0.1:8080"


def readme_curls() -> list[str]:
    return CURL_BLOCK.findall(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled default policy (simulated models), gRPC and HTTP on free loopback ports."""
    data = tmp_path_factory.mktemp("data")
    http = f"127.0.0.1:{free_port()}"
    env = {**ENV, "POLICYD_DATA_DIR": str(data)}
    proc, _ = start(["policyd", "serve", "--listen", f"127.0.0.1:{free_port()}", "--http-listen", http], env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"OpenAI-compatible HTTP on {http}" in line, line
        yield http
    finally:
        assert stop(proc) == 0


def test_readme_has_curl_examples():
    assert len(readme_curls()) >= 3


@pytest.mark.parametrize("index", range(3))
def test_readme_curl_example_runs(daemon: str, index: int):
    command = readme_curls()[index].replace(README_PORT, daemon)
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    if '"stream": true' in command:
        events = [line.removeprefix("data: ") for line in out.stdout.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert chunks[-1]["usage"]["total_tokens"] > 0
    elif "/v1/models" in command:
        ids = [m["id"] for m in json.loads(out.stdout)["data"]]
        assert "policyd/default" in ids and "claude-sonnet-4" in ids
    else:
        body = json.loads(out.stdout)
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
        assert body["policyd"]["explanation"]["rule"] == "coding-volume"


def test_embeddings_doc_curl_example_runs(daemon: str):
    (command,) = CURL_BLOCK.findall(EMBEDDINGS_DOC.read_text(encoding="utf-8"))
    out = subprocess.run(
        ["bash", "-c", command.replace(README_PORT, daemon)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr + out.stdout
    body = json.loads(out.stdout)
    assert body["object"] == "list" and body["model"] == "nomic-embed-text-v1.5"
    assert [(e["index"], len(e["embedding"])) for e in body["data"]] == [(0, 256), (1, 256)]
    assert body["usage"]["prompt_tokens"] > 0 and body["policyd"]["explanation"]["rule"] == "embeddings"


def test_http_listen_key_in_the_policy_file(tmp_path: Path):
    http = f"127.0.0.1:{free_port()}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""
http_listen: "{http}"
providers:
  simulated: {{kind: simulated, latency_scale: 0.0}}
policies:
  default:
    rules:
      - name: any
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
""",
        encoding="utf-8",
    )
    env = {**ENV, "POLICYD_DATA_DIR": str(tmp_path / "data")}
    proc, _ = start(["policyd", "serve", "--config", str(policy), "--listen", f"127.0.0.1:{free_port()}"], env)
    try:
        client = openai.OpenAI(base_url=f"http://{http}/v1", api_key="unused", max_retries=0)
        resp = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
        assert resp.model == "gpt-oss-120b"
    finally:
        assert stop(proc) == 0


def test_bad_http_listen_names_the_flag(tmp_path: Path):
    env = {**ENV, "POLICYD_DATA_DIR": str(tmp_path / "data")}
    out = run(["policyd", "serve", "--http-listen", "localhost"], env)
    assert out.returncode != 0
    assert "--http-listen" in out.stderr and "expected HOST:PORT" in out.stderr

"""Which HTTP server the OpenAI front door runs on, chosen by measurement (``docs/openai.md``).

Each candidate serves the same minimal route: ``POST /v1/chat/completions`` parses a
chat-completions JSON body with orjson and answers a fixed ``chat.completion``, no
framework layers beyond what the server itself brings. Each runs as its own process
pinned to core 0 (``taskset``), the closed-loop load (``bench/loadgen.py``) on core 1;
the figure that decides is the server's CPU per request (user + system, from /proc),
which the load generator's own speed does not bound. Candidates whose package is not
installed are skipped (``pip install uvicorn httptools granian``).

    python bench/http_servers.py --duration 5 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.run import LOAD_CPU, SERVER_CPU  # noqa: E402

ANSWER = json.dumps(
    {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
).encode()
CANDIDATES = {
    "aiohttp-lowlevel": "aiohttp",
    "aiohttp-app": "aiohttp",
    "policyd-lean": "aiohttp",
    "uvicorn-asgi": "uvicorn",
    "granian-rsgi": "granian",
    "granian-asgi": "granian",
}


# ---------------------------------------------------------------- the servers


def _answer(body: bytes) -> bytes:
    import orjson

    parsed = orjson.loads(body)
    return ANSWER if parsed.get("messages") else b"{}"


async def _aiohttp(port: int, low_level: bool) -> None:
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.Response:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return web.Response(status=404)
        return web.Response(body=_answer(await request.read()), content_type="application/json")

    if low_level:
        runner: web.BaseRunner = web.ServerRunner(web.Server(handle, access_log=None))
    else:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def _lean(port: int) -> None:
    """The front door's lean path (``policyd/server/openai/fast.py``) in front of aiohttp, with this route."""
    from aiohttp import web

    from policyd.config.security import LimitsConfig
    from policyd.server.openai.fast import DoorServer, RawRequest
    from policyd.server.openai.sse import StreamOut

    class Door:
        def limits(self) -> LimitsConfig:
            return LimitsConfig()

        def at_limit(self) -> bool:
            return False

        async def chat_fast(self, request: RawRequest, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
            return 200, {}, ANSWER if body.get("messages") else b"{}"

        async def chat_stream_fast(self, request: RawRequest, body: dict[str, Any], out: StreamOut) -> bytes:
            out.open("bench")  # the answer as one event, then the end of the stream
            out.write(b"data: " + ANSWER + b"\n\n")
            return b"data: [DONE]\n\n"

        async def handle(self, request: web.BaseRequest) -> web.Response:
            return web.Response(body=_answer(await request.read()), content_type="application/json")

    runner = web.ServerRunner(DoorServer(Door(), access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app: no framework."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = _answer(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


class RsgiApp:
    """A raw RSGI app (granian's own interface)."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        body = await protocol()
        protocol.response_bytes(200, [("content-type", "application/json")], _answer(body))


rsgi_app = RsgiApp()


def serve(kind: str, port: int) -> None:
    if kind == "policyd-lean":
        import uvloop

        uvloop.run(_lean(port))
    elif kind.startswith("aiohttp"):
        import uvloop

        uvloop.run(_aiohttp(port, kind == "aiohttp-lowlevel"))
    elif kind == "uvicorn-asgi":
        import uvicorn

        print("ready", flush=True)
        uvicorn.run(asgi_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                    access_log=False, lifespan="off")  # fmt: skip
    elif kind.startswith("granian"):
        from granian import Granian

        interface = "rsgi" if kind == "granian-rsgi" else "asgi"
        target = "bench.http_servers:rsgi_app" if interface == "rsgi" else "bench.http_servers:asgi_app"
        print("ready", flush=True)
        Granian(target, address="127.0.0.1", port=port, interface=interface, workers=1,
                runtime_threads=1, log_enabled=False).serve()  # fmt: skip


# ---------------------------------------------------------------- the measurement


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children still running (granian forks a worker)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(kind: str, duration: float, concurrency: int) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    argv = [*SERVER_CPU, sys.executable, __file__, "--serve", kind, "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load = [*LOAD_CPU, sys.executable, str(ROOT / "bench" / "loadgen.py"), "--target", url]
        load += ["--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "200"]
        before = cpu_s(proc.pid)
        out = subprocess.run(load, env=env, capture_output=True, text=True, check=True)
        used = cpu_s(proc.pid) - before
        result = json.loads(out.stdout)
        n = result["count"] + 200
        return {"server": kind, "rps": result["rps"], "p50_ms": result["p50_ms"], "cpu_us_per_req": used / n * 1e6}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--serve", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--only", default="", help="comma-separated candidates")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the table shows each one's median")
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    wanted = [k for k in CANDIDATES if not args.only or k in args.only.split(",")]
    for kind in [k for k in wanted if importlib.util.find_spec(CANDIDATES[k]) is None]:
        print(f"{kind:18} skipped: {CANDIDATES[kind]} is not installed")
        wanted.remove(kind)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in wanted}
    for r in range(args.rounds):
        for kind in wanted:
            runs[kind].append(measure(kind, args.duration, args.concurrency))
            if args.rounds > 1:
                print(f"round {r + 1} {kind:18} {runs[kind][-1]['cpu_us_per_req']:6.0f} us/req", flush=True)
    print(f"{'server':18} {'req/s':>8} {'p50 ms':>8} {'CPU us/req':>11}")
    for kind, got in runs.items():
        rps, p50, cpu = (statistics.median(x[k] for x in got) for k in ("rps", "p50_ms", "cpu_us_per_req"))
        print(f"{kind:18} {rps:8.0f} {p50:8.2f} {cpu:11.0f}", flush=True)


if __name__ == "__main__":
    main()

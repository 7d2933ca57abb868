"""A fake embedding upstream on 127.0.0.1:0 speaking OpenAI's and Gemini's embedding wire formats.

It answers ``POST /v1/embeddings`` (float or base64 vectors, ``usage.prompt_tokens``)
and ``POST /v1beta/models/{model}:embedContent`` / ``:batchEmbedContents`` like the real
APIs, enforcing their batch limits (2048 inputs; 100 requests) with a 400 as they do.
Each vector is a deterministic function of the model and the text. Tests script failures
by request number (``fail``) and read what every request carried (``seen``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

OPENAI_LIMIT = 2048
GEMINI_LIMIT = 100


def fake_vector(model: str, text: str, dims: int) -> list[float]:
    raw = hashlib.sha256(f"{model}\x1f{text}".encode()).digest()
    values = [((raw[i % 32] + i) % 17) - 8.0 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


@dataclass
class Request:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class EmbeddingUpstream:
    dims: int = 8
    fail: dict[int, tuple[int, str]] = field(default_factory=dict)
    """Request number (1-based) → (HTTP status, error message) to answer instead."""
    fail_from: int | None = None
    """Every request from this number on fails with 503."""
    delay_s: float = 0.0
    """Service time of every answer."""
    seen: list[Request] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def batch_sizes(self, kind: str) -> list[int]:
        out = []
        for r in self.seen:
            if kind == "openai" and r.path.endswith("/embeddings"):
                out.append(len(r.body["input"]))
            elif kind == "gemini" and r.path.endswith(":batchEmbedContents"):
                out.append(len(r.body["requests"]))
            elif kind == "gemini" and r.path.endswith(":embedContent"):
                out.append(1)
        return out

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._openai)
        app.router.add_post("/v1beta/models/{call}", self._gemini)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _failure_after_delay(self) -> web.Response | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._failure()

    def _failure(self) -> web.Response | None:
        n = len(self.seen)
        if self.fail_from is not None and n >= self.fail_from:
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        if n in self.fail:
            status, message = self.fail[n]
            return web.json_response({"error": {"message": message}}, status=status)
        return None

    async def _openai(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(Request(request.path, body, {k.lower(): v for k, v in request.headers.items()}))
        failed = await self._failure_after_delay()
        if failed is not None:
            return failed
        texts = body["input"]
        if len(texts) > OPENAI_LIMIT:
            return web.json_response({"error": {"message": f"at most {OPENAI_LIMIT} inputs"}}, status=400)
        dims = body.get("dimensions", self.dims)
        data = []
        for i, text in enumerate(texts):
            vec = fake_vector(body["model"], text, dims)
            if body.get("encoding_format") == "base64":
                emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        data.reverse()  # the API may answer out of order: clients sort by index
        tokens = sum(len(t.split()) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _gemini(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(Request(request.path, body, {k.lower(): v for k, v in request.headers.items()}))
        failed = await self._failure_after_delay()
        if failed is not None:
            return failed
        model, _, method = request.match_info["call"].partition(":")
        if method == "embedContent":
            req = body
            dims = req.get("outputDimensionality", self.dims)
            return web.json_response(
                {"embedding": {"values": fake_vector(model, req["content"]["parts"][0]["text"], dims)}}
            )
        if method != "batchEmbedContents":
            return web.json_response({"error": {"message": f"unknown method {method}"}}, status=404)
        reqs = body["requests"]
        if len(reqs) > GEMINI_LIMIT:
            return web.json_response({"error": {"message": f"at most {GEMINI_LIMIT} requests"}}, status=400)
        out = []
        for req in reqs:
            assert req["model"] == f"models/{model}"
            dims = req.get("outputDimensionality", self.dims)
            out.append({"values": fake_vector(model, req["content"]["parts"][0]["text"], dims)})
        return web.json_response({"embeddings": out})

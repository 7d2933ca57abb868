"""The OpenAI-compatible front door: aiohttp's low-level HTTP server, four routes, no framework.

A second adapter onto the same engine as the gRPC servicer (``docs/openai.md``):
HTTP → auth → domain Request (``convert``) → ``engine.complete`` → Outcome →
``chat.completion`` JSON or SSE chunks; ``/v1/embeddings`` the same way onto
``engine.embed`` (``embeddings``). Auth, limits, cache, budgets, ledger and
telemetry are the daemon's own; nothing here decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from policyd.config.security import LimitsConfig
from policyd.daemon import Daemon
from policyd.errors import InvalidArgument, ResourceExhausted
from policyd.ids import new_id
from policyd.plugin.specs import Progress
from policyd.server.auth import AuthGate
from policyd.server.convert import deadline_from
from policyd.server.openai import embeddings, response, sse
from policyd.server.openai.auth import HttpIdentity
from policyd.server.openai.convert import Target, metadata_of, request_from_body, resolve_model
from policyd.server.openai.errors import HttpError, Reply, http_error, outcome_error, reply_of
from policyd.server.openai.fast import RawRequest
from policyd.server.openai.intent import Intent, read_intent
from policyd.types import Outcome, Request

JSON = "application/json"
CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
EMBEDDINGS = "/v1/embeddings"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON, headers=headers)


def error_response(error: HttpError, request_id: str = "") -> web.Response:
    return reply_response(reply_of(error, request_id))


def reply_response(reply: Reply) -> web.Response:
    status, headers, body = reply
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


class FrontDoor:
    """The request handler aiohttp's low-level server calls for every request."""

    def __init__(self, daemon: Daemon, gate: AuthGate) -> None:
        self.daemon = daemon
        self.identity = HttpIdentity(gate, lambda: daemon.config)
        self.in_flight = 0
        self._tracer = daemon.telemetry.tracer() if daemon.telemetry.tracing else None

    def limits(self) -> LimitsConfig:
        return self.daemon.config.raw.limits

    def at_limit(self) -> bool:
        """Whether ``limits.max_concurrent_rpcs`` requests are in progress (the next is refused)."""
        limit = self.limits().max_concurrent_rpcs
        return limit is not None and self.in_flight >= limit

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        limit = self.limits().max_concurrent_rpcs
        if limit is not None and self.in_flight >= limit:
            refused = ResourceExhausted(f"{limit} requests in progress (limits.max_concurrent_rpcs)", retry_after_s=1)
            return error_response(http_error(refused))
        self.in_flight += 1
        try:
            with self._traced(request):
                return await self._route(request)
        except Exception as exc:
            return error_response(http_error(exc))
        finally:
            self.in_flight -= 1

    async def chat_fast(self, request: RawRequest, body: dict[str, Any]) -> Reply:
        """A whole-JSON chat completion on the lean path (``fast.py``): :meth:`handle` and :meth:`chat`'s steps."""
        self.in_flight += 1
        try:
            if self._tracer is None and "traceparent" not in request.headers:
                return await self._complete(self._request(request, body), str(body["model"]))
            with self._traced(request):
                return await self._complete(self._request(request, body), str(body["model"]))
        except Exception as exc:
            return reply_of(http_error(exc))
        finally:
            self.in_flight -= 1

    @contextlib.contextmanager
    def _traced(self, request: web.BaseRequest | RawRequest) -> Iterator[None]:
        """The caller's W3C trace context, and a server span when tracing is on."""
        carrier = request.headers if "traceparent" in request.headers else None
        ctx = propagate.extract(carrier) if carrier is not None else None
        if self._tracer is not None:
            name = f"{request.method} {request.path}"
            with self._tracer.start_as_current_span(name, context=ctx, kind=trace.SpanKind.SERVER):
                yield
            return
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            yield
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == CHAT:
            _method(method, "POST")
            return await self.chat(request)
        if path == EMBEDDINGS:
            _method(method, "POST")
            return await self.embed(request)
        if path == MODELS or path.startswith(MODELS + "/"):
            _method(method, "GET")
            self.identity.identify(request)
            return self.models(path[len(MODELS) + 1 :])
        raise HttpError(404, f"no route {method} {path}", "invalid_request_error", "unknown_url")

    def models(self, model_id: str) -> web.Response:
        config = self.daemon.config
        listing = response.models_list(config.catalog, config.policies)
        if not model_id:
            return json_response(listing)
        for entry in listing["data"]:
            if entry["id"] == model_id:
                return json_response(entry)
        raise HttpError(404, f"model {model_id!r} does not exist", "invalid_request_error", "model_not_found", "model")

    async def _body(self, request: web.BaseRequest) -> dict[str, Any]:
        limit = self.limits().max_receive_message_bytes
        too_big = HttpError(413, f"body over {limit} bytes (limits.max_receive_message_bytes)", "invalid_request_error")
        if request.content_length is not None and request.content_length > limit:
            raise too_big
        data = bytearray()
        async for piece in request.content.iter_any():
            data += piece
            if len(data) > limit:
                raise too_big
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument("body", f"not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise InvalidArgument("body", "must be a JSON object")
        return body

    def _caller(self, request: web.BaseRequest | RawRequest, body: dict[str, Any]) -> tuple[Intent, Target, str, float]:
        """Who asks and what for: the intent, the policy (or direct model), the tenant and the deadline."""
        ident = self.identity.identify(request)
        config = self.daemon.config
        intent = read_intent(request.headers, metadata_of(body))
        target = resolve_model(config, body.get("model"), intent)
        defaults = config.defaults
        tenant = self.identity.tenant(ident, target.policy, intent.tenant)
        return intent, target, tenant, deadline_from(intent.deadline_s, defaults.deadline_ms, defaults.max_deadline_ms)

    def _request(self, request: web.BaseRequest | RawRequest, body: dict[str, Any]) -> Request:
        intent, target, tenant, deadline = self._caller(request, body)
        request_id = intent.request_id or new_id()
        return request_from_body(
            body, intent, target, limits=self.limits(), request_id=request_id, tenant=tenant, deadline=deadline
        )

    async def embed(self, request: web.BaseRequest) -> web.Response:
        body = await self._body(request)
        intent, target, tenant, deadline = self._caller(request, body)
        request_id = intent.request_id or new_id()
        domain = embeddings.embed_request_from_body(
            body, intent, target, request_id=request_id, tenant=tenant, deadline=deadline
        )
        try:
            result = await self.daemon.engine.embed(domain)
        except Exception as exc:
            return error_response(http_error(exc), request_id)
        if not result.vectors:
            error = outcome_error(result.outcome) or http_error(RuntimeError("no vectors"))
            return error_response(error, request_id)
        payload = embeddings.embeddings_list(result, str(body["model"]), embeddings.encoding_of(body))
        return json_response(payload, headers=response.headers(result.outcome))

    async def chat(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await self._body(request)
        domain = self._request(request, body)
        asked = str(body["model"])
        if body.get("stream"):
            return await self._stream(request, domain, asked, _include_usage(body))
        return reply_response(await self._complete(domain, asked))

    async def chat_stream_fast(self, request: RawRequest, body: dict[str, Any], out: sse.StreamOut) -> Reply | bytes:
        """A streamed chat completion on the lean path (``fast.py``): :meth:`handle` and :meth:`chat`'s steps.

        The deltas go through ``out`` as they come; returns the stream's last events, or the
        answer when the request failed before its stream started (a plain HTTP error).
        """
        self.in_flight += 1
        try:
            if self._tracer is None and "traceparent" not in request.headers:
                return await self._stream_direct(self._request(request, body), str(body["model"]), body, out)
            with self._traced(request):
                return await self._stream_direct(self._request(request, body), str(body["model"]), body, out)
        except Exception as exc:
            if out.started:
                raise  # the head is out: the connection can only be closed
            return reply_of(http_error(exc))
        finally:
            self.in_flight -= 1

    async def _complete(self, domain: Request, asked: str) -> Reply:
        """The engine's answer to a whole-JSON chat request, as a ``chat.completion`` or an error."""
        try:
            outcome = await self.daemon.engine.complete(domain)
        except Exception as exc:
            return reply_of(http_error(exc), domain.request_id)
        error = outcome_error(outcome)
        if error is not None or outcome.output is None:
            return reply_of(error or http_error(RuntimeError("no output")), domain.request_id)
        payload = response.completion(outcome, outcome.output, asked, response.now())
        return 200, response.headers(outcome), orjson.dumps(payload)

    async def _stream_direct(
        self, domain: Request, asked: str, body: dict[str, Any], out: sse.StreamOut
    ) -> Reply | bytes:
        """The lean path's stream: each delta is written from the engine's own call, no queue and no second task."""
        chunks = sse.Chunks(domain.request_id, asked, response.now(), _include_usage(body))
        out.open(domain.request_id)
        role = chunks.role()
        unsendable: list[Exception] = []  # raised after the engine returns, never into the provider's call

        def on_delta(text: str) -> None:
            try:
                data = chunks.content(text)
            except Exception as exc:  # text JSON cannot carry (a lone surrogate)
                unsendable.append(exc)
                return
            out.write(data if out.started else role + data)

        outcome: Outcome | None = None
        try:
            outcome = await self.daemon.engine.complete(domain, Progress(on_delta=on_delta))
            error = outcome_error(outcome)
        except Exception as exc:
            error = http_error(exc)
        if unsendable:
            raise unsendable[0]
        if error is not None and not out.started:
            return reply_of(error, domain.request_id)
        return _last_events(chunks, outcome, error, out.started)

    async def _stream(
        self, request: web.BaseRequest, domain: Request, asked: str, include_usage: bool
    ) -> web.StreamResponse:
        """Deltas as they come; an error before the first one is a plain HTTP error, after it an error event."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        task = asyncio.create_task(self.daemon.engine.complete(domain, Progress(on_delta=queue.put_nowait)))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        chunks = sse.Chunks(domain.request_id, asked, response.now(), include_usage)
        resp: web.StreamResponse | None = None
        try:
            done = False
            while not done and (item := await queue.get()) is not None:
                pieces = [item]
                while not queue.empty():  # coalesce what arrived meanwhile into one write
                    more = queue.get_nowait()
                    if more is None:
                        done = True
                        break
                    pieces.append(more)
                data = b"".join([chunks.content(p) for p in pieces])  # before the head: it may fail
                if resp is None:  # the head, the role chunk and the first text go out in one write
                    resp, data = await self._open_stream(request, domain.request_id), chunks.role() + data
                await resp.write(data)
            outcome, error = _settled(task)
            if resp is None:
                if error is not None:
                    return error_response(error, domain.request_id)
                resp = await self._open_stream(request, domain.request_id)
                await resp.write(_last_events(chunks, outcome, error, False))
            else:
                await resp.write(_last_events(chunks, outcome, error, True))
            await resp.write_eof()
            return resp
        finally:
            if not task.done():
                task.cancel()  # the client went away: abort the upstream calls

    async def _open_stream(self, request: web.BaseRequest, request_id: str) -> web.StreamResponse:
        """The stream's response, prepared: aiohttp sends its head with the first write."""
        resp = web.StreamResponse(status=200, headers=sse.headers(request_id))
        await resp.prepare(request)
        return resp


def _last_events(chunks: sse.Chunks, outcome: Outcome | None, error: HttpError | None, streamed: bool) -> bytes:
    """What ends a stream: the role chunk when no delta went out, then an error event or the ending."""
    head = b"" if streamed else chunks.role()
    if error is not None or outcome is None or outcome.output is None:
        return head + sse.error_event(error or http_error(RuntimeError("no output")))
    return head + chunks.ending(outcome, outcome.output, streamed)


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options") or {}
    return bool(options.get("include_usage")) if isinstance(options, dict) else False


def _settled(task: asyncio.Task[Outcome]) -> tuple[Outcome | None, HttpError | None]:
    try:
        outcome = task.result()
    except Exception as exc:
        return None, http_error(exc)
    return outcome, outcome_error(outcome)


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        allow = {"allow": allowed}
        raise HttpError(405, f"use {allowed}", "invalid_request_error", "method_not_allowed", headers=allow)

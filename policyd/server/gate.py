"""What every PolicyService call goes through before its servicer method, in one wrapper.

In order, outermost first: the caller's trace context made current (tracing off; with
tracing on, OpenTelemetry's own server interceptor does it and starts the RPC span), an
unparseable body refused (INVALID_ARGUMENT), the caller authenticated (``auth:``), and
any error the method raises mapped to its status and ``google.rpc`` details
(:mod:`policyd.server.errors`).

These were three grpc.aio server interceptors. An interceptor runs per RPC as a chain of
coroutines, and each added a coroutine layer around the method: ~30 µs of a request's
CPU on the benchmark's echo server. Here the PolicyService's method handlers are wrapped
once, when the service is registered (:func:`add_service`), and the server runs without
interceptors when tracing is off. Health and reflection are registered as they are: they
need no credentials, and their errors are grpc's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import propagate

from policyd.server.auth import AuthGate, authenticate
from policyd.server.errors import Unreadable, refuse, tolerant, trap
from policyd.server.wrap import Behaviour, rewrap, stream_items


def caller_context(metadata: Any, fields: frozenset[str]) -> otel_context.Context | None:
    """The trace context the call's metadata carries (``traceparent``, ``tracestate``, ``baggage``...), or None."""
    carrier = None
    for key, value in metadata or ():  # most calls carry none of them: no dict is made
        if key in fields:
            if carrier is None:
                carrier = {}
            carrier[key] = value
    return propagate.extract(carrier) if carrier else None


class Gate:
    """Wraps a PolicyService method handler (see the module's docstring)."""

    def __init__(self, auth: AuthGate, *, trace_context: bool) -> None:
        self.auth = auth
        self.fields = frozenset(propagate.get_global_textmap().fields) if trace_context else frozenset()
        """The metadata keys the propagators read; empty when OTel's interceptor does it."""

    def wrap(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return rewrap(handler, self._unary, self._stream, tolerant)

    def _enter(self, context: grpc.aio.ServicerContext) -> object | None:
        """Authenticate, then attach the caller's trace context; returns the token to detach it with."""
        authenticate(self.auth, context)
        if self.fields:
            ctx = caller_context(context.invocation_metadata(), self.fields)
            if ctx is not None:
                return otel_context.attach(ctx)
        return None

    def _unary(self, inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if type(request) is Unreadable:
                await refuse(request, context)
            token = None
            try:
                token = self._enter(context)
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await trap(exc, context)
            finally:
                if token is not None:
                    otel_context.detach(token)  # type: ignore[arg-type]

        return call

    def _stream(self, inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if type(request) is Unreadable:
                await refuse(request, context)
            token = None
            try:
                token = self._enter(context)
                async for item in stream_items(inner, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await trap(exc, context)
            finally:
                if token is not None:
                    otel_context.detach(token)  # type: ignore[arg-type]

        return call


class _Registrar:
    """Stands in for the server while a generated ``add_*Servicer_to_server`` registers a service:
    the method handlers reach the server wrapped."""

    def __init__(self, server: grpc.aio.Server, wrap: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler]):
        self.server = server
        self.wrap = wrap
        self.registered = False

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the generated code hands the same methods to :meth:`add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        wrapped = {name: self.wrap(handler) for name, handler in handlers.items()}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self.server.add_registered_method_handlers(service, wrapped)
        self.registered = True


def add_service(add: Callable[[Any, Any], None], servicer: Any, server: grpc.aio.Server, gate: Gate) -> None:
    """``add(servicer, server)`` (a generated ``add_*Servicer_to_server``) with every method behind ``gate``."""
    registrar = _Registrar(server, gate.wrap)
    add(servicer, registrar)
    if not registrar.registered:  # generated by an older grpcio-tools: no registered method handlers
        raise RuntimeError(f"{add.__name__} registered no method handlers; regenerate with scripts/gen.py")

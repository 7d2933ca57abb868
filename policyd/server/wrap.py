"""Rebuilding a grpc method handler around its behaviour (the PolicyService's gate).

Wrapping a handler's behaviour keeps the (de)serializers and works the same for unary
and server-streaming methods, which are the only kinds the PolicyService has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Any]
Deserializer = Callable[[bytes], Any]
Serializer = Callable[[Any], bytes]


async def stream_items(inner: Behaviour, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    """The responses of a server-streaming behaviour, whichever way it streams.

    A behaviour is either an async generator or a coroutine that writes with
    ``context.write`` (as grpc's own health ``Watch`` does); the second yields nothing here.
    """
    result = inner(request, context)
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    else:
        await result


def encoded_or(serialize: Serializer | None) -> Serializer | None:
    """``serialize``, passing a reply that is already bytes through as it is (a method may answer
    pre-encoded bytes: ``policyd.server.replay``)."""
    if serialize is None:
        return None

    def encode(reply: Any) -> bytes:
        return reply if type(reply) is bytes else serialize(reply)

    return encode


def rewrap(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[Behaviour], Behaviour],
    stream: Callable[[Behaviour], Behaviour],
    parse: Callable[[Deserializer], Deserializer] | None = None,
) -> grpc.RpcMethodHandler:
    """``handler`` with its unary-unary or unary-stream behaviour replaced by ``unary(b)`` / ``stream(b)``,
    and its request deserializer by ``parse(d)`` when given; a unary reply may be bytes already encoded."""
    deserializer = handler.request_deserializer
    if parse is not None and deserializer is not None:
        deserializer = parse(deserializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=deserializer,
            response_serializer=encoded_or(handler.response_serializer),
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler

"""RPC server spans from OpenTelemetry's own gRPC instrumentation, health checks filtered out.

With tracing on, :func:`server_interceptor` is OTel's server interceptor: an RPC span per
call, continuing the caller's W3C ``traceparent`` from the gRPC metadata. With tracing off
there are no spans to make, and the instrumentation's per-RPC work (a wrapped handler, a
proxied servicer context, a no-op span) cost about 5% of a request's CPU in the benchmark:
the server then runs without it, and the PolicyService's gate (:mod:`policyd.server.gate`)
only makes the caller's trace context current (when the metadata carries one), so it still
reaches the outcome's ``trace_id`` and flows on to provider calls.
"""

from __future__ import annotations

import grpc.aio
from grpc_health.v1 import health_pb2

from policyd.telemetry.setup import Telemetry

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
NOT_TRACED = (HEALTH_SERVICE, "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
"""Services whose RPCs get no span (probes and tooling, not traffic)."""


def server_interceptor(telemetry: Telemetry) -> grpc.aio.ServerInterceptor | None:
    """OTel's server interceptor when tracing is on; None (no interceptor at all) when it is off."""
    if not telemetry.tracing:
        return None
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters  # only when tracing

    traced = filters.negate(filters.any_of(*(filters.service_name(name) for name in NOT_TRACED)))
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(
        tracer_provider=telemetry.tracer_provider, filter_=traced
    )
    return interceptor

"""RPC server spans from OpenTelemetry's own gRPC instrumentation, health checks filtered out.

The interceptor extracts the caller's W3C ``traceparent`` from the gRPC metadata, so a
policyd call continues the caller's trace (also with tracing off: the no-op tracer
keeps the caller's span context current, and it flows on to provider calls).
"""

from __future__ import annotations

import grpc.aio
from grpc_health.v1 import health_pb2
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from policyd.telemetry.setup import Telemetry

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
NOT_TRACED = (HEALTH_SERVICE, "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
"""Services whose RPCs get no span (probes and tooling, not traffic)."""


def server_interceptor(telemetry: Telemetry) -> grpc.aio.ServerInterceptor:
    traced = filters.negate(filters.any_of(*(filters.service_name(name) for name in NOT_TRACED)))
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(
        tracer_provider=telemetry.tracer_provider, filter_=traced
    )
    return interceptor

"""The Prometheus scrape endpoint of ``OTEL_METRICS_EXPORTER=prometheus``.

Unlike the push exporters, Prometheus pulls: a ``PrometheusMetricReader`` collects from
the meter provider at each scrape, and ``prometheus_client``'s HTTP server answers
``GET /metrics`` on ``OTEL_EXPORTER_PROMETHEUS_HOST`` (default ``localhost``) and
``OTEL_EXPORTER_PROMETHEUS_PORT`` (default 9464), the defaults of the OTel SDK
environment-variable spec.

The reader writes into a registry of its own, not ``prometheus_client``'s global one,
so several daemons (tests) can share a process; the registry also gets the process,
platform and GC collectors the global one has. The server binds only when
:meth:`PrometheusEndpoint.start` is called and stops with the telemetry's shutdown.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policyd.errors import ConfigError

if TYPE_CHECKING:  # loaded with the endpoint, when OTEL_METRICS_EXPORTER names prometheus
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics.export import MetricReader

log = logging.getLogger(__name__)

HOST_ENV = "OTEL_EXPORTER_PROMETHEUS_HOST"
PORT_ENV = "OTEL_EXPORTER_PROMETHEUS_PORT"
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 9464


@dataclass(frozen=True)
class ScrapeAddress:
    """Where the endpoint listens, as the environment says; port 0 picks a free one."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT


def address_from_env(environ: Mapping[str, str]) -> ScrapeAddress:
    """Read and check host and port; a bad port raises ConfigError naming the variable."""
    host = (environ.get(HOST_ENV) or "").strip() or DEFAULT_HOST
    raw = (environ.get(PORT_ENV) or "").strip()
    if not raw:
        return ScrapeAddress(host, DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError("environment", PORT_ENV, f"expected a port number 0-65535, got {raw!r}")
    return ScrapeAddress(host, port)


class PrometheusEndpoint:
    """A reader for the meter provider, and the HTTP server that exposes what it collects."""

    def __init__(self, address: ScrapeAddress) -> None:
        # Imported here, like the other exporters: only a daemon that serves Prometheus pays for them.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
        from prometheus_client.registry import CollectorRegistry

        self.address = address
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.reader: MetricReader = PrometheusMetricReader(registry=self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the system picked for port 0)."""
        return int(self._server.server_address[1]) if self._server is not None else self.address.port

    def start(self) -> None:
        """Bind and serve on a daemon thread; a failure raises ConfigError naming the variable at fault."""
        from prometheus_client import start_http_server

        host, port = self.address.host, self.address.port
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except socket.gaierror as exc:
            raise ConfigError("environment", HOST_ENV, f"cannot resolve {host!r}: {exc.strerror}") from None
        except OSError as exc:
            var = HOST_ENV if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) else PORT_ENV
            reason = exc.strerror or str(exc)
            raise ConfigError(
                "environment", var, f"cannot serve Prometheus metrics on {host}:{port}: {reason}"
            ) from None
        log.info("Prometheus metrics on http://%s:%d/metrics", host, self.port)

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice or before start."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

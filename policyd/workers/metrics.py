"""One Prometheus ``/metrics`` for the group: the supervisor serves the workers' metrics, merged.

Each worker serves its own endpoint on a loopback port the system picks (the supervisor sets
``OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1`` and ``_PORT=0`` for it) and says which in its ready
message. The supervisor binds the configured address (``OTEL_EXPORTER_PROMETHEUS_HOST``/``_PORT``)
and, at each scrape, reads every worker's metrics and answers them as one exposition, each
sample labelled ``worker`` (its index): ``sum without (worker) (...)`` is the daemon's figure.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from policyd.errors import ConfigError

if TYPE_CHECKING:  # the supervisor imports no OTel SDK unless it serves metrics
    import logging

    from policyd.telemetry.prometheus import ScrapeAddress


def _log() -> logging.Logger:
    """This module's logger (``logging`` is imported once the supervisor has started its workers)."""
    import logging

    return logging.getLogger(__name__)


HOST_ENV = "OTEL_EXPORTER_PROMETHEUS_HOST"
PORT_ENV = "OTEL_EXPORTER_PROMETHEUS_PORT"
WORKER_LABEL = "worker"
SCRAPE_TIMEOUT_S = 2.0
WORKER_ENV = {HOST_ENV: "127.0.0.1", PORT_ENV: "0"}
"""What a worker's environment says: its own endpoint on loopback, on a free port."""


class GroupCollector:
    """A prometheus_client collector that reads the workers' endpoints at each scrape."""

    def __init__(self, ports: Callable[[], dict[int, int]]) -> None:
        self.ports = ports

    def collect(self) -> Iterator[Any]:
        import urllib.request

        from prometheus_client.core import Metric
        from prometheus_client.parser import text_string_to_metric_families

        merged: dict[str, Metric] = {}
        for index, port in sorted(self.ports().items()):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_S) as resp:
                    text = resp.read().decode("utf-8")
            except OSError as exc:
                _log().warning("worker %d's metrics (port %d) did not answer: %s", index, port, exc)
                continue
            for family in text_string_to_metric_families(text):
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    into.samples.append(sample._replace(labels={**sample.labels, WORKER_LABEL: str(index)}))
        yield from merged.values()


class GroupMetrics:
    """The supervisor's ``/metrics`` endpoint."""

    def __init__(self, address: ScrapeAddress, ports: Callable[[], dict[int, int]]) -> None:
        from prometheus_client.registry import CollectorRegistry

        self.address = address
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GroupCollector(ports))
        self._server: Any = None

    def start(self) -> None:
        from prometheus_client import start_http_server

        host, port = self.address.host, self.address.port
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except socket.gaierror as exc:
            raise ConfigError("environment", HOST_ENV, f"cannot resolve {host!r}: {exc.strerror}") from None
        except OSError as exc:
            var = HOST_ENV if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) else PORT_ENV
            raise ConfigError(
                "environment", var, f"cannot serve Prometheus metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        _log().info("Prometheus metrics of every worker on http://%s:%d/metrics", host, self.port)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else self.address.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def scrape_address() -> ScrapeAddress | None:
    """Where the group serves ``/metrics``: the OTel environment's choice, when it names ``prometheus``."""
    if "prometheus" not in os.environ.get("OTEL_METRICS_EXPORTER", "").lower():
        return None
    from policyd.telemetry.setup import exporters_from_env

    return exporters_from_env(os.environ).prometheus

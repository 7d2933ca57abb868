"""From ``policyd serve``'s arguments to a group of workers, or None: serve in this process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from policyd.errors import InvalidArgument
from policyd.server.address import UNIX_PREFIX
from policyd.workers.count import available_cpus, requested_workers
from policyd.workers.metrics import scrape_address
from policyd.workers.ports import HeldPort, hold

if TYPE_CHECKING:
    from policyd.telemetry.prometheus import ScrapeAddress


class Plan:
    """What the supervisor runs: the worker's ``policyd`` arguments (less the address flags) and the held ports.

    A plain class, as :class:`.ports.HeldPort` and :class:`.spawn.Child`: nothing the supervisor
    imports before it starts its workers loads ``dataclasses`` (docs/deploy.md, "Start-up")."""

    def __init__(
        self,
        workers: int,
        argv: list[str],
        grpc: HeldPort,
        http: HeldPort | None,
        grace_s: float,
        metrics: ScrapeAddress | None = None,
    ) -> None:
        self.workers = workers
        self.argv = argv
        self.grpc = grpc
        self.http = http
        self.grace_s = grace_s
        self.metrics = metrics
        """Where the group serves Prometheus ``/metrics`` (``OTEL_METRICS_EXPORTER=prometheus``), merged."""

    def worker_args(self) -> list[str]:
        """A worker's ``policyd`` arguments: the plan's, with the held addresses."""
        argv = [*self.argv, "--listen", self.grpc.listen]
        if self.http is not None:
            argv += ["--http-listen", self.http.listen]
        return argv

    def command(self) -> list[str]:
        """A worker's command line (a restarted one is exec'd: ``python -m policyd`` and :meth:`worker_args`)."""
        return [sys.executable, "-m", "policyd", *self.worker_args()]


def policy_http_listen(config: str | None) -> str | None:
    """The policy file's ``http_listen`` (the workers validate the whole file and refuse a bad one)."""
    if not config:
        return None
    try:
        import yaml

        data = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except Exception:
        return None
    value = data.get("http_listen") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _note(args: argparse.Namespace, message: str) -> None:
    """Log ``message`` (INFO): on the one-worker path only, where nothing is started before logging is set up."""
    import logging

    from policyd.cli.common import configure_logging

    configure_logging(args.log_level)
    logging.getLogger(__name__).info("%s", message)


def plan_workers(args: argparse.Namespace) -> Plan | None:
    """None for one worker (today's single process, no supervisor); else the group's plan, ports held.

    Unix sockets cannot be shared by ``SO_REUSEPORT``: with one, the default is one worker and an
    explicit ``--workers N`` (N > 1) is an error naming the flag."""
    requested = requested_workers(args.workers)
    http_listen = args.http_listen or policy_http_listen(args.config)
    unix = next((a for a in (args.listen, http_listen) if a and a.startswith(UNIX_PREFIX)), None)
    if requested is None:
        workers = available_cpus()
        if unix is not None and workers > 1:
            _note(args, f"one worker: {unix} is a Unix socket, which workers cannot share (docs/workers.md)")
            workers = 1
    else:
        workers = requested
        if unix is not None and workers > 1:
            raise InvalidArgument(
                "--workers",
                f"{workers} workers cannot share the Unix socket {unix}; use --workers 1 with a unix:// address, "
                "or a TCP HOST:PORT (see docs/workers.md)",
            )
    if workers == 1:
        return None
    metrics = scrape_address()  # a bad OTEL_* variable fails here, naming it, before any port is held
    grpc_port = hold(args.listen, "--listen")
    http_port: HeldPort | None = None
    try:
        if http_listen:
            http_port = hold(http_listen, "--http-listen" if args.http_listen else "http_listen")
    except OSError:
        grpc_port.close()
        raise
    argv = [
        "--log-level",
        str(args.log_level),
        "serve",
        "--workers",
        "1",
        "--grace",
        repr(args.grace),
        "--reload-interval",
        repr(args.reload_interval),
    ]
    if args.config:
        argv += ["--config", str(args.config)]
    if args.data_dir is not None:
        argv += ["--data-dir", str(args.data_dir)]
    return Plan(workers=workers, argv=argv, grpc=grpc_port, http=http_port, grace_s=args.grace, metrics=metrics)

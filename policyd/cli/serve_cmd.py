"""``policyd serve``: run the gRPC daemon.

Its parser and the choice between serving here and supervising a group of workers import no
grpc, daemon or engine. A supervisor (``--workers N``, N > 1, the default on a multi-core
machine) whose workers are forks imports the serve path once (:func:`load_serve_path`, no
thread, no event loop, no grpc object) and forks them after: each worker then only builds its
daemon and serves, and the group pays the imports once (docs/deploy.md, "Start-up"). Otherwise
the daemon's modules are imported once this process serves.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
from typing import TYPE_CHECKING

from policyd.cli import event_loop
from policyd.cli.common import add_config_option, add_data_dir_option, configure_logging
from policyd.errors import InvalidArgument
from policyd.lifecycle import collector_paused, settle_collector
from policyd.server.address import DEFAULT_GRACE_S, DEFAULT_LISTEN, DEFAULT_RELOAD_INTERVAL_S, check_address
from policyd.workers.count import ENV as WORKERS_ENV
from policyd.workers.env import FD_ENV

if TYPE_CHECKING:
    from policyd.workers.link import GroupLink


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gRPC daemon", description="Run the gRPC daemon until SIGTERM.")
    add_config_option(p)
    add_data_dir_option(p)
    p.add_argument(
        "--listen",
        default=os.environ.get("POLICYD_LISTEN", DEFAULT_LISTEN),
        help=f"HOST:PORT (port 0 picks one) or unix:///path/to.sock (default {DEFAULT_LISTEN})",
    )
    p.add_argument(
        "--http-listen",
        default=os.environ.get("POLICYD_HTTP_LISTEN") or None,
        help="also serve the OpenAI-compatible HTTP API on HOST:PORT (default: the policy file's http_listen; off)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=float(os.environ.get("POLICYD_GRACE_S", DEFAULT_GRACE_S)),
        help=f"seconds in-flight RPCs get to finish on SIGTERM (default {DEFAULT_GRACE_S})",
    )
    p.add_argument(
        "--reload-interval",
        type=float,
        default=float(os.environ.get("POLICYD_RELOAD_INTERVAL_S", DEFAULT_RELOAD_INTERVAL_S)),
        help=f"seconds between policy file checks; 0: reload on SIGHUP only (default {DEFAULT_RELOAD_INTERVAL_S})",
    )
    p.add_argument(
        "--workers",
        default=None,
        metavar="N",
        help=f"serving processes behind the one address (default ${WORKERS_ENV}, else the cores this process may "
        "use, under a cgroup CPU quota; 1 for a unix:// address); see docs/workers.md",
    )
    p.set_defaults(func=run, configures_logging=True)  # a supervisor's, once its workers have started


def run(args: argparse.Namespace) -> int:
    event_loop.checked_choice()  # a bad POLICYD_EVENT_LOOP fails before anything starts (imports nothing)
    for flag, value in (("--listen", args.listen), ("--http-listen", args.http_listen)):
        try:  # before building the daemon, which opens the cache and the ledger
            if value is not None:
                check_address(value)
        except ValueError as exc:
            raise InvalidArgument(flag, str(exc)) from None
    group: GroupLink | None = None
    if os.environ.get(FD_ENV):  # this process is one worker of a supervisor's group
        with collector_paused():  # the link loads the config models, the engine's and the ledger's parts
            from policyd.workers.link import GroupLink

        configure_logging(args.log_level)
        group = GroupLink.from_environment()
    else:
        from policyd.workers.plan import plan_workers

        plan = plan_workers(args)  # configures logging where it has something to say (one worker)
        if plan is not None:
            from policyd.workers.spawn import forks_workers, start_group

            if forks_workers(plan):
                with collector_paused():
                    load_serve_path()  # once, inherited by every fork (a restart is exec'd and loads its own)
                    import policyd.workers.link  # noqa: F401  (a worker's side of the group)
                gc.freeze()  # what the forks share: no collection in them walks it (or copies its pages)
            started = start_group(plan)
            configure_logging(args.log_level)
            from policyd.workers.supervisor import supervise

            return supervise(plan, started)
        configure_logging(args.log_level)
    return serve_here(args, group)


SERVE_PATH = ("policyd.daemon", "policyd.server.app", "policyd.server.openai.server")
"""The modules :func:`serve_here` uses (with the built-in plugins' and the event loop's)."""


def load_serve_path() -> tuple[str, event_loop.LoopFactory | None]:
    """Import what serving imports (the event loop's module, the daemon, the server, the built-in plugins'
    modules) and make the entry-point pass, unless this process has (a fork of a supervisor that did);
    returns the event loop's (name, factory). Starts no thread and makes no grpc object or event loop: a
    group's supervisor runs it before it forks its workers. The caller pauses the collector."""
    loop_name, factory = event_loop.loop_factory()
    if not os.environ.get("POLICYD_DISABLE_PLUGIN_AUTOLOAD"):
        from policyd import discovery

        if not discovery.adopted():
            discovery.adopt()  # one entry-point pass for pydantic and the plugin host, before the first model
    for module in SERVE_PATH:
        importlib.import_module(module)
    from policyd.plugin.manager import BUILTIN_PLUGINS

    for module in BUILTIN_PLUGINS.values():
        with contextlib.suppress(Exception):  # a failing one is the plugin host's to report, naming it
            importlib.import_module(module)
    return loop_name, factory


def serve_here(args: argparse.Namespace, group: GroupLink | None) -> int:
    """Serve in this process: on its own, or as one worker of a group. The collector is paused while the
    serve path is imported and the daemon built, then on again, with what was built frozen, before the
    server starts (``policyd.lifecycle``)."""
    with collector_paused():
        loop_name, factory = load_serve_path()
        from policyd.daemon import DaemonOptions, build_daemon
        from policyd.server.app import serve
        from policyd.server.openai.server import http_listen_option

        daemon = build_daemon(DaemonOptions(config_path=args.config, data_dir=args.data_dir, group=group))
        http_listen = http_listen_option(args.http_listen, daemon)
    settle_collector()
    import logging

    logging.getLogger(__name__).info("event loop: %s", loop_name)
    event_loop.run(serve(daemon, args.listen, args.grace, args.reload_interval, http_listen), factory)
    return 0

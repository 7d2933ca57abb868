"""``policyd health``: ask a running daemon's grpc.health.v1 service whether it serves.

Kubernetes' native gRPC probes dial the pod's IP, so they cannot reach a sidecar that
listens on 127.0.0.1 or on a Unix socket; the chart probes such a sidecar with this
command instead (an ``exec`` probe). It also serves as the image's HEALTHCHECK.
Exit status: 0 when SERVING, 1 otherwise (not serving, unknown service, unreachable).
Probes run it as ``policyd-health`` (same options), which imports only this module: a
third of the CPU of ``policyd health``, and a probe runs every few seconds.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


def probe_target(listen: str) -> str:
    """The address to dial for a daemon listening on ``listen`` (a wildcard host becomes loopback)."""
    if listen.startswith("unix:"):
        return listen
    host, sep, port = listen.rpartition(":")
    if not sep:
        return listen
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds (a zero or negative timeout always fails)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got {text})")
    return value


DESCRIPTION = "Exit 0 when the daemon at ADDRESS reports SERVING for SERVICE, else 1."


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_options(sub.add_parser("health", help="check a running daemon's health", description=DESCRIPTION))


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        default=os.environ.get("POLICYD_LISTEN", DEFAULT_ADDRESS),
        help=f"HOST:PORT or unix:///path (default $POLICYD_LISTEN, else {DEFAULT_ADDRESS})",
    )
    p.add_argument("--service", default="", help="health service name ('' is the whole server; default '')")
    p.add_argument("--timeout", type=seconds, default=3.0, help="seconds to wait for the answer (default 3)")
    p.add_argument(
        "--stores",
        action="store_true",
        help="also report each shared store of a fleet (policyd.store.valkey, policyd.store.postgres)",
    )
    p.set_defaults(func=run)


STORE_SERVICES = ("policyd.store.valkey", "policyd.store.postgres")
"""Set by ``policyd.fleet.health`` (named here too: this module imports nothing of policyd's)."""


def store_states(channel: grpc.Channel, timeout: float) -> list[tuple[str, str]]:
    """(store, SERVING / NOT_SERVING) of each configured store; a store the daemon does not use is left out."""
    states = []
    for service in STORE_SERVICES:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                continue
            raise
        states.append((service.rpartition(".")[2], health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)))
    return states


def run(args: argparse.Namespace) -> int:
    target = probe_target(args.address)
    request = health_pb2.HealthCheckRequest(service=args.service)
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
            stores = store_states(channel, args.timeout) if getattr(args, "stores", False) else []
    except grpc.RpcError as exc:
        why = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.Call) else str(exc)
        print(f"policyd health: {target} service {args.service!r}: {why}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{target} service {args.service!r}: {status}")
    for store, state in stores:
        print(f"{target} store {store}: {state}")
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return 0 if serving and all(state == "SERVING" for _, state in stores) else 1


def main(argv: list[str] | None = None) -> int:
    """``policyd-health``: the probe's entry point, without the rest of the CLI's imports."""
    parser = argparse.ArgumentParser(prog="policyd-health", description=DESCRIPTION)
    add_options(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

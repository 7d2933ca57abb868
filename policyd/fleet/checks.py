"""What ``policyd check`` verifies of a ``fleet:`` section beyond its shape: the addresses and secrets it names."""

from __future__ import annotations

from urllib.parse import urlsplit

from policyd.config.model import Config
from policyd.errors import ConfigError
from policyd.fleet.settings import FleetSettings

SCHEMES = {"valkey": ("redis", "rediss", "valkey", "valkeys"), "postgres": ("postgresql", "postgres")}


def fleet_problems(fleet: FleetSettings) -> list[tuple[str, str]]:
    """(key path, problem) for every address or secret the section names but the environment lacks."""
    problems: list[tuple[str, str]] = []
    stores = (("valkey", fleet.valkey, "url_env"), ("postgres", fleet.postgres, "dsn_env"))
    for name, store, env_key in stores:
        if store is None:
            continue
        try:
            address = store.url() if name == "valkey" else store.dsn()  # type: ignore[union-attr]
        except ValueError as exc:
            problems.append((f"fleet.{name}.{env_key}", str(exc).partition(": ")[2]))
        else:
            scheme = urlsplit(address).scheme
            if scheme not in SCHEMES[name]:
                expected = " or ".join(f"{s}://" for s in SCHEMES[name])
                problems.append((f"fleet.{name}.{env_key}", f"expected a {expected} address, got scheme {scheme!r}"))
        try:
            store.password()
        except ValueError as exc:
            where, _, problem = str(exc).partition(": ")
            problems.append((where, problem))
        if store.tls_ca_file is not None and not store.tls_ca_file.is_file():
            problems.append((f"fleet.{name}.tls_ca_file", f"{store.tls_ca_file} is not a file"))
    return problems


def check_fleet(config: Config) -> str | None:
    """Raise ConfigError naming every problem; a summary line of the fleet section, or None without one."""
    fleet: FleetSettings | None = config.raw.fleet
    if fleet is None or (fleet.valkey is None and fleet.postgres is None):
        return None
    problems = fleet_problems(fleet)
    if problems:
        (path, problem), rest = problems[0], problems[1:]
        if rest:
            problem += f" (and {len(rest)} more: " + "; ".join(f"{p}: {m}" for p, m in rest) + ")"
        raise ConfigError(config.source, path, problem)
    parts = []
    if fleet.valkey is not None:
        v = fleet.valkey
        shared = "budgets and rate limits" if v.rate_limits else "budgets"
        parts.append(f"{shared} on Valkey (${v.url_env}, on_unavailable {v.on_unavailable})")
    if fleet.postgres is not None:
        parts.append(f"ledger on PostgreSQL (${fleet.postgres.dsn_env})")
    return "fleet: " + "; ".join(parts)

"""The chart passes a fleet's store addresses (plain, or from existing Secrets) and installs no store."""

from __future__ import annotations

from tests.helm.conftest import Helm, container, env_of


def policyd_env(helm: Helm, values: dict) -> dict:
    rendered = helm.template(values)
    return env_of(container(rendered.one("Deployment")["spec"]["template"]["spec"], "policyd"))


def test_fleet_addresses_come_from_values_or_existing_secrets(helm: Helm) -> None:
    env = policyd_env(
        helm,
        {
            "fleet": {
                "valkey": {"url": "redis://valkey.data.svc:6379/0"},
                "postgres": {"existingSecret": {"name": "policyd-pg", "key": "dsn"}},
            }
        },
    )
    assert env["POLICYD_VALKEY_URL"] == "redis://valkey.data.svc:6379/0"
    assert env["POLICYD_POSTGRES_DSN"] == {"secretKeyRef": {"name": "policyd-pg", "key": "dsn"}}


def test_a_secret_wins_over_a_plain_address_and_nothing_is_set_by_default(helm: Helm) -> None:
    env = policyd_env(
        helm, {"fleet": {"valkey": {"url": "redis://x:6379/0", "existingSecret": {"name": "vk", "key": "url"}}}}
    )
    assert env["POLICYD_VALKEY_URL"] == {"secretKeyRef": {"name": "vk", "key": "url"}}
    assert "POLICYD_POSTGRES_DSN" not in env
    default = policyd_env(helm, {})
    assert "POLICYD_VALKEY_URL" not in default and "POLICYD_POSTGRES_DSN" not in default
    kinds = helm.template({"fleet": {"valkey": {"url": "redis://x:6379/0"}}}).kinds()
    assert "StatefulSet" not in kinds, "the chart does not install Valkey or PostgreSQL"


def test_an_unknown_fleet_key_is_refused(helm: Helm) -> None:
    error = helm.template_error({"fleet": {"valkey": {"adress": "redis://x"}}})
    assert "adress" in error

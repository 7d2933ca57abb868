"""The fleet policy file: ``policyd check`` validates it and names what the environment lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyd.cli.main import main

FLEET_YAML = Path(__file__).resolve().parents[2] / "examples" / "fleet.yaml"


def test_policyd_check_accepts_the_fleet_example_and_summarises_the_stores(monkeypatch, capsys):
    monkeypatch.setenv("POLICYD_VALKEY_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("POLICYD_POSTGRES_DSN", "postgresql://policyd@127.0.0.1:5432/policyd")
    assert main(["check", str(FLEET_YAML)]) == 0
    out = capsys.readouterr().out
    assert "fleet: budgets and rate limits on Valkey ($POLICYD_VALKEY_URL, on_unavailable fail_closed)" in out
    assert "ledger on PostgreSQL ($POLICYD_POSTGRES_DSN)" in out


def test_policyd_check_names_every_unset_address_variable(monkeypatch, capsys):
    monkeypatch.delenv("POLICYD_VALKEY_URL", raising=False)
    monkeypatch.delenv("POLICYD_POSTGRES_DSN", raising=False)
    assert main(["check", str(FLEET_YAML)]) == 2
    err = capsys.readouterr().err
    assert "fleet.valkey.url_env: environment variable POLICYD_VALKEY_URL is not set or empty" in err
    assert "fleet.postgres.dsn_env: environment variable POLICYD_POSTGRES_DSN is not set or empty" in err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("POLICYD_VALKEY_URL", "http://cache:6379", "expected a redis:// or rediss:// or valkey:// or valkeys://"),
        ("POLICYD_POSTGRES_DSN", "mysql://db/x", "expected a postgresql:// or postgres:// address"),
    ],
)
def test_policyd_check_refuses_an_address_of_the_wrong_kind(monkeypatch, capsys, variable, value, message):
    monkeypatch.setenv("POLICYD_VALKEY_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("POLICYD_POSTGRES_DSN", "postgresql://policyd@127.0.0.1:5432/policyd")
    monkeypatch.setenv(variable, value)
    assert main(["check", str(FLEET_YAML)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert value not in err, "the address itself (it may hold a password) is never printed"


def test_a_password_file_that_cannot_be_read_is_named(tmp_path, monkeypatch, capsys):
    text = FLEET_YAML.read_text().replace(
        "# password_file: /var/run/secrets/policyd-valkey/password", f"password_file: {tmp_path / 'missing'}"
    )
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    monkeypatch.setenv("POLICYD_VALKEY_URL", "redis://:secret-in-url@127.0.0.1:6379/0")
    monkeypatch.setenv("POLICYD_POSTGRES_DSN", "postgresql://policyd@127.0.0.1:5432/policyd")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fleet.valkey.password_file: cannot read" in err
    assert "secret-in-url" not in err


def test_a_daemon_refuses_to_start_without_the_addresses_naming_the_key(tmp_path, monkeypatch):
    from policyd.daemon import DaemonOptions, build_daemon
    from policyd.errors import ConfigError

    monkeypatch.delenv("POLICYD_VALKEY_URL", raising=False)
    monkeypatch.setenv("POLICYD_POSTGRES_DSN", "postgresql://policyd@127.0.0.1:5432/policyd")
    with pytest.raises(ConfigError, match=r"fleet\.valkey\.url_env: environment variable POLICYD_VALKEY_URL"):
        build_daemon(DaemonOptions(config_path=str(FLEET_YAML), data_dir=tmp_path, entry_points=False))

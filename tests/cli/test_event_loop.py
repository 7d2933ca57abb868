"""``policyd serve`` picks its event loop: uvloop when installed, asyncio's on request, errors named."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from policyd.cli import event_loop
from policyd.cli.main import main
from policyd.errors import PolicydError

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_choice_keeps_the_standard_loop(monkeypatch):
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.loop_factory() == ("asyncio", None)


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed")
def test_auto_runs_the_daemon_on_uvloop_when_installed(monkeypatch):
    monkeypatch.delenv(event_loop.ENV, raising=False)
    name, factory = event_loop.loop_factory()
    assert name == "uvloop" and factory is not None
    seen: list[str] = []

    async def probe() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    event_loop.run(probe(), factory)
    assert seen and seen[0].startswith("uvloop")


def test_an_unknown_choice_is_refused_before_the_daemon_starts(monkeypatch, capsys):
    monkeypatch.setenv(event_loop.ENV, "trio")
    with pytest.raises(PolicydError, match="POLICYD_EVENT_LOOP must be one of auto, uvloop, asyncio"):
        event_loop.loop_factory()
    assert main(["serve", "--listen", "127.0.0.1:0"]) == 2
    assert "POLICYD_EVENT_LOOP must be one of" in capsys.readouterr().err

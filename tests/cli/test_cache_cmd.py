"""``policyd cache stats`` and ``policyd cache clear --tenant`` on a directory a live daemon filled."""

from __future__ import annotations

import json
from pathlib import Path

from policyd.cli.main import main
from policyd.v1 import policyd_pb2 as pb


def ask(text: str, tenant: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], tenant=tenant)


async def _fill(live, config: str, data_dir: Path) -> None:
    daemon, running, stub = await live(config, data_dir=data_dir)
    for text in ("one", "two", "three"):
        await stub.Complete(ask(text, "acme"))
    await stub.Complete(ask("one", "globex"))
    await stub.Complete(ask("one", "globex"))
    await running.server.stop(0)
    await daemon.aclose()


async def test_stats_show_entries_per_tenant_and_saved_counters(live, single_model_config, tmp_path: Path, capsys):
    await _fill(live, single_model_config, tmp_path)
    assert main(["cache", "stats", "--data-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tenants = {t: u["entries"] for t, u in doc["usage"]["tenants"].items()}
    assert tenants == {"acme": 3, "globex": 1}
    assert doc["totals"]["hits"] == 1 and doc["totals"]["misses"] == 4 and doc["totals"]["writes"] == 4
    assert doc["totals"]["saved_usd"] > 0
    assert main(["cache", "stats", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "tenant acme: 3 entries" in text and "1 hits" in text


async def test_clear_one_tenant_leaves_the_others_cached(live, single_model_config, tmp_path: Path, capsys):
    await _fill(live, single_model_config, tmp_path)
    assert main(["cache", "clear", "--tenant", "acme", "--data-dir", str(tmp_path)]) == 0
    assert "removed 3 cached answers of tenant 'acme'" in capsys.readouterr().out
    _, _, stub = await live(single_model_config, data_dir=tmp_path)
    assert not (await stub.Complete(ask("one", "acme"))).attempts[0].cached
    assert (await stub.Complete(ask("one", "globex"))).attempts[0].cached


def test_stats_on_a_directory_without_a_cache_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["cache", "stats", "--data-dir", str(tmp_path)]) == 2
    assert f"no cache at {tmp_path / 'cache'}" in capsys.readouterr().err

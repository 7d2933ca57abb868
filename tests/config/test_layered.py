"""A policy file holding only some sections, layered over the bundled default (`extends: default`)."""

from __future__ import annotations

import grpc
import pytest

from policyd.cli.main import main
from policyd.server.auth import hash_token
from policyd.v1 import policyd_pb2 as pb

TOKEN = "tok-layered-5f1d"
AUTH_ONLY = f"""
extends: default
auth:
  tenants:
    team-a: {{token_sha256: ["{hash_token(TOKEN)}"]}}
"""


def ask(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def test_an_auth_only_file_runs_the_bundled_policy_behind_auth(live):
    _, _, stub = await live(AUTH_ONLY)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Complete(ask("hi"))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    resp = await stub.Complete(ask("hi", task="coding"), metadata=(("authorization", f"Bearer {TOKEN}"),))
    assert resp.explanation.rule == "coding-volume", "the bundled default's rules apply"
    assert resp.explanation.policy_version not in ("", "default-2"), "a layered file has its own version"


async def test_named_sections_merge_by_name_and_others_replace(live):
    text = """
extends: default
version: layered-1
models:
  glm-4.5: {input_usd_per_mtok: 9.0}
policies:
  cheap:
    rules:
      - name: only
        plan: {strategy: single, params: {model: gpt-oss-120b}}
limits: {max_messages: 5}
"""
    daemon, _, stub = await live(text)
    config = daemon.config
    assert {"default", "cheap"} <= set(config.policies), "policies merged by name"
    assert config.catalog["glm-4.5"].input_usd_per_mtok == 9.0
    assert "simulated" in config.providers
    assert config.version == "layered-1"
    assert config.raw is not None and config.raw.limits.max_messages == 5
    resp = await stub.Complete(ask("hi", policy="cheap"))
    assert resp.explanation.rule == "only"


def test_policyd_check_accepts_a_layered_file_and_hints_at_extends(write_config, capsys):
    assert main(["check", str(write_config(AUTH_ONLY))]) == 0
    assert "policy default (default): 7 rules" in capsys.readouterr().out  # the bundled six and embeddings

    path = write_config("auth: {tenants: {}}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: policies: is required (or start the file with `extends: default`" in err

    path = write_config("extends: fancy\n")
    assert main(["check", str(path)]) == 2
    assert (
        "extends: only 'default' (the bundled default policy) can be extended (got 'fancy')" in capsys.readouterr().err
    )

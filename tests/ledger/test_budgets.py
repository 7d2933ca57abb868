"""Tenant and policy budgets: reserve the worst case, settle the real cost, never overspend."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from policyd.cli.main import main
from policyd.config import Config
from policyd.daemon import DaemonOptions, build_daemon
from policyd.errors import ConfigError, ResourceExhausted
from policyd.ledger.budgets import BudgetLayer, budget_lines
from policyd.ledger.settings import BudgetLimit, BudgetsSettings
from policyd.plugin import hookimpl
from policyd.plugin.manager import default_host
from policyd.plugin.specs import BudgetLine, BudgetRefusal, BudgetStoreContext, BudgetStoreSpec
from policyd.server import convert
from policyd.types import Request
from policyd.v1 import policyd_pb2 as pb

# gpt-oss-120b: $0.15 in / $0.60 out per Mtok. With 100 output tokens and a short prompt
# one request may cost at most ~$0.0000615; the tenant may spend $0.001: about 16 of them.
BUDGETED = """
version: budgets-1
providers:
  simulated: {kind: simulated, latency_scale: 0.05}
policies:
  default:
    rules:
      - name: plain
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  ladder:
    rules:
      - name: ladder
        plan: {strategy: fallback, params: {models: [claude-sonnet-4, glm-4.5, gpt-oss-120b]}}
  floor:
    rules:
      - name: small
        plan: {strategy: single, params: {model: gpt-oss-120b}}
budgets:
  tenants:
    acme: {daily_usd: 0.001, monthly_usd: 5}
    "*": {daily_usd: 100}
"""


def user(text: str, **kw: object) -> pb.CompleteRequest:
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)
    msg.params.max_output_tokens = 100
    return msg


def test_budget_lines_pick_the_tenant_entry_else_the_wildcard_and_the_policy():
    settings = BudgetsSettings(
        tenants={"acme": BudgetLimit(daily_usd=1, monthly_usd=10), "*": BudgetLimit(daily_usd=2)},
        policies={"default": BudgetLimit(monthly_usd=50)},
    )
    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC).timestamp()
    acme = budget_lines(settings, "acme", "default", now)
    assert [line.name for line in acme] == [
        "tenant 'acme' daily budget ($1.00, 2026-03-31)",
        "tenant 'acme' monthly budget ($10.00, 2026-03)",
        "policy 'default' monthly budget ($50.00, 2026-03)",
    ]
    day = acme[0]
    assert (day.tenant, day.policy) == ("acme", None)
    assert day.period_end - day.period_start == 86_400
    assert acme[1].period_end == datetime(2026, 4, 1, tzinfo=UTC).timestamp()
    other = budget_lines(settings, "globex", "other", now)
    assert [(line.limit_usd, line.tenant) for line in other] == [(2, "globex")]
    assert other[0].key != budget_lines(settings, "initech", "other", now)[0].key, "'*' counts each tenant apart"
    next_day = budget_lines(settings, "acme", "default", now + 3600)
    assert next_day[0].key != day.key and next_day[1].key != acme[1].key


async def test_200_concurrent_requests_never_exceed_the_tenant_budget(live):
    daemon, _, stub = await live(BUDGETED)

    async def one(i: int) -> pb.CompleteResponse | grpc.aio.AioRpcError:
        try:
            return await stub.Complete(user(f"question number {i}", tenant="acme", request_id=f"c{i}"), timeout=30)
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(200)))
    answered = [r for r in results if isinstance(r, pb.CompleteResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert answered and refused, "the budget should let some through and refuse the rest"
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "tenant 'acme' daily budget ($0.001, " in refused[0].details()
    spent = sum(r.total_cost_usd for r in answered)
    assert spent <= 0.001
    stats = await stub.GetStats(pb.GetStatsRequest(tenant="acme"))
    assert stats.rows[0].requests == len(answered)
    assert stats.rows[0].total_cost_usd <= 0.001
    layer = daemon.engine.pipeline.step("budget")
    assert isinstance(layer, BudgetLayer)
    day_line = budget_lines(daemon.config.raw.budgets, "acme", "default", time.time())[0]
    held, reserved = layer.store.usage(day_line.key)
    assert math.isclose(reserved, 0.0, abs_tol=1e-12), "every reservation is settled"
    assert math.isclose(held, spent, rel_tol=1e-9)
    # other tenants are untouched by acme's budget
    other = await stub.Complete(user("hello", tenant="globex"))
    assert other.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED


async def test_spend_survives_a_restart_and_is_refused_afterwards(tmp_path: Path, write_config):
    path = write_config(BUDGETED.replace("daily_usd: 0.001", "daily_usd: 0.0001"))
    options = DaemonOptions(config_path=str(path), data_dir=tmp_path, entry_points=False)

    def request(i: int) -> Request:
        return convert.request_from_proto(user(f"q{i}"), tenant="acme", deadline=None)

    first = build_daemon(options)
    answered = 0
    with pytest.raises(ResourceExhausted, match="tenant 'acme' daily budget"):
        for i in range(50):
            await first.engine.complete(request(i))
            answered += 1
    assert answered >= 1
    await first.aclose()

    second = build_daemon(options)
    with pytest.raises(ResourceExhausted, match="tenant 'acme' daily budget"):
        await second.engine.complete(request(99))  # the ledger's spend seeds the new store
    await second.aclose()


DOWNGRADE = (
    BUDGETED.replace("daily_usd: 0.001", "daily_usd: 0.0002") + "  on_exceeded: downgrade\n  downgrade_policy: floor\n"
)


async def test_downgrade_routes_an_over_budget_request_to_the_downgrade_policy(live):
    _, _, stub = await live(DOWNGRADE)
    resp = await stub.Complete(user("a hard one", tenant="acme", policy="ladder"))
    assert [a.model for a in resp.attempts] == ["gpt-oss-120b"]
    assert (resp.explanation.policy, resp.explanation.rule) == ("floor", "small")
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert any(w.startswith("downgraded to policy 'floor': tenant 'acme' daily") for w in resp.explanation.warnings)
    for i in range(20):  # spend what is left (new prompts: no cache hits); then not even the downgrade fits
        try:
            await stub.Complete(user(f"more work {i}", tenant="acme", policy="ladder"))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "; downgraded to policy 'floor': tenant 'acme' daily budget" in exc.details()
            break
    else:
        pytest.fail("the budget was never exhausted")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("  downgrade_policy: floor\n", "budgets: on_exceeded 'downgrade' needs downgrade_policy"),
        ("downgrade_policy: floor", "budgets.downgrade_policy: unknown policy 'basement'"),
    ],
)
def test_a_downgrade_needs_an_existing_policy(tmp_path: Path, write_config, change: str, message: str):
    text = DOWNGRADE.replace(change, "" if change.startswith(" ") else "downgrade_policy: basement")
    with pytest.raises(ConfigError) as info:
        build_daemon(DaemonOptions(config_path=str(write_config(text)), data_dir=tmp_path, entry_points=False))
    assert message in str(info.value)


KNOWN = "(known: default, floor, ladder)"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "downgrade_policy: floor",
            "downgrade_policy: basement",
            f"budgets.downgrade_policy: unknown policy 'basement' {KNOWN}",
        ),
        (
            "on_exceeded:",
            "policies: {ladr: {daily_usd: 1}}\n  on_exceeded:",
            f"budgets.policies.ladr: unknown policy 'ladr' {KNOWN}",
        ),
        (
            "on_exceeded:",
            "store: {kind: redsi}\n  on_exceeded:",
            "budgets.store.kind: unknown budget store 'redsi' (known: local)",
        ),
    ],
)
def test_policyd_check_refuses_budgets_naming_what_does_not_exist(write_config, capsys, old, new, error):
    """These used to pass `policyd check` (and a reload) and fail only at boot, or never (a policy budget)."""
    path = write_config(DOWNGRADE.replace(old, new))
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == f"policyd: error: {path}: {error}\n"


async def test_policy_budget_counts_every_tenant_together(live):
    config = BUDGETED.replace('    "*": {daily_usd: 100}\n', "") + "  policies:\n    ladder: {daily_usd: 0.0001}\n"
    _, _, stub = await live(config)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("x", tenant="globex", policy="ladder"))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "policy 'ladder' daily budget" in info.value.details()
    ok = await stub.Complete(user("x", tenant="globex"))  # the default policy has no budget
    assert ok.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED


class CountingStore:
    """A third-party store: counts calls, delegates nothing, refuses past a fixed total."""

    instances: list[CountingStore] = []

    def __init__(self, settings: object, context: BudgetStoreContext) -> None:
        self.limit_calls = settings.max_requests  # type: ignore[attr-defined]
        self.reserved = 0
        self.settled: list[tuple[float, float]] = []
        CountingStore.instances.append(self)

    async def reserve(self, lines: list[BudgetLine], usd: float) -> BudgetRefusal | None:
        if self.reserved >= self.limit_calls:
            return BudgetRefusal(line=lines[0], spent_usd=0.0, reserved_usd=0.0)
        self.reserved += 1
        return None

    async def settle(self, lines: list[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        self.settled.append((reserved_usd, spent_usd))

    async def aclose(self) -> None:
        return None


def counting_plugin() -> object:
    from pydantic import BaseModel

    class Settings(BaseModel):
        max_requests: int

    class Plugin:
        @hookimpl
        def policyd_register_budget_stores(self, register: Callable[[BudgetStoreSpec], None]) -> None:
            register(BudgetStoreSpec(kind="counting", factory=CountingStore, settings=Settings))

    return Plugin()


async def test_a_plugin_budget_store_is_used_when_the_config_names_it(tmp_path: Path, write_config):
    host = default_host(entry_points=False)
    host.add(counting_plugin(), "counting", version="1.0", origin="direct")
    text = BUDGETED + "  store: {kind: counting, max_requests: 2}\n"
    daemon = build_daemon(
        DaemonOptions(config_path=str(write_config(text)), data_dir=tmp_path, entry_points=False), host
    )
    outcomes = []
    for i in range(2):
        request = convert.request_from_proto(user(f"q{i}"), tenant="acme", deadline=None)
        outcomes.append(await daemon.engine.complete(request))
    with pytest.raises(ResourceExhausted, match="tenant 'acme' daily budget"):
        await daemon.engine.complete(convert.request_from_proto(user("q3"), tenant="acme", deadline=None))
    store = CountingStore.instances[-1]
    assert [spent for _, spent in store.settled] == [o.total_cost_usd for o in outcomes]
    assert all(reserved >= spent for reserved, spent in store.settled)
    await daemon.aclose()


class BrokenStore:
    """A shared store whose backend is down."""

    def __init__(self, settings: object, context: BudgetStoreContext) -> None:
        self.context = context

    async def reserve(self, lines: list[BudgetLine], usd: float) -> BudgetRefusal | None:
        raise ConnectionError("connection refused by the store's backend")

    async def settle(self, lines: list[BudgetLine], reserved_usd: float, spent_usd: float) -> None:
        raise AssertionError("nothing was reserved")

    async def aclose(self) -> None:
        return None


async def test_a_failing_budget_store_fails_closed_as_unavailable(live):
    host = default_host(entry_points=False)

    class Plugin:
        @hookimpl
        def policyd_register_budget_stores(self, register: Callable[[BudgetStoreSpec], None]) -> None:
            register(BudgetStoreSpec(kind="broken", factory=BrokenStore))

    host.add(Plugin(), "broken", version="1.0", origin="direct")
    _, _, stub = await live(BUDGETED + "  store: {kind: broken}\n", host=host)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("q", tenant="acme"))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "budget store 'broken' is unavailable (ConnectionError)"


@pytest.mark.parametrize(
    ("store", "path"),
    [("{kind: redis}", "budgets.store.kind"), ("{kind: local, shards: 3}", "budgets.store.shards")],
)
def test_a_bad_budget_store_names_the_key(tmp_path: Path, write_config, store: str, path: str):
    text = BUDGETED + f"  store: {store}\n"
    with pytest.raises(ConfigError) as info:
        build_daemon(DaemonOptions(config_path=str(write_config(text)), data_dir=tmp_path, entry_points=False))
    assert f"policy.yaml: {path}" in str(info.value)


def test_bad_budget_values_name_the_key(make_config: Callable[[str], Config]):
    with pytest.raises(ConfigError) as info:
        make_config(BUDGETED.replace("daily_usd: 0.001", "daily_usd: -1"))
    assert "budgets.tenants.acme.daily_usd" in str(info.value)


def test_the_ledger_demo_policy_loads(make_config: Callable[[str], Config]):
    demo = Path(__file__).resolve().parents[2] / "examples" / "ledger-demo.yaml"
    config = make_config(demo.read_text(encoding="utf-8"))
    assert config.raw is not None and config.raw.budgets is not None
    assert config.raw.budgets.tenants["globex"].daily_usd == 0.065

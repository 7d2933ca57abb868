"""Turns a benchmark run's results into the printed figures and the verdict against the targets."""

from __future__ import annotations

import math
from typing import Any

TARGETS = {
    "added_p50_ms": 1.0,
    "added_p99_ms": 3.0,
    "throughput_vs_echo": 0.60,
    "cache_vs_echo": 0.80,
    "rss_mb": 150.0,
    "rss_growth_pct": 5.0,
}

TITLES = {
    "echo": "(a) bare grpc.aio echo",
    "direct": "(b) direct HTTP to upstream",
    "passthrough": "(c) policyd passthrough",
    "default": "(c') passthrough, default config",
    "cache": "(d) policyd cache hits",
    "failfast": "(e) policyd, failing rung",
}


def _f(x: float, unit: str = "") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}{unit}"


def render(results: dict[str, Any]) -> str:
    sc = results["scenarios"]
    echo, direct = sc.get("echo"), sc.get("direct")
    rows = [
        ("scenario", "p50 ms", "p99 ms", "+p50 vs b", "+p99 vs b", "+p50 vs a", "max RPS", "x(a)", "x(b)", "CPU us/req")
    ]
    for key, title in TITLES.items():
        if key not in sc:
            continue
        o, c = sc[key]["open"], sc[key]["closed"]
        rows.append(
            (
                title,
                _f(o["p50_ms"]),
                _f(o["p99_ms"]),
                _f(o["p50_ms"] - direct["open"]["p50_ms"]) if direct and key not in ("echo", "direct") else "",
                _f(o["p99_ms"] - direct["open"]["p99_ms"]) if direct and key not in ("echo", "direct") else "",
                _f(o["p50_ms"] - echo["open"]["p50_ms"]) if echo and key != "echo" else "",
                f"{c['rps']:.0f}",
                f"{c['rps'] / echo['closed']['rps']:.2f}" if echo else "",
                f"{c['rps'] / direct['closed']['rps']:.2f}" if direct else "",
                f"{sc[key].get('cpu_us_per_req', math.nan):.0f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    s = results.get("settings", {})
    lines = [
        f"policyd benchmark, {results.get('date', '')}, {results.get('machine', '')},"
        f" event loop {results.get('event_loop', 'asyncio')}",
        f"open loop at {s.get('rate')} RPS and closed loop with {s.get('concurrency')} workers,"
        f" {s.get('duration')} s each, best of {s.get('repeat')}; upstream latency {s.get('upstream_latency_ms')} ms;"
        f" load average {results.get('load_before', 0):.1f} before, {results.get('load_after', 0):.1f} after",
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    soak = results.get("soak")
    if soak:
        lines.append(
            f"(f) soak: {soak['count']} requests ({soak['errors']} errors) at {soak['rps']:.0f} RPS;"
            f" RSS start {soak['rss_start_mb']} MB, peak {soak['rss_peak_mb']} MB, end {soak['rss_end_mb']} MB"
            f" ({soak['rss_growth_pct']:+.2f}%)"
        )
    for key, note in results.get("notes", {}).items():
        lines.append(f"note ({key}): {note}")
    lines += ["targets:", *verdicts(results), *hotpath_lines(results)]
    return "\n".join(lines)


def verdicts(results: dict[str, Any]) -> list[str]:
    sc = results["scenarios"]
    out = []

    def judge(name: str, value: float | None, limit: float, higher_is_better: bool, fmt: str) -> None:
        if value is None:
            out.append(f"  {name}: not measured")
            return
        ok = value >= limit if higher_is_better else value <= limit
        sign = ">=" if higher_is_better else "<="
        out.append(f"  {name}: {fmt.format(value)} (target {sign} {fmt.format(limit)}) {'ok' if ok else 'MISSED'}")

    pt, echo, direct = sc.get("passthrough"), sc.get("echo"), sc.get("direct")
    # Without the HTTP provider the passthrough makes no upstream hop: its overhead is over the echo server.
    base = echo if "passthrough" in results.get("notes", {}) else direct
    if pt and base:
        judge(
            "added p50 at 100 RPS",
            pt["open"]["p50_ms"] - base["open"]["p50_ms"],
            TARGETS["added_p50_ms"],
            False,
            "{:.2f} ms",
        )
        judge(
            "added p99 at 100 RPS",
            pt["open"]["p99_ms"] - base["open"]["p99_ms"],
            TARGETS["added_p99_ms"],
            False,
            "{:.2f} ms",
        )
    if pt and echo:
        judge(
            "throughput vs echo",
            pt["closed"]["rps"] / echo["closed"]["rps"],
            TARGETS["throughput_vs_echo"],
            True,
            "{:.2f}",
        )
        judge(
            "throughput vs echo, by server CPU per request",
            echo["cpu_us_per_req"] / pt["cpu_us_per_req"],
            TARGETS["throughput_vs_echo"],
            True,
            "{:.2f}",
        )
    cache = sc.get("cache")
    judge(
        "cache hits vs echo",
        cache["closed"]["rps"] / echo["closed"]["rps"] if cache and echo else None,
        TARGETS["cache_vs_echo"],
        True,
        "{:.2f}",
    )
    soak = results.get("soak")
    judge("RSS peak", soak["rss_peak_mb"] if soak else None, TARGETS["rss_mb"], False, "{:.1f} MB")
    judge(
        "RSS growth over the soak",
        soak["rss_growth_pct"] if soak else None,
        TARGETS["rss_growth_pct"],
        False,
        "{:.2f}%",
    )
    return out


HOTPATH_TARGETS = {"default": 0.50, "cache": 0.70}
"""Issue #21: the echo server's CPU per request ÷ policyd's, with the default config and for cache hits."""
HOTPATH_ROWS = {
    "default": "passthrough, default config (cache + ledger on)",
    "passthrough": "passthrough, cache off",
    "cache": "cache hits",
}


def hotpath_lines(results: dict[str, Any]) -> list[str]:
    """Issue #21's hot path: server CPU µs per request and its ratio to the echo server, with targets."""
    sc = results["scenarios"]
    echo = sc.get("echo", {}).get("cpu_us_per_req")
    if not echo:
        return []
    out = ["hot path (server CPU per request, closed loop; ratio = echo's CPU per request / policyd's):"]
    for key, title in HOTPATH_ROWS.items():
        if key not in sc:
            continue
        cpu = sc[key]["cpu_us_per_req"]
        ratio = echo / cpu
        target = HOTPATH_TARGETS.get(key)
        verdict = f" (target >= {target:.2f}) {'ok' if ratio >= target else 'MISSED'}" if target else ""
        out.append(f"  {title}: {cpu:.0f} us/req, {ratio:.2f} of echo ({echo:.0f} us/req){verdict}")
    return out

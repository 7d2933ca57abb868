"""Turns a benchmark run's results into the printed figures and the verdict against the targets.

The summary table
-----------------

``make bench`` ends with one table: figure, measured, target, met/missed. Its rows come
from the bench modules, each contributing a list of :class:`Row`. The contract for a bench
module that plugs in (one line in ``bench/run.py``'s ``MODULES``):

* ``run(args: argparse.Namespace) -> dict``: measures (printing what it likes) and returns
  JSON-serializable figures; ``bench/run.py`` stores them under the module's key in
  ``results.json``. It reads its settings from ``args`` (``args.duration``, ``args.quick``,
  its own flags). If it raises, the runner prints why, stores ``{"error": "..."}`` under its
  key, and goes on with the other parts.
* ``rows(results: dict) -> list[Row]``: the summary's rows, from what ``run`` returned (so a
  saved ``results.json`` can be rendered again; ``{"error": ...}`` included). A figure that
  was not measured is a row with ``measured=None`` and a ``note`` saying why (e.g.
  ``"not installed: pip install ..."``): the table shows it as not measured, never fails.
* optional ``add_arguments(parser)``: its own flags on ``bench/run.py``'s parser;
  optional ``render(results) -> str``: its detailed table, printed after ``run``.

A :class:`Row` is ``(name, measured, target, unit, comparator)``: ``comparator`` is ``"<="``
(lower is better: latencies, CPU, seconds) or ``">="`` (higher is better: ratios,
throughput). ``Row.met`` compares; :func:`summary` lays out the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Comparator = Literal["<=", ">="]


@dataclass(frozen=True)
class Row:
    """One figure of the summary table, against its target."""

    name: str
    measured: float | None
    """None: not measured (say why in ``note``)."""
    target: float
    unit: str = ""
    comparator: Comparator = "<="
    note: str = ""

    def __post_init__(self) -> None:
        if self.comparator not in ("<=", ">="):
            raise ValueError(f"Row {self.name!r}: comparator must be '<=' or '>=', not {self.comparator!r}")

    @property
    def met(self) -> bool | None:
        """True or False against the target; None when not measured."""
        if self.measured is None or math.isnan(self.measured):
            return None
        return self.measured <= self.target if self.comparator == "<=" else self.measured >= self.target


def _value(x: float, unit: str) -> str:
    digits = 0 if abs(x) >= 100 else 2 if abs(x) >= 0.1 or x == 0 else 3
    text = f"{x:.{digits}f}"
    return f"{text} {unit}" if unit and unit != "x" else f"{text}{unit}"


def summary(rows: list[Row]) -> str:
    """The closing table: figure, measured, target, verdict (met / MISSED / not measured)."""
    table = [("figure", "measured", "target", "")]
    for row in rows:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[row.met]
        measured = "-" if row.met is None else _value(row.measured or 0.0, row.unit)
        if row.note:
            verdict = f"{verdict}: {row.note}"
        table.append((row.name, measured, f"{row.comparator} {_value(row.target, row.unit)}", verdict))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    lines = []
    for i, (name, measured, target, verdict) in enumerate(table):
        line = f"{name.ljust(widths[0])}  {measured.rjust(widths[1])}  {target.rjust(widths[2])}  {verdict}"
        lines.append(line.rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 12)
    return "\n".join(lines)


TARGETS = {
    "added_p50_ms": 1.0,
    "added_p99_ms": 3.0,
    "rss_mb": 150.0,
    "rss_growth_pct": 5.0,
}

VS_ECHO: list[tuple[str, str, float]] = [
    # (scenario key, figure, target): the scenario's efficiency against the bare echo server,
    # by server CPU per request (echo's / the scenario's). One line per scenario.
    ("default", "passthrough, default config (cache + ledger on) vs echo, by CPU", 0.50),
    ("passthrough", "passthrough (cache off) vs echo, by CPU", 0.50),
    ("cache", "cache hits vs echo, by CPU", 0.70),
]
"""Issue #21's goals: a passthrough uses at least half of the echo server's efficiency, a cache hit 0.7."""

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
    titles = {**TITLES, **{key: key for key in sc if key not in TITLES}}  # a new scenario shows under its key
    for key, title in titles.items():
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
            f" ({soak['rss_growth_pct']:+.2f}%), {soak.get('rss_committed_mb', float('nan'))} MB once the ledger"
            f" committed; data dir fsync up to {soak.get('fsync_max_ms', float('nan')):.0f} ms"
            + (f"; ledger write lock held {soak['ledger_held']} (--soak-hold-ms)" if soak.get("ledger_held") else "")
        )
    for key, note in results.get("notes", {}).items():
        lines.append(f"note ({key}): {note}")
    return "\n".join(lines)


def rows(results: dict[str, Any]) -> list[Row]:
    """The summary rows of ``bench/run.py``'s own scenarios (echo, direct, the policyd scenarios, soak)."""
    sc = results.get("scenarios", {})
    pt, echo, direct = sc.get("passthrough"), sc.get("echo"), sc.get("direct")
    out: list[Row] = []
    # Without the HTTP provider the passthrough makes no upstream hop: its overhead is over the echo server.
    base = echo if "passthrough" in results.get("notes", {}) else direct
    for q, limit in (("p50", TARGETS["added_p50_ms"]), ("p99", TARGETS["added_p99_ms"])):
        added = pt["open"][f"{q}_ms"] - base["open"][f"{q}_ms"] if pt and base else None
        out.append(
            Row(f"passthrough added {q} at {results.get('settings', {}).get('rate', 100):g} RPS", added, limit, "ms")
        )
    for key, name, target in VS_ECHO:
        out.append(Row(name, _vs_echo(sc, key), target, "x", ">="))
    if pt and echo:
        limit = echo["cpu_us_per_req"] / VS_ECHO[0][2]
        out.append(
            Row("CPU per request, passthrough", pt["cpu_us_per_req"], limit, "us", "<=", "target: echo's / 0.50")
        )
    soak = results.get("soak")
    skipped = "" if soak else "soak skipped (--soak 0)"
    out.append(
        Row("RSS peak over the soak", soak["rss_peak_mb"] if soak else None, TARGETS["rss_mb"], "MB", "<=", skipped)
    )
    growth = soak["rss_growth_pct"] if soak else None
    stalled = soak.get("fsync_max_ms", 0.0) if soak else 0.0
    note = skipped or (f"disk stalled: fsync up to {stalled:.0f} ms (docs/benchmarks.md)" if stalled >= 250 else "")
    if soak and soak.get("ledger_held"):
        note = "; ".join(n for n in (note, f"ledger write lock held {soak['ledger_held']} on purpose") if n)
    out.append(Row("RSS growth over the soak", growth, TARGETS["rss_growth_pct"], "%", "<=", note))
    return out


def _vs_echo(sc: dict[str, Any], key: str) -> float | None:
    echo, scenario = sc.get("echo"), sc.get(key)
    if not echo or not scenario or not scenario.get("cpu_us_per_req"):
        return None
    return float(echo["cpu_us_per_req"] / scenario["cpu_us_per_req"])

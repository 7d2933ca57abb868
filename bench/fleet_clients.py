"""Which client library the fleet stores use, by measurement (the choice is recorded in docs/ledger.md).

Starts a private redis-server and PostgreSQL (tests/fleet/servers.py) and times, on one event loop:
  - Valkey/Redis: an EVALSHA of a small script (what a budget reservation is), sequential and 64 concurrent,
    with redis-py's asyncio client and valkey-py's;
  - PostgreSQL: a 100-row batched INSERT and a one-row SELECT, asyncpg versus psycopg 3 (async, pooled).
Prints microseconds per operation and the ratio. ``nice .venv/bin/python bench/fleet_clients.py``
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fleet.servers import PostgresServer, RedisServer

SCRIPT = "local v = redis.call('HINCRBYFLOAT', KEYS[1], 'r', ARGV[1]) return v"
N = 3000


async def _time(op: Any, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await op()

    t = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.perf_counter() - t) / n * 1e6


async def redis_leg(url: str) -> dict[str, tuple[float, float]]:
    import importlib

    out: dict[str, tuple[float, float]] = {}
    for name, module in (("redis-py", "redis.asyncio"), ("valkey-py", "valkey.asyncio")):
        try:
            mod: Any = importlib.import_module(module)
        except ImportError:
            print(f"{name} not installed (pip install {name.removesuffix('-py')}): skipped")
            continue
        client = mod.from_url(url, max_connections=64)
        script = client.register_script(SCRIPT)

        async def op(script: Any = script) -> None:
            await script(keys=["{b}:x"], args=[0.001])

        await _time(op, 200, 8)  # warm the pool and the script cache
        out[name] = (await _time(op, N, 1), await _time(op, N, 64))
        await client.aclose()
    return out


async def pg_leg(dsn: str) -> dict[str, tuple[float, float]]:
    import asyncpg

    rows = [(f"id{i}", 0.001 * i) for i in range(100)]
    out: dict[str, tuple[float, float]] = {}
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
    await pool.execute("CREATE TABLE IF NOT EXISTS b1 (id text, usd double precision)")

    async def ins() -> None:
        await pool.executemany("INSERT INTO b1 VALUES ($1, $2)", rows)

    async def sel() -> None:
        await pool.fetchval("SELECT count(*) FROM b1 WHERE id = $1", "id7")

    out["asyncpg"] = (await _time(ins, 300, 4), await _time(sel, N, 16))
    await pool.close()
    return out


async def psycopg_leg(dsn: str) -> tuple[float, float]:
    from psycopg_pool import AsyncConnectionPool

    rows = [(f"id{i}", 0.001 * i) for i in range(100)]
    async with AsyncConnectionPool(dsn, min_size=4, max_size=4, open=False) as pool:
        await pool.open(wait=True)

        async def ins() -> None:
            async with pool.connection() as conn, conn.cursor() as cur:
                await cur.executemany("INSERT INTO b1 VALUES (%s, %s)", rows)

        async def sel() -> None:
            async with pool.connection() as conn:
                await (await conn.execute("SELECT count(*) FROM b1 WHERE id = %s", ("id7",))).fetchone()

        return await _time(ins, 300, 4), await _time(sel, N, 16)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "r")
        redis.directory.mkdir()
        redis.start()
        pg = PostgresServer(Path(tempfile.mkdtemp(prefix="policyd-bench-pg-")))  # reachable by nobody
        pg.init()
        pg.start()
        pg.create_db()
        try:
            r = asyncio.run(redis_leg(redis.url))
            p = asyncio.run(pg_leg(pg.dsn))
            try:
                p["psycopg3"] = asyncio.run(psycopg_leg(pg.dsn))
            except ImportError:
                print("psycopg and psycopg_pool not installed: the psycopg 3 leg is skipped")
        finally:
            redis.stop()
            pg.stop()
            shutil.rmtree(pg.directory, ignore_errors=True)
    print(f"{'library':<10} {'seq us/op':>10} {'conc us/op':>11}")
    for name, (seq, conc) in {**r, **p}.items():
        print(f"{name:<10} {seq:>10.1f} {conc:>11.1f}")
    if "valkey-py" in r:
        print(f"valkey-py / redis-py (64 concurrent): {r['valkey-py'][1] / r['redis-py'][1]:.2f}")
    if "psycopg3" in p:
        print(f"psycopg3 / asyncpg (batch insert): {p['psycopg3'][0] / p['asyncpg'][0]:.2f}")


if __name__ == "__main__":
    main()

"""Fleet mode: budgets, rate limits and (later) cache and ledger shared by several daemons.

The embedded default (in-memory budgets and rate limits, SQLite ledger, disk cache) is
untouched; a ``fleet:`` section in the policy file moves the shared state to Valkey or
Redis OSS 7+ (``policyd.fleet.valkey``) and PostgreSQL. ``docs/deploy.md`` shows a fleet.
"""

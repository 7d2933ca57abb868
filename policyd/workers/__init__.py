"""``policyd serve --workers N``: N serving processes behind one listening address.

* :mod:`.count`: how many workers by default (the cores this process may use, under a
  cgroup CPU quota) and the flag's validation.
* :mod:`.ports`: the supervisor picks each TCP port once and holds it (bound, not listening,
  ``SO_REUSEPORT``), so every worker binds the same address.
* :mod:`.supervisor`: starts the workers, forwards SIGHUP, restarts a crashed worker with
  backoff, drains them all on SIGTERM; hosts the group's shared state (:mod:`.state`).
* :mod:`.link`: a worker's side: dies with the supervisor, and draws rate limits, budgets,
  idempotency keys and ledger flushes from the group over an inherited Unix socket (:mod:`.peer`).

``docs/workers.md`` is the user's view.
"""

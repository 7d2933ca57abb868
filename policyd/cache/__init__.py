"""The response cache: never pay twice for the same model call.

Modules, one job each: ``settings`` (the ``cache:`` section), ``keys`` (what makes
two calls the same), ``codec`` (entries as JSON bytes), ``store`` (diskcache on
disk, never pickling), ``writer`` (writes off the hot path), ``singleflight``
(identical concurrent calls share one upstream call), ``stats`` (counters),
``layer`` (the engine call layer) and ``service`` (assembles them for the daemon).

This package imports nothing at import time so that ``policyd.config.schema`` can
import the settings model without pulling in diskcache.
"""

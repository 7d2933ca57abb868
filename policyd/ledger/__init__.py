"""The ledger: every attempt and outcome in a local SQLite file, caller-reported outcomes,
cost per successful outcome, and the tenant budgets that read its spend.

This package module imports nothing on purpose: ``policyd.config.schema`` imports
:mod:`policyd.ledger.settings`, and the rest of the package imports the engine.
"""

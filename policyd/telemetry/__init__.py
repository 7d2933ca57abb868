"""Telemetry: OpenTelemetry traces, metrics and logs in the GenAI conventions, redaction, decision events.

Kept import-light on purpose: ``policyd.config.schema`` imports the ``telemetry:``
section model from here, so nothing in this package's ``__init__`` pulls in the SDK.
"""

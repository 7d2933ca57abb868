"""The OpenAI-compatible HTTP front door: a second adapter onto the same engine as gRPC.

``app`` (routes and the request's way through), ``convert`` (body → domain Request),
``intent`` (``x-policyd-*`` headers and metadata), ``response`` and ``sse`` (Outcome →
``chat.completion`` and its chunks), ``errors`` (domain errors → OpenAI error JSON),
``auth`` (the ``auth:`` section's tokens) and ``server`` (start and stop).
"""

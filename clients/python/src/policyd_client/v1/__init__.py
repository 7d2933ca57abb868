"""Generated protobuf and gRPC stubs of ``protos/policyd/v1`` (do not edit; run scripts/gen.py)."""

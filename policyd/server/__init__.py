"""The grpc.aio server: thin servicers, interceptors, health and shutdown."""

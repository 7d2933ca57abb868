"""Benchmarks: overhead, throughput and memory of policyd against a bare gRPC server and direct HTTP."""

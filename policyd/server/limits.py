"""Request limits checked before translation: counts and sizes a caller may ask for.

The message size is bounded by grpc itself (``limits.max_receive_message_bytes``);
these bound what a request inside that size may make the daemon do. Each failure is
INVALID_ARGUMENT naming the field and the limit.
"""

from __future__ import annotations

from policyd.config.security import LimitsConfig
from policyd.errors import InvalidArgument
from policyd.v1 import policyd_pb2 as pb


def check_request_limits(msg: pb.CompleteRequest, limits: LimitsConfig) -> None:
    if len(msg.messages) > limits.max_messages:
        raise InvalidArgument("messages", f"at most {limits.max_messages} messages (got {len(msg.messages)})")
    if len(msg.tools) > limits.max_tools:
        raise InvalidArgument("tools", f"at most {limits.max_tools} tools (got {len(msg.tools)})")
    if not msg.HasField("params"):  # most requests: reading ``msg.params`` would make an empty one
        return
    asked = msg.params.max_output_tokens if msg.params.HasField("max_output_tokens") else 0
    if asked > limits.max_output_tokens:
        raise InvalidArgument("params.max_output_tokens", f"at most {limits.max_output_tokens} (got {asked})")

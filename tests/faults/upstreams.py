"""Policies that send model calls over real HTTP to the fake OpenAI-compatible upstream, and its replies."""

from __future__ import annotations

from typing import Any

OPENAI_POLICY = """
version: faults
providers:
  up:
    kind: openai-compatible
    base_url: "{url}/v1"
    {key}
    timeouts: {{first_byte_s: {first_byte_s}, between_chunks_s: 0.5}}
  spare: {{kind: openai-compatible, base_url: "{url}/spare/v1", timeouts: {{first_byte_s: {first_byte_s}}}}}
retries:
  max_attempts: {max_attempts}
  backoff_base_s: 0.01
  budget_ratio: 0.1
  min_retries: 2
  breaker: {{failures: {breaker}}}
models:
  local-qwen: &local
    provider: up
    upstream: "qwen3:8b"
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.4
    context_window: 32768
    license: apache-2.0
    local: true
  spare-qwen:
    <<: *local
    provider: spare
policies:
  default:
    rules:
      - name: with-fallback
        match: {{tasks: [fallback]}}
        plan: {{strategy: fallback, params: {{models: [local-qwen, spare-qwen]}}}}
      - name: local
        plan: {{strategy: single, params: {{model: local-qwen}}}}
{extra}
"""


def openai_policy(
    url: str,
    *,
    first_byte_s: float = 5,
    max_attempts: int = 2,
    breaker: int = 1000,
    key_env: str | None = None,
    extra: str = "",
) -> str:
    key = f"api_key_env: {key_env}" if key_env else ""
    return OPENAI_POLICY.format(
        url=url, first_byte_s=first_byte_s, max_attempts=max_attempts, breaker=breaker, key=key, extra=extra
    )


def completion(text: str = "ok", prompt_tokens: int = 3, completion_tokens: int = 1) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "qwen3:8b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "model": "qwen3:8b",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }

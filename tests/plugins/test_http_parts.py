"""The shared HTTP parts on their own: the SSE decoder, Retry-After parsing, status classes, key files."""

from __future__ import annotations

import email.utils
import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from policyd_plugins.http import ApiKey, SseDecoder, SseEvent, classify_status, parse_retry_after

STREAM = (
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n: keep-alive\n\ndata: line one\ndata: line two\n\nid: 7\ndata: last'
)


def test_sse_decoder_handles_crlf_comments_multiline_data_and_a_missing_final_blank_line():
    d = SseDecoder()
    events = d.feed(STREAM) + d.close()
    assert events == [
        SseEvent("message_start", '{"a":1}'),
        SseEvent("message", "line one\nline two"),
        SseEvent("message", "last", id="7"),
    ]


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_split(cuts):
    d = SseDecoder()
    events: list[SseEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += d.feed(STREAM[last:cut])
        last = cut
    events += d.feed(STREAM[last:]) + d.close()
    whole = SseDecoder()
    assert events == whole.feed(STREAM) + whole.close()


def test_sse_decoder_reads_data_fields_with_or_without_the_space_and_an_empty_data_line():
    d = SseDecoder()
    events = d.feed(b"data:a\ndata: b\ndata:  c\n\ndata\n\ndata:\ndata:\n\n: ping\n\nevent: x\n\n")
    assert events == [
        SseEvent("message", "a\nb\n c"),
        SseEvent("message", ""),
        SseEvent("message", "\n"),
        SseEvent("x", ""),
    ]


def test_sse_decoder_refuses_an_endless_event():
    d = SseDecoder(max_event_bytes=100)
    with pytest.raises(ValueError, match="exceeded 100 bytes"):
        d.feed(b"data: " + b"x" * 200)


def test_retry_after_in_seconds_milliseconds_and_http_dates():
    assert parse_retry_after({"Retry-After": "12"}) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after({"Retry-After": date}, now=now) or 0) <= 30
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_status_classes(status, retryable):
    err = classify_status("p", status, b'{"error": {"message": "why"}}', {"Retry-After": "3"})
    assert err.retryable is retryable and err.status == status
    assert err.retry_after_s == (3.0 if retryable else None)
    assert err.summary.startswith(f"p: HTTP {status}") and "why" not in err.summary
    assert err.detail == "why" and str(err).endswith(": why"), "the upstream's words reach the caller only"


def test_key_file_is_reread_when_the_secret_rotates(tmp_path):
    path = tmp_path / "key"
    path.write_text("first-key\n")
    key = ApiKey(file=str(path))
    assert key.reveal() == "first-key"
    path.write_text("second-key\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert key.reveal() == "second-key"
    assert "second-key" not in repr(key) and str(path) in repr(key)
    assert key.redact("echo second-key back") == "echo [redacted] back"


def test_the_latency_copy_of_a_response_keeps_every_other_field():
    from dataclasses import fields, replace

    from policyd_plugins.http.provider import _with_latency

    from policyd.types import Message, ModelResponse, Role, Usage

    response = ModelResponse(
        message=Message(role=Role.ASSISTANT, content="hi"),
        usage=Usage(input_tokens=3, output_tokens=4, estimated=True),
        finish_reason="length",
        response_model="m-1",
        logprobs=(-0.5,),
        cached=True,
        latency_ms=1.0,
    )
    assert [f.name for f in fields(ModelResponse)][-1] == "latency_ms"
    assert _with_latency(response, 12.5) == replace(response, latency_ms=12.5)

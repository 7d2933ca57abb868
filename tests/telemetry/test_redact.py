"""The scrubber: secret shapes, known secret values, and every log record."""

from __future__ import annotations

import logging

import pytest

from policyd.telemetry.redact import REDACTED, Scrubber, install_log_scrubber


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi_123", "Authorization: [REDACTED]"),
        ("{'authorization': 'Basic dXNlcjpwYXNz', 'x': 1}", "{'authorization': '[REDACTED]', 'x': 1}"),
        ("token is bearer eyJhbGciOi.payload.sig", "token is bearer [REDACTED]"),
        (
            "GET https://generativelanguage.googleapis.com/v1/models:gen?key=AIzaSyA1234567890abcdefghijklmnopqrstu&alt=sse",
            "GET https://generativelanguage.googleapis.com/v1/models:gen?key=[REDACTED]&alt=sse",
        ),
        ("https://svc/x?access_token=abc123&page=2", "https://svc/x?access_token=[REDACTED]&page=2"),
        ("postgres://admin:hunter22@db:5432/x", "postgres://[REDACTED]@db:5432/x"),
        ('{"api_key": "abc123xyz", "x-api-key": "zzz"}', '{"api_key": "[REDACTED]", "x-api-key": "[REDACTED]"}'),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUv", "key [REDACTED]"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "anthropic [REDACTED]"),
        ("groq gsk_abcdefghijklmnopqrstuvwxyz0123", "groq [REDACTED]"),
        ("aws AKIAABCDEFGHIJKLMNOP", "aws [REDACTED]"),
    ],
)
def test_secret_shapes_are_redacted(text, expected):
    assert Scrubber().scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512&input_tokens=30",
        "basic authentication is not supported",
        "the tokenizer splits 'sk-' prefixes",
        "gen_ai.usage.input_tokens",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert Scrubber().scrub(text) == text


def test_known_secret_values_from_env_and_provider_settings_are_redacted_anywhere():
    s = Scrubber()
    env = {"MY_VENDOR_API_KEY": "plainvalue-no-shape-42", "PATH": "/usr/bin:/bin", "SHORT_TOKEN": "abc"}
    s.add_secrets_from_env(env)
    s.add_secrets_from_settings(
        {"base_url": "http://x", "api_key_env": "OTHER", "nested": {"token": "tok-tok-tok-9"}},
        {"OTHER": "other-secret-value"},
    )
    text = "saw plainvalue-no-shape-42 and other-secret-value and tok-tok-tok-9 in /usr/bin with abc"
    assert s.scrub(text) == f"saw {REDACTED} and {REDACTED} and {REDACTED} in /usr/bin with abc"


def test_otlp_headers_values_are_known_secrets():
    s = Scrubber()
    s.add_secrets_from_env({"OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=hc-team-key-123,dataset=prod"})
    assert s.scrub("header hc-team-key-123") == f"header {REDACTED}"


def test_log_records_are_scrubbed_with_arguments_and_tracebacks(caplog):
    install_log_scrubber()
    install_log_scrubber()  # idempotent
    log = logging.getLogger("test.redact")
    with caplog.at_level(logging.INFO):
        log.info("calling %s", "https://x/y?key=AIzaSyA1234567890abcdefghijklmnopqrstu")
        try:
            raise RuntimeError("upstream said: Authorization: Bearer sk-live-0123456789abcdefghij")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text
    assert "AIzaSy" not in text and "sk-live" not in text
    assert "key=[REDACTED]" in text and "Authorization: [REDACTED]" in text
    assert "RuntimeError" in text  # the traceback is kept, only the secret goes


def test_key_files_named_by_provider_settings_are_known_secrets(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("file-held-secret-value-77\n", encoding="utf-8")
    s = Scrubber()
    s.add_secrets_from_settings({"api_key_file": str(key_file), "base_url": "https://x"})
    assert s.scrub("upstream said file-held-secret-value-77") == f"upstream said {REDACTED}"

"""The llm-judge's strict verdict format: what is read as what."""

from __future__ import annotations

import pytest
from policyd_plugins.validators.llm_judge import parse_verdict

from policyd.types import VerdictKind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"verdict": "accept"}', VerdictKind.ACCEPT),
        ('  {"verdict": "accept", "reason": "fine"}\n', VerdictKind.ACCEPT),
        ('```json\n{"verdict": "reject", "reason": "wrong unit"}\n```', VerdictKind.REJECT),
        ('{"verdict": "repair", "reason": "typo", "output": "fixed"}', VerdictKind.REPAIR),
        ("Looks good to me.", VerdictKind.MALFORMED),
        ('["accept"]', VerdictKind.MALFORMED),
        ('{"verdict": "accept", "score": 9}', VerdictKind.MALFORMED),
        ('{"verdict": "reject"}', VerdictKind.MALFORMED),
        ('{"verdict": "repair", "reason": "x"}', VerdictKind.MALFORMED),
        ('{"verdict": "maybe"}', VerdictKind.MALFORMED),
        ('{"verdict": "reject", "reason": 3}', VerdictKind.MALFORMED),
    ],
)
def test_verdict_text_is_read_strictly(text: str, kind: VerdictKind) -> None:
    assert parse_verdict(text).kind is kind


def test_repair_carries_the_corrected_output_and_malformed_says_why() -> None:
    repaired = parse_verdict('{"verdict": "repair", "reason": "typo", "output": "The fixed answer"}')
    assert repaired.repaired is not None and repaired.repaired.content == "The fixed answer"
    malformed = parse_verdict('{"verdict": "reject"}')
    assert "a reject needs a reason" in malformed.reason
    assert not malformed.kind.passed

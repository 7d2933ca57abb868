"""Multi-model strategies share the remaining deadline among the models they may still call."""

from __future__ import annotations

import time

from faultkit import user
from upstreams import completion, openai_policy

from policyd.v1 import policyd_pb2 as pb
from tests.plugins.fake_upstream import Hang, Json

LADDERS = """
      - name: judged
        match: {tasks: [judged]}
        plan:
          strategy: draft-validate
          params:
            drafters: [local-qwen]
            validator: {name: regex, params: {pattern: "spare"}}
            max_rounds: 1
            escalate_to: spare-qwen
"""


async def test_a_silent_first_choice_leaves_the_fallback_its_share_of_the_deadline(live, fake):
    fake.queue(Hang(), Json(completion("from the spare")))
    policy = openai_policy(fake.url, first_byte_s=60, max_attempts=1)  # the default first_byte_s
    _, _, stub = await live(policy)
    started = time.monotonic()
    resp = await stub.Complete(user("hello", task="fallback", cache_mode=pb.CACHE_MODE_BYPASS), timeout=2)
    elapsed = time.monotonic() - started

    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert resp.output.content == "from the spare"
    assert [a.model for a in resp.attempts] == ["local-qwen", "spare-qwen"]
    assert 0.8 < resp.attempts[0].latency_ms / 1000 < 1.1, "the first of two models gets half of the ~2 s"
    assert elapsed < 2


async def test_draft_validate_keeps_time_for_its_escalation(live, fake):
    fake.queue(Hang(), Json(completion("from the spare")))
    policy = openai_policy(fake.url, first_byte_s=60, max_attempts=1)
    policy = policy.replace("      - name: local\n", LADDERS + "      - name: local\n")
    _, _, stub = await live(policy)
    resp = await stub.Complete(user("hello", task="judged", cache_mode=pb.CACHE_MODE_BYPASS), timeout=2)

    assert [a.role for a in resp.attempts] == [pb.ATTEMPT_ROLE_DRAFT, pb.ATTEMPT_ROLE_ESCALATE]
    assert resp.output.content == "from the spare"

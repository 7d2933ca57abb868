"""``compact-tools``: smaller tool manifests, same valid tool calls, tokens saved reported."""

from __future__ import annotations

import json

import jsonschema
import pytest
from policyd_plugins.transforms.compact_tools import CompactToolsParams, compact_tools, shorten

from policyd.engine import tokens
from policyd.errors import ConfigError
from policyd.types import Message, Request, Role, Tool
from policyd.v1 import policyd_pb2 as pb

LONG = (
    "Books a table at a restaurant. This tool talks to the reservation backend, which is slow and "
    "occasionally flaky, so please make sure to pass every field exactly as the user stated it, and "
    "never guess a phone number. The backend accepts parties of up to twenty people; larger groups "
    "must call the restaurant directly. Times are local to the restaurant."
)

SCHEMA = {
    "type": "object",
    "title": "BookingRequest",
    "description": "All the information needed to book a table, as collected from the user in the conversation.",
    "required": ["restaurant", "party", "time"],
    "properties": {
        "restaurant": {
            "type": "string",
            "title": "Restaurant",
            "description": "The restaurant's identifier as returned by the search tool, never a free-form name.",
            "examples": ["r-123", "r-456"],
        },
        "party": {"type": "integer", "minimum": 1, "maximum": 20, "default": 2, "title": "Party size"},
        "time": {"type": "string", "format": "date-time", "examples": ["2026-01-01T19:00:00"]},
        "title": {"type": "string", "description": "A property named title is data, not an annotation."},
        "options": {
            "type": "array",
            "items": {"type": "string", "enum": ["window", "quiet"], "title": "Option", "default": "quiet"},
        },
    },
    "$comment": "generated from the booking OpenAPI spec",
}


def request_with(schema: dict) -> Request:
    return Request(
        request_id="r",
        messages=(Message(Role.USER, "book a table"),),
        tools=(Tool(name="book_table", description=LONG, parameters=schema),),
    )


def test_compacting_keeps_names_required_and_types_and_drops_annotations():
    result = compact_tools(request_with(SCHEMA), CompactToolsParams())
    tool = result.request.tools[0]
    p = tool.parameters
    assert tool.name == "book_table"
    assert len(tool.description) <= 200 and tool.description.endswith("…")
    assert p["required"] == ["restaurant", "party", "time"]
    assert set(p["properties"]) == {"restaurant", "party", "time", "title", "options"}
    assert {k: v["type"] for k, v in p["properties"].items()} == {
        "restaurant": "string",
        "party": "integer",
        "time": "string",
        "title": "string",
        "options": "array",
    }
    assert p["properties"]["party"] == {"type": "integer", "minimum": 1, "maximum": 20}
    assert p["properties"]["time"] == {"type": "string", "format": "date-time"}
    assert p["properties"]["options"]["items"] == {"type": "string", "enum": ["window", "quiet"]}
    assert "title" not in p and "$comment" not in p
    assert len(p["properties"]["restaurant"]["description"]) <= 80
    expected = tokens.tool_tokens(request_with(SCHEMA).tools) - tokens.tool_tokens(result.request.tools)
    assert result.tokens_saved == expected > 0


def test_compacting_twice_saves_nothing_more_and_short_manifests_are_untouched():
    once = compact_tools(request_with(SCHEMA), CompactToolsParams()).request
    twice = compact_tools(once, CompactToolsParams())
    assert twice.tokens_saved == 0 and twice.request.tools == once.tools
    plain = {"type": "object", "properties": {"q": {"type": "string"}}}
    assert compact_tools(request_with(plain), CompactToolsParams(max_description_chars=10_000)).tokens_saved == 0


def test_shorten_cuts_at_a_word_boundary():
    assert shorten("one two  three\nfour", 100) == "one two three four"
    assert shorten("alpha beta gamma delta", 14) == "alpha beta…"
    assert shorten("anything", 0) == ""


def test_only_annotations_can_be_dropped(make_config):
    with pytest.raises(ConfigError) as err:
        make_config(
            """
            policies:
              default:
                rules:
                  - name: r
                    plan:
                      strategy: single
                      params: {model: gpt-oss-120b}
                      transforms: [{name: compact-tools, params: {drop: [title, required]}}]
            """
        )
    assert "rules[0].plan.transforms[0].params.drop" in str(err.value)
    assert "not ['required']" in str(err.value)


COMPACTING = """
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
models:
  gpt-oss-120b: {options: {simulated: {quality: 1.0}}}
policies:
  default:
    rules:
      - name: compact
        plan:
          strategy: single
          params: {model: gpt-oss-120b}
          transforms: [{name: compact-tools, params: {max_description_chars: 120}}]
  plain:
    rules:
      - name: plain
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""


async def test_stripped_manifest_saves_tokens_and_the_tool_call_stays_valid(live):
    _, _, stub = await live(COMPACTING)
    tool = pb.Tool(name="book_table", description=LONG, parameters_json_schema=json.dumps(SCHEMA))
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="table for 4 at 8pm")], tools=[tool])
    resp = await stub.Complete(msg)
    plain = await stub.Complete(pb.CompleteRequest(messages=msg.messages, tools=[tool], policy="plain"))
    assert resp.tokens_saved > 0 and plain.tokens_saved == 0
    # the upstream was sent the smaller manifest: it counted exactly the tokens saved fewer
    assert resp.attempts[0].input_tokens == plain.attempts[0].input_tokens - resp.tokens_saved
    (call,) = resp.output.tool_calls
    assert call.name == "book_table"
    jsonschema.validate(json.loads(call.arguments_json), SCHEMA)  # valid against the original, full schema
    again = await stub.Complete(msg)
    assert again.attempts[0].cached and again.tokens_saved == resp.tokens_saved

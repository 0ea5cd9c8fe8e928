"""Drives the gateway's Responses API with the official `openai` Python package.

Usage: python3 responses.py BASE_URL API_KEY CROSS_ANSWER
CROSS_ANSWER is the text the Anthropic upstream of the `cross` route answers after its
OpenAI upstream fails. Each scenario asserts what the SDK returns or raises; the script
prints `ok <name>` per scenario and exits non-zero on the first failure.
"""

import json
import sys

import openai
import pydantic

base_url, api_key, cross_answer = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0)


def ok(name):
    print("ok", name, flush=True)


# responses.create: the OpenAI target answers 503, the Anthropic target answers.
raw = client.responses.with_raw_response.create(model="cross", input="hello", store=False)
response = raw.parse()
assert response.output_text == cross_answer, response
assert response.status == "completed", response.status
assert response.usage.output_tokens > 0, response.usage
assert raw.headers["x-switchboard-provider"] == "anthropic", dict(raw.headers)
assert int(raw.headers["x-switchboard-attempts"]) >= 2, dict(raw.headers)
ok("create_failover")

# responses.stream: typed events, then the final response.
with client.responses.stream(model="cross", input="hello") as stream:
    kinds, text = [], ""
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
    final = stream.get_final_response()
assert text == cross_answer, text
assert final.output_text == cross_answer, final
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "response.content_part.added" in kinds and "response.output_item.done" in kinds, kinds
ok("stream_failover")

# Function tools: the call comes back, its output goes in with the earlier output items.
tools = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
first = client.responses.create(model="tools", input="Weather in Oslo?", tools=tools)
calls = [item for item in first.output if item.type == "function_call"]
assert len(calls) == 1, first.output
assert calls[0].name == "get_weather"
assert json.loads(calls[0].arguments) == {"city": "Oslo"}
conversation = [{"role": "user", "content": "Weather in Oslo?"}]
conversation += first.output
conversation.append(
    {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21 C"}
)
second = client.responses.create(model="tools", input=conversation, tools=tools)
assert second.output_text == "The weather: sunny, 21 C", second
# The same call, streamed: the SDK assembles the arguments from deltas.
with client.responses.stream(model="tools", input="Weather in Oslo?", tools=tools) as stream:
    deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
    final = stream.get_final_response()
assert "".join(deltas) == '{"city":"Oslo"}', deltas
assert final.output[0].type == "function_call" and final.output[0].call_id == calls[0].call_id
ok("function_tools")


# Structured output: responses.parse validates the answer against the schema.
class Point(pydantic.BaseModel):
    x: int
    y: int


parsed = client.responses.parse(model="json", input="a point", text_format=Point)
assert parsed.output_parsed == Point(x=1, y=2), parsed.output_parsed
ok("structured_output")

# Reasoning with a signature goes back to the provider that produced it.
first = client.responses.create(
    model="thinker", input="Think first.", reasoning={"effort": "high", "summary": "auto"}
)
reasoning = [item for item in first.output if item.type == "reasoning"]
assert len(reasoning) == 1 and reasoning[0].summary[0].text == "pondering", first.output
assert reasoning[0].encrypted_content, reasoning[0]
again = client.responses.create(
    model="thinker",
    input=[{"role": "user", "content": "Think first."}]
    + first.output
    + [{"role": "user", "content": "And again?"}],
    reasoning={"effort": "high"},
)
assert again.output_text == "the signature came back", again.output_text
# Streamed: the SDK assembles the reasoning item from the summary events, and the
# assembled item goes back just as well.
with client.responses.stream(
    model="thinker", input="Think first.", reasoning={"effort": "high", "summary": "auto"}
) as stream:
    summary = "".join(
        e.delta for e in stream if e.type == "response.reasoning_summary_text.delta"
    )
    streamed = stream.get_final_response()
assert summary == "pondering", summary
assert streamed.output[0].type == "reasoning", streamed.output
assert streamed.output[0].summary[0].text == "pondering", streamed.output[0]
again = client.responses.create(
    model="thinker",
    input=[{"role": "user", "content": "Think first."}]
    + streamed.output
    + [{"role": "user", "content": "And again?"}],
)
assert again.output_text == "the signature came back", again.output_text
ok("reasoning_round_trip")

# Stateless: a stored conversation cannot be continued.
for kwargs, param in [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
]:
    try:
        client.responses.create(model="cross", input="hi", **kwargs)
        raise AssertionError(f"{kwargs} was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400
        assert e.body["param"] == param, e.body
ok("stateless_and_built_in_tools")

# Rate limits are the SDK's RateLimitError, with the earliest wait.
try:
    client.responses.create(model="limited", input="hi")
    raise AssertionError("no error")
except openai.RateLimitError as e:
    assert e.response.headers["retry-after"] == "3", dict(e.response.headers)
ok("rate_limit_error")

# A stream cut after its first content ends in an error, never a completed response: the
# gateway's `error` event makes the SDK raise while iterating.
try:
    with client.responses.stream(model="breaks", input="hi") as stream:
        seen = [event.type for event in stream]
    raise AssertionError(f"the cut stream looked whole: {seen}")
except openai.APIError as e:
    assert "overloaded" in str(e), e
ok("stream_error")

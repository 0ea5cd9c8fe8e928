"""Drives the gateway's Messages front door with the official `anthropic` Python package.

Usage: python3 messages.py BASE_URL API_KEY THINKING_SIGNATURE
Each scenario asserts what the SDK returns or raises; the script prints `ok <name>` per
scenario and exits non-zero on the first failure. THINKING_SIGNATURE is the signature the
recorded Anthropic stream carries, which must reach the client byte for byte.
"""

import sys
import time

import anthropic

base_url, api_key, signature = sys.argv[1], sys.argv[2], sys.argv[3]
client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)


began = time.monotonic()


def ok(name):
    print("ok", name, flush=True)
    print(f"{name} done at {time.monotonic() - began:.2f}s", file=sys.stderr, flush=True)


hello = [{"role": "user", "content": "hello"}]

# messages.create: the text, the serving model, usage, and the headers that say who answered.
raw = client.messages.with_raw_response.create(model="fast", max_tokens=100, messages=hello)
message = raw.parse()
assert message.content[0].type == "text", message
assert message.content[0].text == "Hello from the gateway", message
assert message.model == "model-a", message.model
assert message.stop_reason == "end_turn", message.stop_reason
assert message.usage.input_tokens == 9 and message.usage.output_tokens == 4, message.usage
assert raw.headers["x-switchboard-provider"] == "primary", dict(raw.headers)
ok("create")

# Failover across protocols: Anthropic answers 529, an OpenAI target answers instead.
raw = client.messages.with_raw_response.create(
    model="cross", max_tokens=100, system="Be brief.", messages=hello
)
message = raw.parse()
assert message.content[0].text.startswith("The capital of France is Paris."), message
assert raw.headers["x-switchboard-provider"] == "openai", dict(raw.headers)
assert raw.headers["x-switchboard-attempts"] == "2", dict(raw.headers)
ok("failover")

# messages.stream with text: the helper's text stream and final message.
with client.messages.stream(model="fast", max_tokens=100, messages=hello) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == "Hello from the gateway", text
assert final.stop_reason == "end_turn", final
assert final.usage.output_tokens == 4, final.usage
ok("stream_text")

# A stream that fails over across protocols: Anthropic answers 529 before the stream, an
# OpenAI target streams the answer.
with client.messages.stream(model="cross-stream", max_tokens=100, messages=hello) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text.startswith("Hello"), text
assert final.stop_reason == "end_turn", final
ok("stream_failover")

# messages.stream with thinking from a recorded Anthropic stream: the signature arrives
# untouched, and sending the answer back works.
question = [{"role": "user", "content": "What is the GCD of 1071 and 462?"}]
with client.messages.stream(
    model="claude-stream",
    max_tokens=3000,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=question,
) as stream:
    final = stream.get_final_message()
kinds = [block.type for block in final.content]
assert kinds[0] == "thinking", kinds
assert final.content[0].signature == signature, final.content[0].signature
assert "GCD is 21" in final.content[0].thinking, final.content[0].thinking
ok("stream_thinking")

# Thinking round trip over JSON: the reasoning goes back in the next turn.
first = client.messages.create(
    model="claude",
    max_tokens=4000,
    thinking={"type": "enabled", "budget_tokens": 2048},
    messages=[{"role": "user", "content": "Is 27 * 453 more than 12,000?"}],
)
assert first.content[0].type == "thinking" and first.content[0].signature, first
second = client.messages.create(
    model="claude",
    max_tokens=4000,
    thinking={"type": "enabled", "budget_tokens": 2048},
    messages=[
        {"role": "user", "content": "Is 27 * 453 more than 12,000?"},
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": "And 28 * 453?"},
    ],
)
assert second.content[-1].type == "text", second
ok("thinking_round_trip")

# Tools: the model calls one, the result goes back as a tool_result with the same id.
tools = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
asked = [{"role": "user", "content": "Weather in Oslo?"}]
call = client.messages.create(model="tools", max_tokens=100, tools=tools, messages=asked)
assert call.stop_reason == "tool_use", call
use = [block for block in call.content if block.type == "tool_use"][0]
assert use.name == "get_weather" and use.input == {"city": "Oslo"}, use
answer = client.messages.create(
    model="tools",
    max_tokens=100,
    tools=tools,
    messages=asked
    + [
        {"role": "assistant", "content": call.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ],
)
assert answer.content[0].text == "The weather: sunny", answer
ok("tools")

# count_tokens: the gateway's estimate, in Anthropic's shape.
counted = client.messages.count_tokens(model="fast", messages=hello)
assert counted.input_tokens > 0, counted
ok("count_tokens")

# The model listing.
ids = [model.id for model in client.models.list()]
assert "fast" in ids and "cross" in ids, ids
ok("models")

# RateLimitError, after the SDK waited the gateway's retry-after once.
retrying = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=1)
started = time.monotonic()
try:
    retrying.messages.create(model="limited", max_tokens=10, messages=hello)
    raise AssertionError("a rate-limited route answered")
except anthropic.RateLimitError as e:
    waited = time.monotonic() - started
    assert e.status_code == 429, e.status_code
    assert e.response.headers["retry-after"] == "1", dict(e.response.headers)
    assert e.body["error"]["type"] == "rate_limit_error", e.body
    assert waited >= 0.9, waited
ok("rate_limit_error")

# OverloadedError (529), likewise retried once after the wait.
started = time.monotonic()
try:
    retrying.messages.create(model="down", max_tokens=10, messages=hello)
    raise AssertionError("an overloaded route answered")
except anthropic.OverloadedError as e:
    waited = time.monotonic() - started
    assert e.status_code == 529, e.status_code
    assert e.body["error"]["type"] == "overloaded_error", e.body
    assert waited >= 0.9, waited
ok("overloaded_error")

# Bad input and a wrong key, each its own class.
try:
    client.messages.create(
        model="fast",
        max_tokens=10,
        messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}],
    )
    raise AssertionError("an orphan tool_result was accepted")
except anthropic.BadRequestError as e:
    assert "tool_use_id" in e.message, e.message
try:
    client.messages.create(model="missing", max_tokens=10, messages=hello)
    raise AssertionError("an unknown model answered")
except anthropic.NotFoundError as e:
    assert e.body["error"]["type"] == "not_found_error", e.body
try:
    anthropic.Anthropic(base_url=base_url, api_key="wrong", max_retries=0).messages.create(
        model="fast", max_tokens=10, messages=hello
    )
    raise AssertionError("a wrong key was accepted")
except anthropic.AuthenticationError as e:
    assert e.status_code == 401
ok("errors")

# A stream cut after it started raises instead of ending as if complete.
seen = ""
try:
    with client.messages.stream(model="breaks", max_tokens=10, messages=hello) as stream:
        for piece in stream.text_stream:
            seen += piece
    raise AssertionError("a broken stream ended cleanly")
except anthropic.APIStatusError as e:
    assert "error" in str(e.body), e.body
assert seen == "Half an ", seen
ok("stream_error")

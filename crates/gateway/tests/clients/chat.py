"""Drives the gateway with the official `openai` Python package.

Usage: python3 chat.py BASE_URL API_KEY
Each scenario asserts what the SDK returns or raises; the script prints `ok <name>` per
scenario and exits non-zero on the first failure.
"""

import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0)


def ok(name):
    print("ok", name, flush=True)


# Non-streaming: the text, the serving model, and the headers that say who answered.
raw = client.chat.completions.with_raw_response.create(
    model="fast", messages=[{"role": "user", "content": "hello"}]
)
completion = raw.parse()
assert completion.choices[0].message.content == "Hello from the gateway", completion
assert completion.model == "model-a", completion.model
assert completion.usage.prompt_tokens == 9, completion.usage
assert raw.headers["x-switchboard-provider"] == "primary", dict(raw.headers)
assert raw.headers["x-switchboard-attempts"] == "1"
ok("non_streaming")

# Streaming with usage.
stream = client.chat.completions.create(
    model="fast",
    messages=[{"role": "user", "content": "hello"}],
    stream=True,
    stream_options={"include_usage": True},
)
text, usage, finish = "", None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
assert text == "Hello from the gateway", text
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens == 4, usage
ok("streaming")

# Tools: the model asks for a call, the result goes back as a tool message.
tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
first = client.chat.completions.create(model="tools", messages=messages, tools=tools)
call = first.choices[0].message.tool_calls[0]
assert first.choices[0].finish_reason == "tool_calls", first
assert call.function.name == "get_weather"
assert json.loads(call.function.arguments) == {"city": "Oslo"}
messages.append(first.choices[0].message.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"})
second = client.chat.completions.create(model="tools", messages=messages, tools=tools)
assert second.choices[0].message.content == "The weather: sunny, 21 C", second
# The same call, streamed: the SDK reassembles the tool call from deltas.
streamed = client.chat.completions.create(
    model="tools", messages=messages[:1], tools=tools, stream=True
)
name, args = "", ""
for chunk in streamed:
    for choice in chunk.choices:
        for delta in choice.delta.tool_calls or []:
            name += (delta.function.name or "") if delta.function else ""
            args += (delta.function.arguments or "") if delta.function else ""
assert name == "get_weather" and json.loads(args) == {"city": "Oslo"}, (name, args)
ok("tools")

# Failover: the first target answers 503, the second answers.
raw = client.chat.completions.with_raw_response.create(
    model="failover", messages=[{"role": "user", "content": "hello"}]
)
assert raw.parse().choices[0].message.content == "answered by the backup"
assert raw.headers["x-switchboard-provider"] == "backup"
assert raw.headers["x-switchboard-attempts"] == "2"
ok("failover")

# Errors surface as the SDK's own exception types.
try:
    client.chat.completions.create(model="limited", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
    assert e.response.headers["retry-after"] == "3", dict(e.response.headers)
ok("rate_limit_error")

try:
    client.chat.completions.create(model="no-such-alias", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "no-such-alias" in str(e), str(e)
ok("not_found_error")

wrong = openai.OpenAI(base_url=base_url + "/v1", api_key="wrong-key", max_retries=0)
try:
    wrong.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError as e:
    assert e.status_code == 401
ok("authentication_error")

# A stream that breaks after content: the SDK raises instead of returning a short answer.
try:
    text = ""
    for chunk in client.chat.completions.create(
        model="breaks", messages=[{"role": "user", "content": "x"}], stream=True
    ):
        for choice in chunk.choices:
            text += choice.delta.content or ""
    raise AssertionError("expected APIError, got text " + repr(text))
except openai.APIError as e:
    assert "stream" in str(e), str(e)
ok("stream_error")

models = [m.id for m in client.models.list()]
assert models == ["breaks", "failover", "fast", "limited", "tools"], models
ok("models")

"""Calls a gateway route whose every upstream attempt fails, with the official `openai`
Python package and its default retry policy (max_retries=2).

Usage: python3 retries.py BASE_URL API_KEY MODEL
Prints `status <code> should_retry <header or ->` for the error the SDK finally raised;
the caller counts the upstream calls.
"""

import sys

import openai

base_url, api_key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, timeout=30)
assert client.max_retries == 2, client.max_retries

try:
    client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}]
    )
except openai.APIStatusError as e:
    print("status", e.status_code, "should_retry", e.response.headers.get("x-should-retry", "-"))
    sys.exit(0)
print("no error raised")
sys.exit(1)

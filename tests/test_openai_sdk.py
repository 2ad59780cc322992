"""The OpenAI-compatible surface driven by the official ``openai`` package against a real uvicorn on loopback."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import SecretStr

from _loopback import serve
from assistant.api import create_app

openai = pytest.importorskip("openai", reason="the dev extra (openai) is not installed")

KEY = "sdk-key-1"
QUESTION = "How much unearmarked funding did Denmark give IOM in 2022?"


@pytest.fixture(scope="module")
def base_url(fixture_service, fixture_settings):
    settings = fixture_settings.model_copy(
        update={"api_keys": KEY, "admin_key": SecretStr("sdk-admin"), "rate_limit_per_minute": 100_000}
    )
    with serve(create_app(fixture_service, settings)) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)


def test_models_list_and_retrieve(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == "assistant"
    assert all(m.object == "model" and m.owned_by for m in models.data)
    assert client.models.retrieve("assistant").id == "assistant"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nonexistent")


def test_models_list_names_the_llm_answerer(fixture_service, fixture_settings):
    from assistant.api.models_list import available_models

    llm = fixture_settings.model_copy(update={"answerer": "openai", "llm_model": "gemma"})
    assert [m["id"] for m in available_models(llm)] == ["assistant", "gemma"]
    assert [m["id"] for m in available_models(fixture_settings)] == ["assistant"]


def test_chat_without_streaming(client):
    t0 = time.perf_counter()
    r = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}])
    elapsed = time.perf_counter() - t0
    content = r.choices[0].message.content
    assert "3,508,772" in content and "**Sources**" in content and "dk-2023-2026" in content
    assert r.choices[0].finish_reason == "stop" and r.model == "assistant"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    extra = r.model_extra or {}
    assert extra["answered"] is True and extra["citations"][0]["document_id"] == "dk-2023-2026"
    print(f"openai SDK chat round trip: {elapsed * 1000:.0f} ms")


def test_chat_streaming_with_usage(client):
    stream = client.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "3,508,772" in text and "**Sources**" in text
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert (finishing[0].model_extra or {}).get("citations")
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_include_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": QUESTION}], stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_follow_up_through_the_messages(client):
    first = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}])
    follow = "What about Sweden in 2019?"
    alone = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": follow}])
    second = client.chat.completions.create(model="assistant", messages=[
        {"role": "system", "content": "You answer questions about IOM partnerships."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": follow},
    ])
    content = second.choices[0].message.content
    lead = content.split("[1]", 1)[0]
    assert "100 miljoner SEK" in lead, content  # Sweden's 2019 core funding, read in the context of the first question
    assert (second.model_extra or {})["citations"][0]["document_id"] == "se-2020-2022"
    assert alone.choices[0].message.content != content, "without the first question, the same words get another answer"


def test_bad_key_is_an_authentication_error(base_url):
    bad = openai.OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}])


@pytest.mark.parametrize("extra, needle", [
    ({"n": 2}, "n=2"),
    ({"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}, "Tool calls"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"functions": [{"name": "lookup", "parameters": {"type": "object"}}]}, "Tool calls"),
])
def test_unsupported_parameters_are_a_clear_400(client, extra, needle):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}], **extra)
    body = info.value.body
    error = body.get("error", body) if isinstance(body, dict) else {}
    assert info.value.status_code == 400
    assert error.get("code") == "unsupported_parameter" and needle in error.get("message", ""), body


def test_tool_results_in_the_messages_are_refused(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="assistant", messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ])


def test_n_equal_one_is_fine(base_url):
    r = httpx.post(base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                   json={"model": "x", "n": 1, "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text

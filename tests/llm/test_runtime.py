"""LlamaModel: pinned settings, greedy and seeded generation, streaming, stops, limits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from inferproof.errors import InputError
from inferproof.runtime._llm import LlamaModel, LlamaSettings
from inferproof.runtime._llm_request import ChatRequest, Sampling, parse_request

from .conftest import ask, variant

MODEL = "sha256:" + "cd" * 32


def _req(content: str = "What is the capital of France?", **params: object) -> ChatRequest:
    body = {"model": "tiny", **ask(content, **params)}
    parsed = parse_request(body, "chat")
    return parsed.request.bind(MODEL, max_tokens=parsed.request.max_tokens)


def test_runtime_block_records_pinned_settings(llm: LlamaModel) -> None:
    import llama_cpp

    info = llm.runtime_info()
    assert info["engine"] == "llama.cpp"
    assert info["version"] == llama_cpp.__version__
    assert (
        "AVX" in info["cpu_features"]
        or "NEON" in info["cpu_features"]
        or "CPU" in info["cpu_features"]
    )
    settings = info["settings"]
    assert settings["n_ctx"] == 512  # the fixture's trained context, under the default cap
    assert settings["n_threads"] >= 1 and settings["n_threads_batch"] >= 1
    assert settings["prompt_cache"] == "none"
    assert LlamaSettings.from_json(settings) == llm.settings


def test_greedy_is_repeatable_and_independent_of_history(llm: LlamaModel) -> None:
    req, prompt = llm.prepare(_req())
    first = llm.generate(req, prompt)
    # Another request in between must not change the next answer (no KV reuse).
    other, other_prompt = llm.prepare(_req("What is the capital of"))
    llm.generate(other, other_prompt)
    again = llm.generate(req, prompt)
    assert again == first
    assert first.completion_tokens == 24 and first.finish_reason == "length"
    assert first.prompt_tokens == len(prompt.tokens)


def test_recorded_settings_reproduce_in_a_fresh_model(llm: LlamaModel, gguf_path: Path) -> None:
    req, prompt = llm.prepare(_req())
    expected = llm.generate(req, prompt)
    fresh = LlamaModel(gguf_path, LlamaSettings.from_json(llm.runtime_info()["settings"]))
    try:
        assert fresh.generate(*fresh.prepare(req)) == expected
    finally:
        fresh.close()


def test_seeded_sampling(llm: LlamaModel) -> None:
    a = llm.generate(*llm.prepare(_req(temperature=0.9, seed=11)))
    b = llm.generate(*llm.prepare(_req(temperature=0.9, seed=11)))
    c = llm.generate(*llm.prepare(_req(temperature=0.9, seed=12)))
    greedy = llm.generate(*llm.prepare(_req()))
    assert a == b
    assert a.token_ids != c.token_ids
    assert a.token_ids != greedy.token_ids


def test_stream_deltas_add_up_to_the_answer(llm: LlamaModel) -> None:
    req, prompt = llm.prepare(_req(max_tokens=40))
    stream = llm.stream(req, prompt)
    deltas = list(stream)
    assert stream.result is not None
    assert "".join(deltas) == stream.result.text
    assert stream.result == llm.generate(req, prompt)
    # The text is the tokens' bytes decoded as UTF-8 (invalid bytes replaced).
    raw = b"".join(llm.token_bytes(t) for t in stream.result.token_ids)
    assert stream.result.text == raw.decode("utf-8", "replace")


def test_stop_string_cuts_the_answer(llm: LlamaModel) -> None:
    full = llm.generate(*llm.prepare(_req(max_tokens=40)))
    stop = full.text[8:12]
    cut = full.text.index(stop)
    req, prompt = llm.prepare(_req(max_tokens=40, stop=[stop]))
    stream = llm.stream(req, prompt)
    deltas = list(stream)
    assert stream.result is not None
    assert stream.result.text == full.text[:cut]
    assert stream.result.finish_reason == "stop"
    assert "".join(deltas) == full.text[:cut]
    assert stream.result.completion_tokens < full.completion_tokens


def test_closing_a_stream_releases_the_model(llm: LlamaModel) -> None:
    req, prompt = llm.prepare(_req())
    stream = llm.stream(req, prompt)
    next(stream)
    stream.close()
    assert stream.result is None
    assert llm.generate(req, prompt).completion_tokens == 24


def test_completion_defaults_to_16_tokens(llm: LlamaModel) -> None:
    parsed = parse_request(
        {"model": "tiny", "prompt": "Once upon a time", "temperature": 0}, "completion"
    )
    req, prompt = llm.prepare(parsed.request.bind(MODEL, max_tokens=None))
    assert req.max_tokens == 16
    assert llm.generate(req, prompt).completion_tokens == 16


def test_chat_default_max_tokens_fills_the_context(llm: LlamaModel) -> None:
    req, prompt = llm.prepare(_req(max_tokens=None))
    assert req.max_tokens == 512 - len(prompt.tokens)


def test_context_overflow(llm: LlamaModel) -> None:
    with pytest.raises(
        InputError, match=r"context overflow: the prompt is \d+ tokens, which fills"
    ):
        llm.prepare(_req("word " * 600))
    with pytest.raises(
        InputError, match=r"context overflow: the prompt is 17 tokens and max_tokens is 500"
    ):
        llm.prepare(_req(max_tokens=500))


def test_max_tokens_cap(gguf_path: Path) -> None:
    model = LlamaModel(gguf_path, max_tokens_cap=8)
    try:
        with pytest.raises(InputError, match="max_tokens 9 is over this node's cap of 8"):
            model.prepare(_req(max_tokens=9))
        req, _ = model.prepare(_req(max_tokens=None))
        assert req.max_tokens == 8
        # Re-execution does not re-apply a node's cap.
        assert model.prepare(_req(max_tokens=9), enforce_cap=False)[0].max_tokens == 9
    finally:
        model.close()


def test_context_setting_is_capped_by_the_model(gguf_path: Path) -> None:
    with pytest.raises(InputError, match="over the model's trained context of 512"):
        LlamaModel(gguf_path, LlamaSettings(n_ctx=1024))
    small = LlamaModel(gguf_path, LlamaSettings(n_ctx=64, n_batch=16))
    try:
        assert small.settings.n_ctx == 64 and small.settings.n_ubatch == 16
        with pytest.raises(InputError, match="context of 64 tokens"):
            small.prepare(_req(max_tokens=60))
    finally:
        small.close()


def test_batch_size_is_recorded_and_changes_nothing_for_short_prompts(
    gguf_path: Path, llm: LlamaModel
) -> None:
    other = LlamaModel(
        gguf_path, LlamaSettings(n_batch=8, n_ubatch=8, n_threads=1, n_threads_batch=1)
    )
    try:
        assert other.runtime_info()["settings"]["n_batch"] == 8
        req, prompt = llm.prepare(_req())
        assert other.generate(req, prompt).text == llm.generate(req, prompt).text
    finally:
        other.close()


def test_template_time_is_recorded_and_replayed(tmp_path: Path) -> None:
    template = (
        "{{ strftime_now('%Y-%m-%d') }}|{% for m in messages %}{{ m['content'] }}{% endfor %}|"
    )
    model = LlamaModel(variant(tmp_path, chat_template=template))
    try:
        from datetime import UTC, datetime

        req, prompt = model.prepare(_req("Hi"), now=datetime(2024, 2, 29, 12, 0, tzinfo=UTC))
        assert req.template_time == "2024-02-29T12:00:00Z"
        assert prompt.text == "2024-02-29|Hi|"
        # Rendering the recorded request later gives the same prompt.
        assert model.render(req) == prompt
    finally:
        model.close()


def test_template_errors_and_missing_template(tmp_path: Path) -> None:
    strict = LlamaModel(
        variant(tmp_path, chat_template="{{ raise_exception('only one user turn') }}")
    )
    try:
        with pytest.raises(
            InputError, match="chat template rejected the messages: only one user turn"
        ):
            strict.prepare(_req())
    finally:
        strict.close()
    bare = LlamaModel(variant(tmp_path, chat_template=None))
    try:
        with pytest.raises(InputError, match="no chat template"):
            bare.prepare(_req())
        req = ChatRequest(
            "completion", MODEL, prompt="Hi", max_tokens=4, sampling=Sampling(temperature=0)
        )
        assert bare.generate(*bare.prepare(req)).completion_tokens == 4
    finally:
        bare.close()


def test_empty_prompt_is_refused(llm: LlamaModel) -> None:
    req = ChatRequest("completion", MODEL, prompt="", max_tokens=4)
    with pytest.raises(InputError, match="the prompt is empty"):
        llm.prepare(req)


def test_not_a_model(tmp_path: Path, gguf_bytes: bytes) -> None:
    with pytest.raises(InputError, match="not a GGUF model"):
        LlamaModel(b"\x08\x07onnx model")
    with pytest.raises(InputError, match="does not exist"):
        LlamaModel(tmp_path / "absent.gguf")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(gguf_bytes[: len(gguf_bytes) // 2])
    with pytest.raises(InputError, match=r"llama\.cpp could not load the GGUF model"):
        LlamaModel(truncated)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("n_ctx"), "must have exactly"),
        (lambda s: s.update(n_threads=0), "positive integer"),
        (lambda s: s.update(n_batch=True), "positive integer"),
        (lambda s: s.update(n_threads=4096), "above 1024"),
        (lambda s: s.update(flash_attn="no"), "true or false"),
        (lambda s: s.update(kv_cache_type="q8_0"), "not supported here"),
        (lambda s: s.update(prompt_cache="reuse"), "not supported here"),
    ],
)
def test_settings_are_read_strictly(llm: LlamaModel, edit, message: str) -> None:
    settings = dict(llm.runtime_info()["settings"])
    edit(settings)
    with pytest.raises(InputError, match=message):
        LlamaSettings.from_json(settings)


def test_stream_requires_prepare(llm: LlamaModel) -> None:
    with pytest.raises(InputError, match="call prepare"):
        llm.stream(replace(_req(), max_tokens=None), llm.render(_req()))

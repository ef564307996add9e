"""Issue 11, item 10 (medium): hostile GGUF chat templates had no time or memory bound.

Whoever pushes a GGUF writes its chat template, and the node renders it for every
chat request, on one of its four chat threads and outside the chat timeout; every
verifier renders it again to re-execute a receipt. Jinja's sandbox kept templates
from Python's internals but not from running for hours (nested ``range`` loops),
building gigabytes (``'x' * 10**9``, a string doubled in a loop) or killing the
process (a tuple nested 500 000 deep, hashed on the C stack). Rendering is now
bounded in steps, time, value sizes, nesting, created data and output, the same
way on the node and in a verifier, and a normal template renders byte for byte
what llama-cpp-python's formatter rendered before, so receipts stay reproducible.
The hostile models are built by ``assets/make_chat_template_assets.py``.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.proofs import chat_checks
from inferproof.runtime import ChatRequest, LlamaModel, read_gguf_metadata
from inferproof.runtime._llm_request import MAX_MESSAGES, MAX_TEXT_CHARS
from inferproof.runtime._llm_template import (
    MAX_RENDER_SECONDS,
    MAX_TEMPLATE_CHARS,
    ChatTemplate,
    RenderLimits,
    check_template_sources,
)
from inferproof.testing import CHATML_TEMPLATE, TinyLlamaConfig, tiny_llama_gguf

from ..node.conftest import start

ASSETS = Path(__file__).parent / "assets"
# The step bound ends the loops in about 2 s here; on a loaded machine the time bound
# may come first. Either is named.
STEPS = r"MAX_RENDER_(STEPS|SECONDS)"
# Each committed asset and the limit its refusal must name.
HOSTILE = {
    "nested-loops": STEPS,
    "repeat": "MAX_VALUE_SIZE",
    "doubling": "MAX_VALUE_SIZE",
    "deep-tuple": "MAX_NESTING",
}
# A refusal comes within the wall-clock bound; the slack is for a loaded test machine.
PROMPT_BOUND_S = MAX_RENDER_SECONDS + 5
GOOD = {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "max_tokens": 4}

# A ChatML template with a default system prompt when the request has none, as
# SmolLM2-Instruct's and Qwen2.5's templates have.
DEFAULT_SYSTEM = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Much of Jinja at once: macros with caller, namespaces, loop filters and controls,
# the generation tag, tojson with and without indent, %- and str.format, slices,
# autoescape (fixed and volatile), captured output, filter blocks, strftime_now.
FEATURES = textwrap.dedent(
    """\
    {%- macro turn(role, text) -%}<|{{ role }}|>{{ caller() if caller is defined }}{{ text | trim }}<|end|>{%- endmacro -%}
    {%- set ns = namespace(system='', count=0) -%}
    {%- for m in messages if m.role != 'tool' -%}
      {%- if loop.first and m['role'] == 'system' %}{% set ns.system = m.content %}{% continue %}{% endif -%}
      {%- set ns.count = ns.count + 1 -%}
      {%- if '</think>' in m.content %}{% set text = m.content.split('</think>')[-1].lstrip('\\n') %}{% else %}{% set text = m.content %}{% endif -%}
      {{ turn(m.role, text) }}{% if loop.index is divisibleby 2 %}[{{ loop.index }}/{{ loop.length }} {{ loop.cycle('a', 'b') }}]{% endif %}
    {%- endfor -%}
    {%- generation %}gen{% endgeneration -%}
    {%- set info = {'n': ns.count, 'roles': messages | map(attribute='role') | unique | list, 'tools': tools} -%}
    {{ info | tojson }}|{{ info | tojson(indent=2) }}|{{ [1, 2] | tojson(separators=(',', ':')) }}
    {{ ns.system | upper }} {{ ns.system | title | center(30) }} {{ '%s=%d %5.2f|' | format('a', 3, 2.5) }}{{ '%(k)s' % {'k': 'v'} }} {{ '{} {:>6} {x}'.format(1, 'r', x='k') }}
    {{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'eq', 'user') | map(attribute='content') | join(', ') }}
    {{ (messages | last).content | truncate(12) }} {{ messages[1:] | length }} {{ messages[::-1][0].role }} {{ range(7) | batch(3) | list }} {{ [[1], [2]] | sum(start=[]) }}
    {{ 'a\\nb' | indent(2, first=true) }} {{ 'a b' | replace(' ', '-') }} {{ '<b>x</b>' | striptags }} {{ '<x>' | e }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ 2 ** 10 }} {{ 'x' ~ 1 ~ none }}
    {{ ','.join(['x', 'y']) }} {{ 'x'.ljust(3, '.') }} {{ dict(a=1) }} {{ {'b': 2, 'a': 1} | dictsort }} {{ (messages | groupby('role') | list) | length }}
    {% autoescape true %}{{ '<i>' ~ '<b>' }}{% endautoescape %}{% autoescape add_generation_prompt %}{{ '<v>' ~ '<w>' }}{% endautoescape %}
    {%- set captured %}cap{{ 1 }}{% endset %}{{ captured }}{% filter upper %}low{% endfilter %} {{ strftime_now('%d %b %Y') }} {{ bos_token }}{{ eos_token }}
    {%- if add_generation_prompt %}<|assistant|>{% endif %}"""
)
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello <there>, how are you?"},
    {"role": "assistant", "content": "<think>hmm</think>\n fine "},
    {"role": "user", "content": "ok"},
    {"role": "tool", "content": "ignored"},
]
AT = datetime(2024, 2, 29, 12, 0)


def _asset(kind: str) -> bytes:
    return (ASSETS / f"review-chat-template-{kind}.gguf").read_bytes()


def _model_with(template: str) -> bytes:
    return tiny_llama_gguf(TinyLlamaConfig(chat_template=template))


def _as_before(
    template: str, messages: list[dict[str, str]], bos: str = "<s>", eos: str = "<|im_end|>"
) -> str:
    """What the node rendered before the fix: llama-cpp-python's own formatter."""
    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
    setattr(formatter, "strftime_now", AT.strftime)  # noqa: B010 (as the node did)
    return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]


def _render(template: str, limits: RenderLimits | None = None) -> str:
    return ChatTemplate(template, limits).render(
        [{"role": "user", "content": "hi"}], bos_token="", eos_token=""
    )


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[LocalNode]:
    local = LocalNode(tmp_path / "home")
    yield local
    local.close()


# -- normal templates are unchanged ----------------------------------------------------
@pytest.mark.parametrize(
    "template", [CHATML_TEMPLATE, DEFAULT_SYSTEM, FEATURES], ids=["chatml", "system", "features"]
)
def test_normal_templates_render_byte_identically(template: str) -> None:
    """Issue 11, item 10: hostile chat templates. A normal template renders exactly
    what llama-cpp-python's formatter rendered before, so old receipts re-execute."""
    got = ChatTemplate(template).render(MESSAGES, bos_token="<s>", eos_token="<|im_end|>", at=AT)
    assert got == _as_before(template, MESSAGES)
    assert len(got) > 40


def test_the_node_prompt_is_unchanged(node: LocalNode, tmp_path: Path) -> None:
    """Issue 11, item 10: hostile chat templates. The tiny model's prompt, as the node
    renders it for a request with a recorded template time, is the formatter's."""
    path = tmp_path / "features.gguf"
    path.write_bytes(_model_with(FEATURES))
    model = LlamaModel(path)
    turns = tuple((m["role"], m["content"]) for m in MESSAGES)
    request = ChatRequest("chat", "sha256:" + "0" * 64, messages=turns)
    try:
        prompt = model.render(replace(request, template_time="2024-02-29T12:00:00Z"))
    finally:
        model.close()
    # The tiny model's BOS and EOS tokens (inferproof.testing writes them so); the same
    # text tokenises to the same tokens.
    assert prompt.text == _as_before(FEATURES, MESSAGES, bos="<|endoftext|>", eos="<|im_end|>")
    assert len(prompt.tokens) > 100


def test_the_largest_legitimate_request_renders() -> None:
    """Issue 11, item 10: hostile chat templates. The bounds leave room for the largest
    request the parser accepts (1024 messages, 1 Mi characters) in a verbose template."""
    per = MAX_TEXT_CHARS // MAX_MESSAGES
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "word " * (per // 5)}
        for i in range(MAX_MESSAGES)
    ]
    for template in (DEFAULT_SYSTEM, FEATURES):
        got = ChatTemplate(template).render(
            messages, bos_token="<s>", eos_token="<|im_end|>", at=AT
        )
        assert got == _as_before(template, messages)
        assert len(got) > MAX_TEXT_CHARS * 0.99


# -- refusals, one per bound (bad rows beside the good ones) ---------------------------
REFUSED = [
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", STEPS),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}", STEPS),
    ("{{ 'x' * 10**9 }}", "MAX_VALUE_SIZE"),
    ("{{ (range(100000) | list) * 100 }}", "MAX_VALUE_SIZE"),
    ("{% set ns = namespace(a='x' * 1000) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}", "MAX_VALUE_SIZE"),
    ("{% set b = 'x' * 3000000 %}{{ [b, b, b] | length }}", "MAX_VALUE_SIZE"),
    ("{{ 'a' ~ ('b' * 4000000) ~ ('b' * 4000000) }}", "MAX_VALUE_SIZE"),
    ("{{ '{:>1000000000}'.format('x') }}", "MAX_VALUE_SIZE"),
    ("{% set b = 'x' * 1000000 %}{{ ('{0}' * 100).format(b) }}", "MAX_VALUE_SIZE"),
    ("{{ '%1000000000s' % 'x' }}", "MAX_VALUE_SIZE"),
    ("{{ '%*s' % (1000000000, 'x') }}", "MAX_VALUE_SIZE"),
    ("{{ 'x' | center(1000000000) }}", "MAX_VALUE_SIZE"),
    ("{{ 'x'.ljust(10**9) }}", "MAX_VALUE_SIZE"),
    ("{{ (1).to_bytes(10**9, 'big') }}", "MAX_VALUE_SIZE"),
    ("{{ range(100000) | join(' ' * 1000) }}", "MAX_VALUE_SIZE"),
    ("{{ ('a\\n' * 1000) | indent(1000000) }}", "MAX_VALUE_SIZE"),
    ("{{ ('a' * 1000) | replace('', 'x' * 100000) }}", "MAX_VALUE_SIZE"),
    ("{{ ('a' * 100000).translate({97: 'b' * 1000}) }}", "MAX_VALUE_SIZE"),
    ("{{ ('\\t' * 100000).expandtabs(100000) }}", "MAX_VALUE_SIZE"),
    ("{{ messages | tojson(indent=1000000) }}", "MAX_VALUE_SIZE"),
    ("{{ ('a ' * 1000000) | wordwrap(1, wrapstring='x' * 100) }}", "MAX_VALUE_SIZE"),
    ("{{ ('\\u20ac' * 1000000) | list | length }}", "MAX_VALUE_SIZE"),
    ("{{ lipsum(1000000) }}", "MAX_VALUE_SIZE"),
    ("{% set d = {'a': 'x' * 1000000} %}{{ [d.values(), d.values(), d.values(), d.values(), d.values()] }}", "MAX_VALUE_SIZE"),
    ("{% set b = 'x' * 2000000 %}{% set ns = namespace(a=b, c=b, d=b) %}{{ ns }}", "MAX_VALUE_SIZE"),
    ("{% set x %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}{{ x | length }}", "MAX_CREATED_SIZE"),
    ("{{ ([[1] * 10] * 30000) | sum(start=[]) }}", "MAX_CREATED_SIZE"),
    ("{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}", "MAX_RENDER_CHARS"),
    ("{% set ns = namespace(x=()) %}{% for i in range(100) %}{% set ns.x = (ns.x,) %}{% endfor %}{{ {ns.x: 1} }}", "MAX_NESTING"),
    ("{{ 2 ** 10000000 }}", "MAX_INT_BITS"),
    ("{% set ns = namespace(a=1) %}{% for i in range(10000) %}{% set ns.a = ns.a * 2 + 1 %}{% endfor %}", "MAX_INT_BITS"),
    ("{{ strftime_now('%Y' * 100000) }}", "MAX_STRFTIME_CHARS"),
    ("{{ range(10) | batch(1000000) | list }}", "MAX_RANGE"),
]  # fmt: skip
ACCEPTED = [
    ("{% for a in range(300) %}{% for b in range(300) %}{% endfor %}{% endfor %}ok", "ok"),
    ("{{ 'ab' * 3 }}", "ababab"),
    ("{{ ([1] * 3) | length }}", "3"),
    ("{% set b = 'x' * 1000 %}{{ [b, b, b] | join | length }}", "3000"),
    ("{{ '{:>4}'.format('x') }}", "   x"),
    ("{{ '%4s|%-3d|%.2f' % ('a', 7, 1.5) }}", "   a|7  |1.50"),
    ("{{ 'x' | center(5) }}", "  x  "),
    ("{{ range(4) | join(', ') }}", "0, 1, 2, 3"),
    ("{{ 'a\\nb' | indent(4) }}", "a\n    b"),
    ("{{ 'abc' | replace('b', 'bb') }}", "abbc"),
    ("{{ messages | tojson(indent=2) | length > 10 }}", "True"),
    ("{{ 2 ** 100 }}", str(2**100)),
    ("{{ strftime_now('%Y') | length }}", "4"),
    ("{% set ns = namespace(x=()) %}{% for i in range(60) %}{% set ns.x = (ns.x,) %}{% endfor %}{{ {ns.x: 1} | length }}", "1"),
    ("{{ range(10) | batch(3) | list | length }}", "4"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "limit"), REFUSED)
def test_each_bound_refuses_with_its_name(template: str, limit: str) -> None:
    """Issue 11, item 10: hostile chat templates. Every kind of unbounded work or
    growth is refused with an InputError that names the limit it hit."""
    started = time.monotonic()
    with pytest.raises(InputError, match=limit) as caught:
        _render(template)
    assert time.monotonic() - started < PROMPT_BOUND_S
    assert str(caught.value).startswith("the model's chat template exceeds a rendering limit")


@pytest.mark.parametrize(("template", "expected"), ACCEPTED)
def test_the_same_features_used_normally_are_accepted(template: str, expected: str) -> None:
    """Issue 11, item 10: hostile chat templates. The bounds refuse growth, not the
    operations: each refused construct, used at a normal size, renders as before."""
    assert (
        _render(template) == expected == _as_before(template, [{"role": "user", "content": "hi"}])
    )


@pytest.mark.parametrize(
    "template",
    [
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% macro f(n) %}{{ f(n + 1) ~ f(n + 2) }}{% endmacro %}{{ f(0) }}",
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
        "{% for m in messages recursive %}{{ loop([m]) }}{% endfor %}",
    ],
)
def test_runaway_recursion_is_stopped_at_the_depth_bound(template: str) -> None:
    """Issue 11, item 10: hostile chat templates. Recursion is refused at
    MAX_RENDER_DEPTH whatever the time bound (a long one once let it reach the C
    stack and crash the process), so the refusal names the depth on every machine."""
    for seconds in (MAX_RENDER_SECONDS, 600.0):
        with pytest.raises(InputError, match=r"more than 250 deep \(MAX_RENDER_DEPTH\)"):
            _render(template, RenderLimits(max_seconds=seconds))


def test_recursion_within_the_depth_bound_renders() -> None:
    """A macro may recurse a little (20 levels, about 120 frames): the bound is not
    met by templates that nest on purpose."""
    template = (
        "{% macro f(n) %}{% if n > 0 %}{{ n }},{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}"
    )
    assert _render(template) == ",".join(str(n) for n in range(20, 0, -1)) + ","
    with pytest.raises(InputError, match="MAX_RENDER_DEPTH"):
        _render(template, RenderLimits(max_depth=60))


def test_the_wall_clock_bound_stops_slow_lines() -> None:
    """Issue 11, item 10: hostile chat templates. Work inside few steps (a comparison
    of two long strings on each line) is stopped by the time bound."""
    slow = (
        "{% set a = 'x' * 4000000 %}{% set b = 'x' * 3999999 ~ 'x' %}"
        "{% for i in range(100000) %}{% if a == b %}{% endif %}{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(InputError, match=r"longer than 0\.5 s \(MAX_RENDER_SECONDS\)"):
        _render(slow, RenderLimits(max_seconds=0.5))
    assert time.monotonic() - started < 5


def test_template_errors_are_input_errors_with_a_short_quote() -> None:
    """Issue 11, item 10: hostile chat templates. A template's own errors (1/0, a
    range over the sandbox's cap, runaway recursion) are InputErrors, not 500s, and
    a long raise_exception message is not echoed whole."""
    for template, what in [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ range(10**7) | list }}", "OverflowError"),
        ("{% for %}", "does not compile"),
    ]:
        with pytest.raises(InputError, match=what):
            _render(template)
    with pytest.raises(InputError, match=r"rejected the messages: y+\.\.\.$") as caught:
        _render("{{ raise_exception('y' * 1000000) }}")
    assert len(str(caught.value)) < 300


def test_template_sources_are_capped_before_llama_cpp_compiles_them(node: LocalNode) -> None:
    """Issue 11, item 10: hostile chat templates. llama-cpp-python compiles every chat
    template of a file when it loads it: an oversized one is refused before, at push."""
    big = "{# " + "x" * MAX_TEMPLATE_CHARS + " #}" + CHATML_TEMPLATE
    with pytest.raises(InputError, match="MAX_TEMPLATE_CHARS"):
        node.push(_model_with(big), name="big")
    assert node.hub.list() == []
    named = {"tokenizer.chat_template": "x", "tokenizer.chat_template.tool_use": big}
    with pytest.raises(InputError, match=r"templates are \d+ characters.*MAX_TEMPLATE_CHARS"):
        check_template_sources(named)
    check_template_sources({"tokenizer.chat_template": CHATML_TEMPLATE, "general.name": big})


def test_the_trace_function_of_a_debugger_is_restored() -> None:
    """Issue 11, item 10: hostile chat templates. The step counter is a trace function
    on the rendering thread only; a debugger's or coverage's comes back after."""

    def mine(frame: Any, event: str, arg: Any) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(mine)
    try:
        assert _render(CHATML_TEMPLATE).startswith("<|im_start|>user")
        with pytest.raises(InputError):
            _render("{{ 'x' * 10**9 }}")
        assert sys.gettrace() is mine
    finally:
        sys.settrace(previous)


# -- through the node, the verifier and HTTP -------------------------------------------
def test_the_assets_are_the_script_s_output() -> None:
    """Issue 11, item 10: hostile chat templates. Each committed model is, byte for
    byte, what make_chat_template_assets.py builds (rerun it after changing it)."""
    spec = importlib.util.spec_from_file_location("assets", ASSETS / "make_chat_template_assets.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert set(script.TEMPLATES) == set(HOSTILE)
    for kind in HOSTILE:
        assert script.asset_name(kind) == f"review-chat-template-{kind}.gguf"
        assert script.build(kind) == _asset(kind)


@pytest.mark.parametrize(("kind", "limit"), HOSTILE.items())
def test_the_node_refuses_hostile_templates_and_keeps_serving(
    node: LocalNode, kind: str, limit: str
) -> None:
    """Issue 11, item 10: hostile chat templates. A pushed hostile model's chat is
    refused within the bound, naming it; the node then answers a good model."""
    node.push(_asset(kind), name="evil")
    node.push(tiny_llama_gguf(), name="good")
    started = time.monotonic()
    with pytest.raises(InputError, match=limit):
        node.chat("evil", GOOD)
    assert time.monotonic() - started < PROMPT_BOUND_S
    assert node.chat("good", GOOD).output.completion_tokens == 4


@pytest.mark.skipif(sys.platform != "linux", reason="the C stack size is Linux's (8 MiB)")
def test_the_deep_tuple_asset_really_crashes_an_unbounded_render(tmp_path: Path) -> None:
    """Issue 11, item 10: hostile chat templates. Rendered by llama-cpp-python's own
    formatter (no bounds), the deep-tuple template kills the process: a real attack."""
    template = read_gguf_metadata(_asset("deep-tuple"))[2]["tokenizer.chat_template"]
    script = textwrap.dedent(
        f"""
        import threading
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        formatter = Jinja2ChatFormatter({template!r}, eos_token="", bos_token="")
        thread = threading.Thread(target=lambda: formatter(messages=[]))
        thread.start(); thread.join()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode < 0  # killed by a signal (SIGSEGV), not an exception


def test_the_deep_tuple_asset_is_refused_on_a_chat_thread(tmp_path: Path) -> None:
    """Issue 11, item 10: hostile chat templates. The same model on a node: the chat
    (on a thread, as the server's chat threads run it) is refused, the process lives."""
    script = textwrap.dedent(
        f"""
        import threading
        from pathlib import Path
        from inferproof import LocalNode
        from inferproof.errors import InputError
        node = LocalNode(Path({str(tmp_path / "home")!r}))
        node.push(Path({str(ASSETS / "review-chat-template-deep-tuple.gguf")!r}).read_bytes(), name="evil")
        def chat():
            try:
                node.chat("evil", {GOOD!r})
            except InputError as exc:
                print(exc)
        thread = threading.Thread(target=chat)
        thread.start(); thread.join()
        node.close()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"MAX_NESTING" in done.stdout


def _chatml(self: LlamaModel, request: ChatRequest) -> str:
    """A dishonest node's rendering: ChatML, whatever template the model carries."""
    return _render_chatml([{"role": r, "content": c} for r, c in request.messages])


def _render_chatml(messages: list[dict[str, str]]) -> str:
    return ChatTemplate(CHATML_TEMPLATE).render(messages, bos_token="", eos_token="")


@pytest.mark.parametrize(
    ("mode", "name", "words"),
    [
        ("exact", "output.reexecution", "cannot re-execute the request"),
        ("fingerprint", "output.fingerprint", "cannot prefill the request"),
    ],
)
@pytest.mark.parametrize("kind", ["nested-loops", "repeat"])
def test_a_verifier_refuses_to_re_execute_within_the_bound(
    node: LocalNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    mode: str,
    name: str,
    words: str,
) -> None:
    """Issue 11, item 10: hostile chat templates. A node that does not render the
    template its model carries signs a receipt for the hostile model; a verifier's
    re-execution renders it, within the bound, and reports the check failed."""
    path = tmp_path / f"{kind}.gguf"
    path.write_bytes(_asset(kind))
    node.push(path.read_bytes(), name="evil")
    with monkeypatch.context() as patched:
        patched.setattr(LlamaModel, "_apply_template", _chatml)
        bundle = node.chat("evil", GOOD).bundle
    started = time.monotonic()
    checks = chat_checks(bundle, model=path, require_reexecution=True, mode=mode)
    assert time.monotonic() - started < PROMPT_BOUND_S
    last = next(c for c in checks if c.name == name)
    assert not last.passed
    assert words in last.detail
    assert re.search(HOSTILE[kind], last.detail), last.detail


def test_renders_on_other_threads_are_unaffected() -> None:
    """Issue 11, item 10: hostile chat templates. The budget belongs to one render:
    normal renders on other threads succeed, unchanged, while a hostile one runs."""
    hostile = ChatTemplate(read_gguf_metadata(_asset("nested-loops"))[2]["tokenizer.chat_template"])
    normal = ChatTemplate(DEFAULT_SYSTEM)
    results: list[str] = []
    failures: list[BaseException] = []

    def run_hostile() -> None:
        try:
            hostile.render(MESSAGES, bos_token="", eos_token="")
        except InputError as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_hostile)
    thread.start()
    while thread.is_alive() and len(results) < 50:
        results.append(normal.render(MESSAGES, bos_token="<s>", eos_token="<|im_end|>"))
    thread.join()
    assert len(failures) == 1 and re.search(STEPS, str(failures[0]))
    assert results and set(results) == {_as_before(DEFAULT_SYSTEM, MESSAGES)}


def test_the_http_node_answers_400_and_keeps_serving(tmp_path: Path) -> None:
    """Issue 11, item 10: hostile chat templates. Over HTTP a hostile model's chat is
    an OpenAI-style 400 naming the limit, and the node serves a good model, during
    and after it."""
    running = start(tmp_path / "node")
    try:
        with running.http() as http:
            for name, data in (("evil", _asset("nested-loops")), ("good", tiny_llama_gguf())):
                pushed = http.post(
                    "/v1/models",
                    params={"name": name},
                    content=data,
                    headers={"content-type": "application/octet-stream"},
                )
                assert pushed.status_code == 201, pushed.text
            answers: dict[str, Any] = {}

            def ask(model: str) -> None:
                with running.http() as own:
                    answers[model] = own.post("/v1/chat/completions", json={**GOOD, "model": model})

            evil = threading.Thread(target=ask, args=("evil",))
            evil.start()
            ask("good")  # while the hostile render runs on another chat thread
            evil.join(60)
            health = http.get("/healthz")
            again = http.post("/v1/chat/completions", json={**GOOD, "model": "good"})
    finally:
        running.stop()
    refused = answers["evil"]
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert re.search(STEPS, error["message"]), error["message"]
    assert answers["good"].status_code == 200, answers["good"].text
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"]
    assert health.status_code == 200


def test_loading_a_model_compiles_no_template_unbounded(tmp_path: Path) -> None:
    """Issue 11, item 10: hostile chat templates. llama-cpp-python compiles a file's
    templates when it loads it, and Jinja's optimiser folds ``'x' * 10**9`` then (a
    gigabyte, 20 s); a model loads without that, and the formatter class is restored."""
    import llama_cpp.llama_chat_format as llama_chat_format

    path = tmp_path / "repeat.gguf"
    path.write_bytes(_asset("repeat"))
    started = time.monotonic()
    model = LlamaModel(path)
    model.close()
    assert time.monotonic() - started < 5
    assert llama_chat_format.Jinja2ChatFormatter is Jinja2ChatFormatter

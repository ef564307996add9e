"""Build the hostile GGUF models of review finding 11.10 (chat templates unbounded).

Run from the repository root: ``python tests/security/assets/make_chat_template_assets.py``.
Each file is the tiny llama model (written locally by ``inferproof.testing``, a
smaller shape than the default to keep the files small) with a hostile
``tokenizer.chat_template``. Rendered without bounds, for any request:

- ``nested-loops``: 10**10 empty iterations (hours on one of the node's chat threads);
- ``repeat``: ``'x' * 10**9``, a gigabyte string in one C call;
- ``doubling``: a namespace string doubled 64 times (``ns.x ~ ns.x``): exabytes;
- ``deep-tuple``: a tuple nested 500 000 deep used as a dictionary key; CPython
  hashes it recursively on the C stack and the process dies (SIGSEGV).
"""

from __future__ import annotations

from pathlib import Path

from inferproof.testing import TinyLlamaConfig, tiny_llama_gguf

HERE = Path(__file__).parent
# The ChatML tail makes each template a plausible chat template after its payload.
_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{{ '<|im_start|>assistant\\n' }}"
)
TEMPLATES = {
    "nested-loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "repeat": "{{ 'x' * 10**9 }}",
    "doubling": (
        "{% set ns = namespace(x='x') %}"
        "{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}"
    ),
    "deep-tuple": (
        "{% set ns = namespace(x=()) %}"
        "{% for j in range(5) %}{% for i in range(100000) %}{% set ns.x = (ns.x,) %}"
        "{% endfor %}{% endfor %}{{ {ns.x: 1} | length }}"
    ),
}
# Small enough that a file is about 80 KB; llama.cpp still loads and runs it.
SHAPE = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_head_kv": 1, "n_ff": 32}


def asset_name(kind: str) -> str:
    return f"review-chat-template-{kind}.gguf"


def build(kind: str) -> bytes:
    """The hostile model ``kind`` (a key of :data:`TEMPLATES`), byte for byte."""
    return tiny_llama_gguf(TinyLlamaConfig(chat_template=TEMPLATES[kind] + _CHATML, **SHAPE))


def main() -> None:
    for kind in TEMPLATES:
        (HERE / asset_name(kind)).write_bytes(build(kind))


if __name__ == "__main__":
    main()

"""Deterministic LLM generation with llama.cpp (through llama-cpp-python).

llama.cpp on a CPU gives the same tokens for the same prompt when everything
that changes the order of floating-point operations is held fixed: the build
and the CPU features it dispatches to (AVX2, AVX-512, llamafile sgemm), the
batch sizes that split the prompt into matrix products, the thread counts, the
context size and the KV-cache type. All of these are pinned at load time and
recorded in every receipt (:meth:`LlamaModel.runtime_info`); a verifier loads
the model with the recorded settings and must get the identical answer.

The chat template comes from the model file, so it is hostile input: it is
rendered in a sandbox bounded in steps, time and size (see ``_llm_template.py``),
on the node and in every verifier's re-execution alike.

One more source of drift is removed on purpose: llama-cpp-python reuses the KV
cache of a previous request that shares a prefix with the new one, so the same
prompt could be evaluated in different batch shapes depending on what ran
before. Every request here starts from an empty cache and evaluates its prompt
in ``n_batch`` chunks, then one token at a time (``decode: "single"``), or each
token as a batch of two rows so that its logits come from the same kernels as a
verifier's batched prefill (``decode: "paired"``, see ``_llm_decode.py``).

Sampling is llama.cpp's own sampler chain. Temperature 0 is greedy decoding;
above 0 the chain is penalties, top-k, top-p, min-p, temperature and a draw from
a generator seeded with the request's seed, so seeded sampling reproduces too.
"""

from __future__ import annotations

import ctypes
import os
import platform
import tempfile
import threading
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._llm_answer import Answer
from ._llm_decode import RowCallback, decode
from ._llm_decode import prefill as _prefill
from ._llm_fingerprint import Fingerprint, Recorder
from ._llm_gguf import gguf_signature, is_gguf, read_gguf_metadata
from ._llm_request import DEFAULT_COMPLETION_TOKENS, ChatRequest

if TYPE_CHECKING:  # imported on use, as llama_cpp is: it loads jinja2 and llama_cpp
    from ._llm_template import ChatTemplate

ENGINE = "llama.cpp"
# A node's default ceiling on the context it allocates (the KV cache grows with it)
# and on the new tokens one request may ask for; both can be raised per model.
DEFAULT_MAX_CTX = 4096
MAX_TOKENS_CAP = 4096
# The prompt-processing batch llama-cpp-python uses by default.
DEFAULT_BATCH = 512
# llama-cpp-python's window for repetition penalties (Llama.last_n_tokens_size).
PENALTY_LAST_N = 64
_SETTING_KEYS = (
    "n_ctx",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "n_threads_batch",
    "flash_attn",
    "kv_cache_type",
    "penalty_last_n",
    "prompt_cache",
    "decode",
)
DECODE_MODES = ("single", "paired")


@dataclass(frozen=True)
class LlamaSettings:
    """What a receipt records and a verifier reproduces. Zero means "choose":
    the context from the model (capped at :data:`DEFAULT_MAX_CTX`), the thread
    counts as llama-cpp-python does (half the cores for generation, all for the
    prompt). :meth:`LlamaModel.settings` holds the values actually used."""

    n_ctx: int = 0
    n_batch: int = DEFAULT_BATCH
    n_ubatch: int = DEFAULT_BATCH
    n_threads: int = 0
    n_threads_batch: int = 0
    flash_attn: bool = False
    # "single": one row a step (the default); "paired": two rows a step, logits
    # bit-identical to a prefill on the same build, about 50% slower here.
    decode: str = "single"

    def __post_init__(self) -> None:
        if self.decode not in DECODE_MODES:
            raise InputError(f"llama.cpp decode must be one of {DECODE_MODES}")

    def to_json(self) -> dict[str, Any]:
        return {
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "n_ubatch": self.n_ubatch,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads_batch,
            "flash_attn": self.flash_attn,
            # Fixed here, recorded so a reader knows: llama.cpp's default f16 KV
            # cache, llama-cpp-python's penalty window, no cross-request cache reuse.
            "kv_cache_type": "f16",
            "penalty_last_n": PENALTY_LAST_N,
            "prompt_cache": "none",
            "decode": self.decode,
        }

    @classmethod
    def from_json(cls, obj: Any) -> LlamaSettings:
        """Read recorded settings strictly (a receipt's ``runtime.settings``)."""
        # Receipts made before fingerprints have no "decode": they decoded one row a step.
        if isinstance(obj, dict) and "decode" not in obj:
            obj = {**obj, "decode": "single"}
        if not isinstance(obj, dict) or set(obj) != set(_SETTING_KEYS):
            raise InputError(f"llama.cpp settings must have exactly {list(_SETTING_KEYS)}")
        if obj["decode"] not in DECODE_MODES:
            raise InputError(f"llama.cpp setting decode must be one of {DECODE_MODES}")
        fixed = cls().to_json()
        for key in ("kv_cache_type", "penalty_last_n", "prompt_cache"):
            if obj[key] != fixed[key]:
                raise InputError(f"llama.cpp setting {key}={obj[key]!r} is not supported here")
        ints = {}
        for key in ("n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch"):
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 20:
                raise InputError(f"llama.cpp setting {key} must be a positive integer")
            ints[key] = value
        if ints["n_threads"] > 1024 or ints["n_threads_batch"] > 1024:
            raise InputError("llama.cpp thread counts above 1024 are refused")
        if not isinstance(obj["flash_attn"], bool):
            raise InputError("llama.cpp setting flash_attn must be true or false")
        return cls(flash_attn=obj["flash_attn"], decode=obj["decode"], **ints)


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the text the template produced and its tokens."""

    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Generation:
    """One answer: the text, the new token ids, and why generation stopped
    (``"stop"``: end-of-generation token or a stop string; ``"length"``: max_tokens)."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish_reason: str
    # Every sampled token (the stop token included) and its logits' top values.
    fingerprint: Fingerprint | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


@lru_cache(maxsize=1)
def engine_versions() -> dict[str, str]:
    """llama-cpp-python's version, the llama.cpp library's, and its CPU feature line."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    cpu = next((part for part in info.split("\n") if part.strip()), info).strip(" |")
    return {
        "version": str(llama_cpp.__version__),
        "llama_cpp": llama_cpp.llama_version().decode("utf-8", "replace"),
        "cpu_features": cpu,
    }


class GenerationStream:
    """Text as it is generated; :attr:`result` is set once the stream is exhausted.

    Example::

        stream = model.stream(request, prompt)
        for delta in stream:
            print(delta, end="", flush=True)
        print(stream.result.finish_reason)
    """

    def __init__(self, run: Callable[[GenerationStream], Generator[str, None, None]]) -> None:
        self.result: Generation | None = None
        self._it = run(self)

    def __iter__(self) -> GenerationStream:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        """Stop early and release the model (also done when the stream is exhausted)."""
        self._it.close()


class LlamaModel:
    """A GGUF model loaded into llama.cpp with pinned, recorded settings.

    Example::

        model = LlamaModel(Path("model.gguf"))
        body = parse_request({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                              "temperature": 0, "max_tokens": 32}, "chat")
        request, prompt = model.prepare(body.request.bind(digest, max_tokens=32))
        answer = model.generate(request, prompt)
        print(answer.text, answer.completion_tokens, answer.finish_reason)
    """

    def __init__(
        self,
        model: bytes | Path,
        settings: LlamaSettings | None = None,
        *,
        max_tokens_cap: int = MAX_TOKENS_CAP,
        max_ctx: int = DEFAULT_MAX_CTX,
    ) -> None:
        path, self._tmp = materialise(model)
        self.signature = signature_of(path)
        self.max_tokens_cap = max_tokens_cap
        self.settings = resolve_settings(settings or LlamaSettings(), self.signature, max_ctx)
        self._llm = load_llama(path, self.settings)
        self._lock = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._vocab = self._llm._model.vocab
        self._template = self._llm.metadata.get("tokenizer.chat_template")
        # Compiled on first use (a large template costs milliseconds). A refusal is
        # not kept: each attempt is bounded, and one refused for time on a loaded
        # machine may compile on the next request.
        self._compiled: ChatTemplate | None = None
        self._finalizer = weakref.finalize(self, release, self._llm, self._tmp)

    def close(self) -> None:
        """Free the llama.cpp model and context now (otherwise at garbage collection);
        waits for a generation in progress to end."""
        with self._lock:
            self._finalizer()

    @property
    def n_ctx(self) -> int:
        return self.settings.n_ctx

    def runtime_info(self) -> dict[str, Any]:
        """The receipt's runtime block: engine, versions, CPU, pinned settings."""
        return {
            "engine": ENGINE,
            **engine_versions(),
            "machine": platform.machine(),
            "settings": self.settings.to_json(),
        }

    # -- prompts --------------------------------------------------------------
    def prepare(
        self,
        request: ChatRequest,
        *,
        enforce_cap: bool = True,
        now: datetime | None = None,
        answer_room: bool = True,
    ) -> tuple[ChatRequest, Prompt]:
        """Render and tokenise the prompt, fill in the default ``max_tokens`` and
        the template time, and check the context and the cap.

        ``enforce_cap=False`` is for re-execution: the node's cap already applied.
        ``answer_room=False`` is for a prefill of an answer already given: the context
        need not hold ``max_tokens`` more."""
        if request.task == "chat" and self._needs_time() and request.template_time is None:
            stamp = (now or datetime.now(UTC)).replace(microsecond=0)
            request = replace(request, template_time=stamp.isoformat().replace("+00:00", "Z"))
        prompt = self.render(request)
        n_prompt = len(prompt.tokens)
        room = self.n_ctx - n_prompt
        if room <= 0:
            raise InputError(
                f"context overflow: the prompt is {n_prompt} tokens, which fills the "
                f"model's context of {self.n_ctx} tokens"
            )
        max_tokens = request.max_tokens
        if max_tokens is None:
            default = DEFAULT_COMPLETION_TOKENS if request.task == "completion" else room
            max_tokens = min(default, room, self.max_tokens_cap)
        if enforce_cap and max_tokens > self.max_tokens_cap:
            raise InputError(
                f"max_tokens {max_tokens} is over this node's cap of {self.max_tokens_cap}"
            )
        if answer_room and n_prompt + max_tokens > self.n_ctx:
            raise InputError(
                f"context overflow: the prompt is {n_prompt} tokens and max_tokens is "
                f"{max_tokens}; together they exceed the model's context of {self.n_ctx} tokens"
            )
        return replace(request, max_tokens=max_tokens), prompt

    def _needs_time(self) -> bool:
        return bool(self._template and "strftime_now" in self._template)

    def render(self, request: ChatRequest) -> Prompt:
        """The prompt for ``request``: the model's chat template, or the raw prompt."""
        if request.task == "completion":
            text = request.prompt or ""
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        else:
            text = self._apply_template(request)
            # As llama-cpp-python's chat handler does: the template writes any BOS
            # itself, and the control tokens it writes are parsed as such.
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if not tokens:
            raise InputError("the prompt is empty")
        return Prompt(text, tuple(tokens))

    def _chat_template(self) -> ChatTemplate:
        """The model's chat template, compiled within its bounds (see _llm_template.py)."""
        from ._llm_template import ChatTemplate

        if self._compiled is None:
            self._compiled = ChatTemplate(str(self._template))
        return self._compiled

    def _apply_template(self, request: ChatRequest) -> str:
        if not self._template:
            raise InputError("this model has no chat template (use a text completion)")
        # A template that prints today's date would make the prompt depend on when it
        # is rendered; it sees the time the request recorded instead.
        at = None
        if request.template_time is not None:
            at = datetime.fromisoformat(request.template_time.replace("Z", "+00:00"))
        model = self._llm._model
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        return self._chat_template().render(
            [{"role": r, "content": c} for r, c in request.messages],
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            at=at,
        )

    # -- generation -----------------------------------------------------------
    def generate(self, request: ChatRequest, prompt: Prompt) -> Generation:
        """Generate the whole answer (see :meth:`stream`)."""
        stream = self.stream(request, prompt)
        for _ in stream:
            pass
        assert stream.result is not None  # set when the stream is exhausted
        return stream.result

    def stream(self, request: ChatRequest, prompt: Prompt) -> GenerationStream:
        """Generate ``request`` (from :meth:`prepare`) as a stream of text deltas.

        Deltas are whole UTF-8 characters; text that might begin a stop string is
        held back until it is known not to. The model is locked until the stream
        ends or is closed."""
        if request.max_tokens is None:
            raise InputError("request has no max_tokens: call prepare() first")
        return GenerationStream(lambda s: self._run(s, request, prompt))

    def _run(
        self, out: GenerationStream, request: ChatRequest, prompt: Prompt
    ) -> Generator[str, None, None]:

        s = request.sampling
        record, answer = Recorder(), Answer(self._vocab, self._piece, request)
        with self._lock:
            llm = self._llm
            llm.set_seed(s.seed if s.seed is not None else 0)
            # llama-cpp-python's own chain (penalties, top-k, typical, top-p, min-p,
            # temperature, seeded draw; greedy at temperature 0), as its generate() builds it.
            sampler = llm._init_sampler(
                top_k=s.top_k,
                top_p=s.top_p,
                min_p=s.min_p,
                typical_p=1.0,
                temp=s.temperature,
                repeat_penalty=s.repeat_penalty,
                frequency_penalty=s.frequency_penalty,
                presence_penalty=s.presence_penalty,
            )
            gen = decode(llm, prompt.tokens, sampler, paired=self.settings.decode == "paired")
            try:
                for token, row in gen:
                    record.add(token, row)
                    done = answer.push(token)
                    if delta := answer.ready():
                        yield delta
                    if done:
                        break
            finally:
                gen.close()
        tail = answer.rest()
        out.result = _generation(answer, len(prompt.tokens), record.result())
        if tail:
            yield tail

    def prefill(self, prompt: Sequence[int], answer: Sequence[int], each: RowCallback) -> None:
        """One batched pass over ``prompt + answer``; ``each(i, logits)`` gets the row
        that predicted ``answer[i]`` (a verifier's half of the fingerprint)."""
        if not answer:
            raise InputError("the answer has no tokens")
        with self._lock:
            _prefill(self._llm, prompt, answer, each)

    def replay(self, request: ChatRequest, prompt: Prompt, tokens: Sequence[int]) -> Generation:
        """The answer that ``tokens`` (sampled tokens, the stop token included) make
        under ``request``'s stop rules, without running the model. Raises
        :class:`InputError` for tokens after the answer ended, or an answer that never
        ends (no stop token, no stop string, short of ``max_tokens``)."""
        answer = Answer(self._vocab, self._piece, request)
        for i, token in enumerate(tokens):
            if not 0 <= token < self._llm.n_vocab():
                raise InputError(f"answer token {i} ({token}) is not in the vocabulary")
            if answer.push(token):
                if i + 1 != len(tokens):
                    raise InputError(
                        f"the answer ended at token {i} ({answer.finish} reached) but "
                        f"{len(tokens) - i - 1} more token(s) follow"
                    )
                answer.rest()
                return _generation(answer, len(prompt.tokens), None)
        raise InputError(
            f"the answer's {len(tokens)} tokens end without a stop token, a stop string "
            f"or max_tokens ({request.max_tokens})"
        )

    def _piece(self, token: int) -> bytes:
        """A token's bytes (llama-cpp-python's own helper truncates pieces over 32 bytes)."""
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            piece = buf.raw[:n]
            self._pieces[token] = piece
        return piece

    def token_bytes(self, token: int) -> bytes:
        """A token's bytes as the detokeniser writes them (special tokens as empty)."""
        return self._piece(token)

    def token_text(self, token: int) -> str:
        """A token's text, for messages (invalid UTF-8 shown as replacement characters)."""
        return self._piece(token).decode("utf-8", "replace")

    def tokenize(self, text: str) -> tuple[int, ...]:
        """Tokenise plain text (no special tokens, no BOS)."""
        return tuple(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _generation(answer: Answer, prompt_tokens: int, fp: Fingerprint | None) -> Generation:
    return Generation(answer.text, tuple(answer.tokens), prompt_tokens, answer.finish, fp)


def materialise(model: bytes | Path) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """A path llama.cpp can load: the file itself, or the bytes written to a private
    temporary file that must live as long as the model (it is memory-mapped)."""
    if isinstance(model, Path):
        if not model.is_file():
            raise InputError(f"model file {model} does not exist")
        return model, None
    if not is_gguf(model):
        raise InputError("not a GGUF model (missing the GGUF magic)")
    tmp = tempfile.TemporaryDirectory(prefix="inferproof-gguf-")
    path = Path(tmp.name) / "model.gguf"
    path.write_bytes(model)
    return path, tmp


def signature_of(path: Path) -> dict[str, Any]:
    """The file's signature, after checking its chat templates' total size."""
    import mmap

    from ._llm_template import check_template_sources

    with open(path, "rb") as fh:
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise InputError("not a GGUF model (the file is empty)") from None
        try:
            sig = gguf_signature(mapped)
            check_template_sources(read_gguf_metadata(mapped)[2])
        finally:
            mapped.close()
    return sig


def resolve_settings(
    settings: LlamaSettings, signature: dict[str, Any], max_ctx: int
) -> LlamaSettings:
    trained = int(signature["context_length"])
    n_ctx = settings.n_ctx or min(trained, max_ctx)
    if n_ctx > trained:
        raise InputError(f"n_ctx {n_ctx} is over the model's trained context of {trained}")
    cores = os.cpu_count() or 1
    n_batch = min(settings.n_batch, n_ctx)
    return replace(
        settings,
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=min(settings.n_ubatch, n_batch),
        n_threads=settings.n_threads or max(cores // 2, 1),
        n_threads_batch=settings.n_threads_batch or cores,
    )


def load_llama(path: Path, settings: LlamaSettings, **extra: Any) -> Any:
    """``llama_cpp.Llama`` with ``settings`` (``extra``: embedding mode and pooling)."""
    from llama_cpp import Llama

    from ._llm_template import llama_cpp_compiles_no_templates

    try:
        # llama-cpp-python would compile every chat template of the file, unbounded
        # (see _llm_template.py); the template is compiled and rendered there instead.
        with llama_cpp_compiles_no_templates():
            return Llama(
                str(path),
                n_gpu_layers=0,
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_ubatch=settings.n_ubatch,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads_batch,
                flash_attn=settings.flash_attn,
                last_n_tokens_size=PENALTY_LAST_N,
                verbose=False,
                **extra,
            )
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"llama.cpp could not load the GGUF model: {exc}") from exc


def release(llm: Any, tmp: tempfile.TemporaryDirectory[str] | None) -> None:
    llm.close()
    if tmp is not None:
        tmp.cleanup()


__all__ = [
    "ENGINE",
    "Generation",
    "GenerationStream",
    "LlamaModel",
    "LlamaSettings",
    "Prompt",
    "engine_versions",
    "read_gguf_metadata",
]

"""``inferproof serve``, ``inferproof token ...``, ``--node URL`` helpers, and a node
process on loopback (:func:`start_node`, :func:`stop_node`) for the demo and tests.

Other commands use :data:`NodeOpt`, :data:`TokenOpt` and :func:`node_client` for
``--node URL``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from .._files import default_home
from ..client import DEFAULT_POLICY, Client
from ..engine import ChatConfig
from ..errors import Error, InputError
from ..node import MAX_MODEL_BYTES, NodeConfig
from ..runtime import DEFAULT_MAX_CTX, LlamaSettings, check_upstream
from ..verify import VerificationReport, load_policy
from ._common import console, err_console, handle_errors
from ._storage import (
    BlobsOpt,
    ConfigOpt,
    DatabaseOpt,
    S3EndpointOpt,
    resolve_storage,
    token_store,
)

token_app = typer.Typer(help="Bearer tokens for a node's write endpoints.", no_args_is_help=True)

# `--node URL` and `--token` for every command that acts on a node.
NodeOpt = Annotated[
    str | None,
    typer.Option("--node", envvar="INFERPROOF_NODE", help="Act on the node at this URL."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="INFERPROOF_TOKEN", help="Bearer token for writes."),
]
ConfidentialOpt = Annotated[
    bool,
    typer.Option(
        "--confidential",
        help="With --node: seal every request to the node's attested Oblivious HTTP key "
        "and send it through --relay (docs/confidential.md).",
    ),
]
RelayOpt = Annotated[
    str | None,
    typer.Option(
        "--relay", envvar="INFERPROOF_RELAY", help="With --confidential: the relay's URL."
    ),
]
# How long the demo waits for its node to start answering.
_START_SECONDS = 60.0


def node_client(
    url: str,
    token: str | None = None,
    policy: Path | None = None,
    allow_dev_srs: bool = False,
    relay: str | None = None,
) -> Client:
    """A verifying client for ``--node URL``; a policy file replaces the default policy.

    Trust comes from the node pinned on first use, plus ``INFERPROOF_HOME/trust/``;
    a policy's ``trust`` section replaces it. ``allow_dev_srs`` (--allow-dev-srs)
    weakens whichever policy applies, as it does offline. ``relay`` (--confidential
    --relay) sends everything, the first identity fetch included, sealed through it.
    """
    sealed: dict[str, Any] = {"confidential": True, "relay": relay} if relay else {}
    if policy is None:
        pol = replace(DEFAULT_POLICY, allow_dev_srs=True) if allow_dev_srs else None
        return Client(url, token=token, policy=pol, **sealed)
    probe = Client(url, **sealed)
    try:
        trust, pol = load_policy(policy, probe.trust_root())
    finally:
        probe.close()
    if allow_dev_srs:
        pol = replace(pol, allow_dev_srs=True)
    return Client(url, token=token, policy=pol, trust=trust, **sealed)


def print_confidential(report: VerificationReport | None) -> None:
    """Say what bound the key a confidential request was sealed to (stderr)."""
    check = next((c for c in report.checks if c.name == "confidential"), None) if report else None
    if check is not None:
        err_console.print(
            f"confidential: {check.status.value}: {check.detail}", markup=False, soft_wrap=True
        )


def confidential_relay(node_url: str | None, confidential: bool, relay: str | None) -> str | None:
    """The relay of ``--confidential --relay URL``, the pair checked: each needs the
    other, both need ``--node``."""
    if not confidential and relay is None:
        return None
    if not confidential:
        raise InputError("--relay needs --confidential")
    if relay is None:
        raise InputError("--confidential needs --relay URL (an Oblivious HTTP relay)")
    if node_url is None:
        raise InputError("--confidential applies with --node URL only")
    parts = urlsplit(relay)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--relay must be the http(s) URL of an Oblivious HTTP relay: {relay!r}")
    if parts.username or parts.password:
        raise InputError("--relay must not hold credentials")
    return relay


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8080,
    max_jobs: Annotated[int, typer.Option("--max-jobs", help="Proving jobs at once.")] = 1,
    max_inflight: Annotated[
        int, typer.Option("--max-inflight", help="Requests served at once; more get 429.")
    ] = 256,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Seconds an inference may take.")
    ] = 60.0,
    relay: Annotated[
        str | None,
        typer.Option(
            "--relay",
            help="Forward chat requests for models this node does not hold to this "
            "OpenAI-compatible base URL (e.g. https://host/v1); receipts say so.",
        ),
    ] = None,
    relay_api_key: Annotated[
        str | None,
        typer.Option(
            "--relay-api-key",
            envvar="INFERPROOF_RELAY_API_KEY",
            help="Bearer token for the relay upstream (prefer the environment variable).",
        ),
    ] = None,
    max_model_bytes: Annotated[
        int, typer.Option("--max-model-bytes", help="Largest model a push may upload.", min=1)
    ] = MAX_MODEL_BYTES,
    chat_threads: Annotated[
        int, typer.Option("--chat-threads", help="Chat answers generated at once.", min=1)
    ] = 4,
    chat_timeout: Annotated[
        float, typer.Option("--chat-timeout", help="Seconds a chat answer may take.")
    ] = 600.0,
    max_context: Annotated[
        int, typer.Option("--max-context", help="Largest context (tokens) a GGUF runs with.")
    ] = DEFAULT_MAX_CTX,
    llama_threads: Annotated[
        int,
        typer.Option("--llama-threads", help="llama.cpp threads per answer (0: all cores).", min=0),
    ] = 0,
    llm_decode: Annotated[
        str,
        typer.Option(
            "--llm-decode",
            help="single: one row a step (default); paired: two rows a step, so a verifier "
            "on this build reproduces the fingerprint bit for bit (slower; docs/llm.md).",
        ),
    ] = "single",
    feed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--feed-host",
            help="A host that workflow feeds and webhooks created over the API may reach "
            "(repeatable; none by default).",
        ),
    ] = None,
    feeds_dir: Annotated[
        Path | None,
        typer.Option(
            "--feeds-dir", help="The folder file feeds created over the API are read from."
        ),
    ] = None,
    no_workflows: Annotated[
        bool, typer.Option("--no-workflows", help="Do not run workflow schedules here.")
    ] = False,
    anchor_every: Annotated[
        str | None,
        typer.Option(
            "--anchor-every",
            help="Anchor the log on chain every 60s, 5m... (HOME/chain.json names the contract).",
        ),
    ] = None,
    anchor_receipts: Annotated[
        int | None,
        typer.Option("--anchor-receipts", help="Anchor whenever N receipts were logged."),
    ] = None,
    anchor_key: Annotated[
        Path | None,
        typer.Option(
            "--anchor-key", help="The operator's hex private key file, to sign anchors here."
        ),
    ] = None,
    database: DatabaseOpt = None,
    blobs: BlobsOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    config_file: ConfigOpt = None,
    zk_backend: Annotated[
        str,
        typer.Option(
            "--zk-backend",
            help="Where ZK proofs are made: local (this node's threads), ray (a Ray the "
            "node starts) or ray://HOST:PORT (a Ray cluster); every proof is verified here.",
        ),
    ] = "local",
    workers: Annotated[
        int,
        typer.Option(
            "--workers", help="Node processes sharing the socket and the stores.", min=1, max=64
        ),
    ] = 1,
) -> None:
    """Serve this install's node over HTTP until Ctrl-C (the log is flushed on exit)."""
    from ..node import serve as run
    from ..workflows import parse_every

    if not 0 <= port <= 65535:
        raise InputError("--port must be 0..65535")
    if max_jobs < 1 or max_inflight < 1 or request_timeout <= 0:
        raise InputError("--max-jobs and --max-inflight must be >= 1, --request-timeout > 0")
    if relay_api_key is not None and relay is None:
        raise InputError("--relay-api-key needs --relay")
    config = NodeConfig(
        max_jobs=max_jobs,
        max_inflight=max_inflight,
        request_timeout=request_timeout,
        relay_url=check_upstream(relay) if relay is not None else None,
        relay_api_key=relay_api_key,
        max_model_bytes=max_model_bytes,
        chat_threads=chat_threads,
        chat_timeout=chat_timeout,
        workflows=not no_workflows,
        feed_hosts=frozenset(h.strip().lower() for h in feed_host or ()),
        feeds_dir=feeds_dir.resolve() if feeds_dir is not None else None,
        anchor_every=parse_every(anchor_every) if anchor_every is not None else None,
        anchor_receipts=anchor_receipts,
        anchor_key=anchor_key,
        shared_jobs=workers > 1,
        zk_backend=_zk_backend(zk_backend),
    )
    if max_context < 16:
        raise InputError("--max-context must be at least 16 tokens")
    # A bad URL or config file is refused before serving.
    storage = resolve_storage(database, blobs, s3_endpoint, config_file)
    if anchor_every is not None or anchor_receipts is not None:
        from ._chain import _deps

        _deps().ChainConfig.read(default_home())  # before serving: no chain.json, no start
    settings = LlamaSettings(n_threads=llama_threads, decode=llm_decode)
    chat = ChatConfig(settings=settings, max_ctx=max_context)
    if relay is not None:
        err_console.print(f"relaying chat for models not held here to {relay}", markup=False)
    err_console.print(f"node home: {default_home()}", markup=False)
    if not storage.embedded:
        where = ", ".join(f"{k}={_redact(v)}" for k, v in storage.environ().items())
        err_console.print(f"storage: {where}", markup=False)
    run(host, port, config=config, chat=chat, storage=storage, workers=workers)


def _zk_backend(text: str) -> str | None:
    """--zk-backend: None for local, else what RayProver takes."""
    if text == "local":
        return None
    if text == "ray" or text.startswith("ray://") or text.count(":") == 1:
        return text
    raise InputError("--zk-backend is local, ray, ray://HOST:PORT or HOST:PORT")


def _redact(url: str) -> str:
    """A URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


@token_app.command("create")
@handle_errors
def token_create(
    label: Annotated[str, typer.Option("--label", help="A note to recognise it by.")] = "",
    database: DatabaseOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Make a write token; it is printed once, as the last line, and stored only hashed."""
    store = token_store(resolve_storage(database, config=config_file))
    token = store.create(label)
    err_console.print("keep this token secret; it is not stored and cannot be shown again")
    sys.stdout.write(token + "\n")


@token_app.command("list")
@handle_errors
def token_list(database: DatabaseOpt = None, config_file: ConfigOpt = None) -> None:
    """List tokens by the first digits of their hash, with label and creation date."""
    for info in token_store(resolve_storage(database, config=config_file)).list():
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.created))
        console.print(f"{info.hash[:16]}  {when}  {info.label}", markup=False)


@token_app.command("revoke")
@handle_errors
def token_revoke(
    prefix: Annotated[str, typer.Argument(help="First hex digits of the token's hash.")],
    database: DatabaseOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Revoke a token (a running node stops accepting it at once; nodes sharing a
    database, within a second)."""
    info = token_store(resolve_storage(database, config=config_file)).revoke(prefix)
    console.print(f"revoked {info.hash[:16]} ({info.label})", markup=False)


# -- a node process on loopback (the demo, the tests and the benchmarks) ---------------
def start_node(home: Path, *, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m inferproof.node`` on loopback; return the process and its URL
    once ``/healthz`` answers 200."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferproof.node", "--host", "127.0.0.1", "--port", str(port),
         "--home", str(home)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "INFERPROOF_HOME": str(home)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise Error(f"the node did not start (exit code {proc.wait()})")
    url = line.removeprefix("listening on ")
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise Error(f"the node exited with code {proc.returncode} while starting")
        time.sleep(0.05)
    proc.kill()
    raise Error(f"the node did not become ready within {_START_SECONDS:.0f} s")


def stop_node(proc: subprocess.Popen[str], timeout: float = 30.0) -> int:
    """SIGTERM (graceful: in-flight requests finish, the log is flushed); kill if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode

"""Verify the receipt riding on an answer of the official ``openai`` client.

A node answers OpenAI's API unchanged but for one extra field, ``inferproof``, on the
response (or on a stream's last chunk): the receipt's bundle, and for a private
request its opening. :func:`verify_openai` checks it as :meth:`Client.chat` checks its
own answers, and also that the text the ``openai`` object shows is the signed answer.
The library never imports ``openai``: any object with ``to_dict()`` or
``model_dump()`` (pydantic), or a plain dict, will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._files import PathLike, read_content
from ..errors import InputError
from ..verify import Material, Policy, TrustRoot, VerificationReport, Verifier
from ._async import AsyncClient
from ._chatcheck import asked, chat_report, openai_parts, raise_if_failed
from ._core import DEFAULT_POLICY
from ._sync import Client

__all__ = ["verify_openai"]


def verify_openai(
    response: Any,
    *,
    client: Client | AsyncClient | None = None,
    trust: TrustRoot | None = None,
    policy: Policy | None = None,
    nonce: str | None = None,
    model: str | None = None,
    request: Mapping[str, Any] | None = None,
    model_file: PathLike | bytes | None = None,
    now: datetime | None = None,
) -> VerificationReport:
    """Verify the receipt on an ``openai`` answer: a ``ChatCompletion`` or
    ``Completion`` (or its dict), or a stream's chunks in order (a list: the last one
    carries the receipt). Return the report, or raise VerificationError naming the
    first failed check.

    Trust comes from a :class:`Client` (its pinned node, policy and checkpoint memory;
    the model file for re-execution is fetched from the node when the policy asks) or
    from ``trust`` and ``policy`` (offline: ``model_file`` for re-execution).
    ``nonce`` is the ``Inferproof-Nonce`` sent (the default policy requires it);
    ``model`` the model asked for, ``request`` the body given to ``create`` (both
    reported as not checked when absent).

    Example::

        nonce = secrets.token_hex(16)
        ask = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}
        answer = openai.chat.completions.create(**ask, extra_headers={"Inferproof-Nonce": nonce})
        report = verify_openai(answer, client=node, nonce=nonce, request=ask)
    """
    if client is not None:
        if trust is not None or policy is not None or model_file is not None:
            raise InputError("give a client, or a trust root and policy: not both")
        if isinstance(client, AsyncClient):
            raise InputError("with an AsyncClient, await client.verify_openai(...)")
        return client.verify_openai(response, nonce=nonce, model=model, request=request)
    if not isinstance(trust, TrustRoot):
        raise InputError("give a client=, or the trust root (trust=) to verify against")
    shown, got = openai_parts(response)
    model, sent = asked(request, shown.task, model)
    data = read_content(model_file, "model file") if model_file is not None else None
    material = Material(model_bytes=data, nonce=nonce, chat_opening=got.opening, now=now)
    report = Verifier(trust, policy or DEFAULT_POLICY).check(got.bundle, material)
    report = chat_report(report, shown, got, model, sent, None)
    raise_if_failed(report)
    return report

"""One capped HTTP download, shared by the Debian archive reader and the .deb fetcher."""

from __future__ import annotations

import httpx

from ..errors import Error

__all__ = ["http_get"]


def http_get(url: str, cap: int, over: Exception) -> bytes:
    """The body of ``url`` (redirects followed), read until ``cap`` bytes; ``over`` is
    raised beyond that, before more is held in memory.

    Example::

        data = http_get(url, 4096, InputError(f"{url} is over 4096 bytes"))
    """
    chunks: list[bytes] = []
    got = 0
    try:
        with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
            if response.status_code != 200:
                raise Error(f"{url} answered HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                got += len(chunk)
                if got > cap:
                    raise over
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise Error(f"could not download {url}: {exc}") from None
    return b"".join(chunks)

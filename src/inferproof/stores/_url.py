"""Database URLs as users write them, and as each driver wants them.

Users write ``postgresql://user@host:5432/db`` (libpq's form, what ``psql`` takes) or
``sqlite:///path``. SQLAlchemy needs the driver named (``postgresql+psycopg://``);
psycopg itself takes libpq's form. Nothing else is accepted: a URL names a database,
never a file to read or a program to run.
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["is_postgres", "libpq_url", "sqlalchemy_url"]

_POSTGRES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return url.startswith(_POSTGRES)


def sqlalchemy_url(url: str) -> str:
    """``url`` in SQLAlchemy's form, with psycopg 3 as the PostgreSQL driver.

    Example::

        sqlalchemy_url("postgresql://db/inferproof")  # 'postgresql+psycopg://db/inferproof'
    """
    if url.startswith("sqlite:///"):
        return url
    for prefix in _POSTGRES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise InputError(f"{url[:40]!r} is not a postgresql:// or sqlite:/// database URL")


def libpq_url(url: str) -> str:
    """``url`` as psycopg (libpq) takes it: ``postgresql://...``."""
    if not is_postgres(url):
        raise InputError(f"{url[:40]!r} is not a postgresql:// database URL")
    return "postgresql://" + url.split("://", 1)[1]

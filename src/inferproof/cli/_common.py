"""Shared CLI plumbing: one-line errors, exit codes, consoles."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ..errors import Error, InputError, VerificationError

# Exit codes: 0 success, 1 verification failed / policy not satisfied,
# 2 bad input or usage (the same code Click uses for usage errors).
EXIT_VERIFY_FAILED = 1
EXIT_INPUT = 2

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    first = " ".join(str(message).split())
    err_console.print(f"error: {first}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn our errors (and OS errors on user files) into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VerificationError as exc:
            fail(str(exc), EXIT_VERIFY_FAILED)
        except (InputError, Error) as exc:
            fail(str(exc), EXIT_INPUT)
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"{exc.strerror or exc}{where}", EXIT_INPUT)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def model_ref(text: str, suffix: str) -> str | Path:
    """A MODEL argument: a file when it looks like one (ends in ``suffix`` or holds a
    path separator), else a hub reference. Only the command line makes this guess:
    the library takes a ``str`` for a hub reference and a ``Path`` for a file."""
    return Path(text) if text.endswith(suffix) or os.sep in text else text


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def step_progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr for a long operation; yields a callback for step lines."""
    from rich.status import Status

    if not is_tty():
        yield lambda line: err_console.print(f"{title}: {line}", markup=False)
        return
    with Status(title, console=err_console) as status:
        yield lambda line: status.update(f"{title}: {line}")

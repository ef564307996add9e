"""``python -m inferproof.node [--host H] [--port P] [--home DIR]``: `inferproof serve`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._workers import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m inferproof.node")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--home", type=Path, default=None, help="INFERPROOF_HOME of the node")
    args = parser.parse_args()
    serve(args.host, args.port, home=args.home)


if __name__ == "__main__":
    main()

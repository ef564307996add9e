"""The reference of bench_scale.py: what a user would run instead of a node.

FastAPI + onnxruntime on uvicorn, one process, no receipt, no log: ``POST /infer``
takes ``{"x": [[...]]}`` and answers the outputs as JSON lists. Prints
``listening on URL`` like the node, so the benchmark starts both the same way.

Run: .venv/bin/python bench/_bare_server.py MODEL.onnx
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI


def main() -> None:
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/infer")
    def infer(body: dict[str, Any]) -> dict[str, Any]:
        x = np.asarray(body["x"], dtype=np.float32)
        result = session.run(outputs, {name: x})
        return {n: r.tolist() for n, r in zip(outputs, result, strict=True)}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

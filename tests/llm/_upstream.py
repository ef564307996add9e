"""A real OpenAI-compatible HTTP server on loopback: a second node answering through
the chat flow (stdlib http.server, so the relay is tested against real HTTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.runtime._llm_openai import error_body

ROUTES = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}


def _handler(node: LocalNode, seen: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # keep test output clean
            pass

        def _json(self, status: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._json(200, node.chat_models())
            else:
                self._json(404, error_body("not found", kind="not_found_error"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/broken/"):
                return self._broken(self.path.split("/")[2])
            task = ROUTES.get(self.path)
            if task is None:
                return self._json(404, error_body("not found", kind="not_found_error"))
            body = json.loads(raw)
            seen.append(body)
            model = str(body.get("model", ""))
            try:
                if body.get("stream"):
                    fn = node.chat_stream if task == "chat" else node.complete_stream
                    return self._stream(fn(model, body))
                answer = (node.chat if task == "chat" else node.complete)(model, body)
            except InputError as exc:
                return self._json(400, error_body(str(exc)))
            self._json(200, answer.response)

        def _stream(self, events: Iterator[dict[str, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in events:
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")

        def _broken(self, how: str) -> None:
            if how == "status":
                return self._json(500, error_body("upstream exploded", kind="server_error"))
            if how == "nojson":
                data = b"<html>oops</html>"
            elif how == "nousage":
                data = json.dumps(
                    {
                        "id": "x",
                        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                    }
                ).encode()
            elif how == "huge":
                data = b"[" + b"0," * (5 * 1024 * 1024) + b"0]"
            else:
                data = json.dumps({"choices": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve(node: LocalNode) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve ``node`` on an ephemeral loopback port; yield (base URL with /v1, bodies seen)."""
    seen: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(node, seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

"""A tiny HTTP client (standard library only): the harness talks to ComfyUI and the emulator with it."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any, Iterable, Mapping, NamedTuple


def free_port() -> int:
    """A loopback port free right now (for a child to listen on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpResponse(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


def http_request(method: str, url: str, *, json_body: Any = None, data: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> HttpResponse:
    """One request; HTTP error statuses are returned (not raised). Connection errors raise OSError."""
    hdrs = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpResponse(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, e.read(), dict(e.headers or {}))


def multipart_body(fields: Mapping[str, str], files: Iterable[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """(body, Content-Type) of a form upload: ``files`` are (field, filename, content, content type)."""
    boundary = "----kling" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode("utf-8")
    for field, filename, content, ctype in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode("utf-8")
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out), f"multipart/form-data; boundary={boundary}"

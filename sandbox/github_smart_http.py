"""Git smart HTTP for the stand-in: `git http-backend` run as a CGI per request."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flask import Request, Response


def run_http_backend(project_root: Path, path_info: str, request: Request) -> Response:
    """Answer one git request (info/refs, upload-pack, receive-pack) through git's own backend."""
    body = request.get_data()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode(),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
        # receive-pack is enabled per repository (http.receivepack); the user is for its logs.
        "REMOTE_USER": "sandbox",
    }
    for header in ("Content-Encoding", "Git-Protocol"):
        if header in request.headers:
            env["HTTP_" + header.upper().replace("-", "_")] = request.headers[header]
    proc = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
    return _cgi_response(proc.stdout)


def _cgi_response(output: bytes) -> Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status = 200
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return Response(body, status=status, headers=headers)

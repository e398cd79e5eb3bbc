"""AWS for `mainline demo --story ecs`: moto in server mode for ELBv2, CloudWatch, ECR, STS and
SES, and in front of it one endpoint (AWS_ENDPOINT_URL) that answers ECS's JSON API from the
stateful ECS of sandbox/ecs_model.py, whose deployments have their own ids and task
definitions, fail by the circuit breaker and stop tasks with ECS's reasons: what moto's ECS
(one deployment, always COMPLETED) cannot show. Every other request is passed to moto."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from botocore.exceptions import ClientError

from sandbox.demo_setup import port_free
from sandbox.ecs_model import EcsStandIn

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "content-encoding", "keep-alive"})


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocol's timestamps: epoch seconds
    raise TypeError(f"not JSON: {type(value).__name__}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AwsWorld:
    """moto_server on one port, the ECS-answering front on another."""

    def __init__(self, state: Path, port: int = 0):
        self.state = state
        self.ecs = EcsStandIn()
        self.ecs.tasks_per_tick = 2  # the demo's services have two tasks: one look starts (or fails) them
        self.lock = threading.Lock()
        self.port = port or free_port()
        self.moto_port = free_port()
        self.moto: subprocess.Popen | None = None
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def start(self) -> AwsWorld:
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} (AWS) is taken")
        self.state.mkdir(parents=True, exist_ok=True)
        moto = Path(sys.executable).with_name("moto_server")
        with (self.state / "moto.log").open("ab") as log:  # the child keeps its own descriptor
            self.moto = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.moto_port)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.moto_url}/moto-api/data.json", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start; see {self.state / 'moto.log'}") from None
                time.sleep(0.2)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True, name="aws-world").start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.moto is not None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()

    def answer_ecs(self, target: str, body: bytes) -> tuple[int, dict]:
        operation = target.removeprefix(ECS_TARGET)
        from botocore import xform_name

        params = json.loads(body or b"{}")
        with self.lock:
            try:
                return 200, getattr(self.ecs, xform_name(operation))(**params)
            except AttributeError:
                return 400, {"__type": "InvalidAction", "message": f"{operation} is not modelled by this stand-in"}
            except ClientError as exc:
                error = exc.response["Error"]
                return 400, {"__type": error["Code"], "message": error["Message"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        world = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                if target.startswith(ECS_TARGET):
                    status, answer = world.answer_ecs(target, body)
                    data = json.dumps(answer, default=_json_default).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", *HOP_BY_HOP)}
                upstream = requests.request(self.command, world.moto_url + self.path, data=body, headers=headers,
                                            timeout=30)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        return Handler

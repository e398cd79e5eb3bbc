"""A stand-in's WSGI app served on 127.0.0.1 from a daemon thread, as the demo and tests need it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class LocalServer:
    """Serve `app` on (`host`, `port`; 0 picks a free one) until `stop()`."""

    def __init__(self, app: WSGIApplication, host: str, port: int, name: str):
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self._server.server_port
        # A short poll keeps stop() quick; tests start and stop many stand-ins.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)
        self._thread.start()

    @property
    def app(self) -> WSGIApplication:
        """The app served; tests wrap it (e.g. to count requests) by setting it."""
        return self._server.app

    @app.setter
    def app(self, app: WSGIApplication) -> None:
        self._server.app = app

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

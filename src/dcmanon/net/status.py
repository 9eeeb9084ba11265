"""The node's status endpoint: ``GET /status`` (JSON) and ``GET /metrics`` (Prometheus text).

Counts, queue size and ages only: nothing about any image's content.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Snapshot = Callable[[], dict[str, Any]]

_HELP = {
    "received": ("counter", "Images acknowledged (durable in the spool)."),
    "refused": ("counter", "Images answered Out of Resources (spool full or unwritable)."),
    "deidentified": ("counter", "Images de-identified."),
    "forwarded": ("counter", "Images the destination answered Success for."),
    "duplicates": ("counter", "Images the destination already had (not sent again)."),
    "failed": ("counter", "Images moved to quarantine."),
    "retries": ("counter", "Images sent again after a failure."),
    "associations": ("counter", "Associations accepted."),
    "queued": ("gauge", "Images waiting in the spool."),
    "quarantined": ("gauge", "Images in quarantine."),
    "spool_bytes": ("gauge", "Bytes held in the spool."),
    "oldest_queued_seconds": ("gauge", "Age of the oldest image waiting (0: none)."),
}


def metrics_text(status: dict[str, Any]) -> str:
    """``status`` in the Prometheus text format (``dcmanon_node_<name>``).

    Examples
    --------
    >>> print(metrics_text({"received": 3}), end="")
    # HELP dcmanon_node_received Images acknowledged (durable in the spool).
    # TYPE dcmanon_node_received counter
    dcmanon_node_received 3
    """
    lines = []
    for name, (kind, text) in _HELP.items():
        if name not in status:
            continue
        value = status[name]
        metric = f"dcmanon_node_{name}"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}",
                  f"{metric} {value if value is not None else 0}"]
    return "\n".join(lines) + "\n"


class StatusServer:
    """Serve ``snapshot()`` over HTTP on ``host``:``port`` (0: any free port), in a thread."""

    def __init__(self, snapshot: Snapshot, host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path in ("", "/status"):
                    body = json.dumps(snapshot(), indent=1).encode()
                    kind = "application/json"
                elif path == "/metrics":
                    body = metrics_text(snapshot()).encode()
                    kind = "text/plain; version=0.0.4"
                else:
                    self.send_error(404, "try /status or /metrics")
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are not logged: the CLI decides what goes to stderr

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.address = (str(self._server.server_address[0]), int(self._server.server_address[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="dcmanon-status")
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

"""What the node's sockets share: no Nagle delay, and pynetdicom's settings."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

MAX_PDU = 1 << 20
"""The largest PDU the node receives: big PDUs cost fewer round trips through Python."""


def no_delay(sock: socket.socket) -> None:
    """Send small writes at once (no Nagle): a DIMSE message ends with a small PDU that would
    otherwise wait for the peer's delayed ACK (~40 ms per image)."""
    with contextlib.suppress(OSError):  # not TCP (e.g. a closed socket): nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def no_delay_on_open(event: Any) -> None:
    """pynetdicom ``EVT_CONN_OPEN`` handler: :func:`no_delay` on the association's socket."""
    transport = getattr(event.assoc.dul, "socket", None)
    sock = getattr(transport, "socket", None)
    if isinstance(sock, socket.socket):
        no_delay(sock)


def require_pynetdicom() -> None:
    """Raise :class:`~dcmanon.errors.MissingExtraError` unless pynetdicom is installed."""
    import importlib.util

    from dcmanon.errors import MissingExtraError

    if importlib.util.find_spec("pynetdicom") is None:
        raise MissingExtraError("the DICOM node needs the 'net' extra: "
                                "pip install 'dcmanon[net]'")

"""The node's listener: a Storage SCP (every storage SOP class, every transfer syntax) and
Verification (C-ECHO), answering Success only for what the spool holds durably."""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from dcmanon.errors import describe_os_error
from dcmanon.net._sockets import MAX_PDU, no_delay
from dcmanon.net.audit import Audit
from dcmanon.net.spool import Spool, SpoolFull

_log = logging.getLogger(__name__)

SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124
"""General status "Refused: Not Authorized" (PS3.7 C.5.21): no route takes the image."""
OUT_OF_RESOURCES = 0xA700
"""C-STORE "Refused: Out of Resources" (PS3.4 Table B.2-1): the sender keeps the image."""


def storage_ae(ae_title: str) -> AE:
    """An AE that accepts every storage SOP class in every transfer syntax, and C-ECHO."""
    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = MAX_PDU
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax is not None:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    return ae


class _Server(ThreadedAssociationServer):
    """pynetdicom's server with Nagle off on every connection and an address allow-list."""

    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        no_delay(client)
        return client, address

    def shutdown(self) -> None:
        # As pynetdicom's, but for a server its AE did not start (make_server, not
        # start_server): the AE has no record of it to remove.
        socketserver.BaseServer.shutdown(self)
        self.server_close()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if not self.allowed:
            return True
        host = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if any(ip in network for network in self.allowed):
            return True
        _log.warning("connection from %s refused: not in the allowed addresses", host)
        return False


def parse_networks(addresses: Sequence[str]) -> tuple[ipaddress.IPv4Network
                                                      | ipaddress.IPv6Network, ...]:
    """``10.0.0.5``, ``10.0.0.0/24``, ``::1`` as networks.

    Raises
    ------
    ValueError
        If one is not an address or a network.
    """
    return tuple(ipaddress.ip_network(a, strict=False) for a in addresses)


@dataclass(frozen=True)
class Inbox:
    """Where an association's images go: a spool, and whom to wake when one is in."""

    spool: Spool
    stored: Callable[[], None]
    route: str = ""
    """The route's name (empty: the node has one pipeline)."""


Select = Callable[[str, str, str], "Inbox | None"]
"""(called AE, calling AE, address) -> the inbox of the association, or None to refuse it."""


class StorageSCP:
    """Receive images into a spool.

    Parameters
    ----------
    select : callable
        (called AE title, calling AE title, address) -> :class:`Inbox`, or None: the
        association is refused.
    audit : Audit
        Counters and audit log.
    ae_title : str
        The node's AE title.
    any_called_ae : bool
        Take associations to any called AE title (``select`` decides); else only to
        ``ae_title``.
    allowed_ae : sequence of str
        Calling AE titles accepted (empty: any).
    allowed_hosts : sequence of str
        Addresses or networks accepted (empty: any).
    ssl_context : ssl.SSLContext, optional
        TLS for every association.
    """

    def __init__(self, select: Select, audit: Audit, *, ae_title: str = "DCMANON",
                 any_called_ae: bool = False, allowed_ae: Sequence[str] = (),
                 allowed_hosts: Sequence[str] = (),
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.select = select
        self.audit = audit
        self.ae = storage_ae(ae_title)
        self.ae.require_called_aet = not any_called_ae
        if allowed_ae:
            self.ae.require_calling_aet = list(allowed_ae)
        self.allowed = parse_networks(allowed_hosts)
        self.ssl_context = ssl_context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host``:``port`` (0: any free port); returns the address bound."""
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store),
                               (evt.EVT_ACCEPTED, self._on_accepted)]
        server_class = type("NodeServer", (_Server,), {"allowed": self.allowed})
        server = self.ae.make_server((host, port), evt_handlers=handlers,
                                     ssl_context=self.ssl_context, server_class=server_class)
        assert isinstance(server, _Server)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="dcmanon-listen",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def stop(self, timeout: float = 60.0) -> None:
        """Take no new association; wait (up to ``timeout`` s) for the current ones to end."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        for assoc in server.active_associations:
            if assoc.is_established:
                assoc.join(timeout)
            else:  # a connection that never asked for an association (a port probe)
                assoc.kill()
        self._server = None

    def _inbox(self, event: Any) -> Inbox | None:
        requestor = event.assoc.requestor
        called = getattr(requestor.primitive, "called_ae_title", "") or ""
        return self.select(str(called).strip(), str(requestor.ae_title).strip(),
                           str(requestor.address))

    def _on_accepted(self, event: Any) -> None:
        inbox = self._inbox(event)
        fields: dict[str, Any] = {"calling_ae": event.assoc.requestor.ae_title,
                                  "address": event.assoc.requestor.address}
        if inbox is None:
            self.audit.event("refused", "refused", reason="no route for this association",
                             **fields)
            event.assoc.abort()
            return
        if inbox.route:
            fields["route"] = inbox.route
        self.audit.event("association", "associations", **fields)

    def _on_store(self, event: Any) -> int:
        inbox = self._inbox(event)
        if inbox is None:
            return NOT_AUTHORIZED
        # The bytes as received, with their file meta: never decoded here.
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # noqa: BLE001  (a malformed request is refused, not acknowledged)
            self.audit.event("refused", "refused", reason="malformed C-STORE request",
                             calling_ae=event.assoc.requestor.ae_title)
            return OUT_OF_RESOURCES
        try:
            item = inbox.spool.store(data)
        except SpoolFull as exc:
            self.audit.event("refused", "refused", reason=str(exc),
                             calling_ae=event.assoc.requestor.ae_title)
            return OUT_OF_RESOURCES
        except OSError as exc:
            reason = f"{inbox.spool.root}: cannot write ({describe_os_error(exc)})"
            _log.error("image refused: %s", reason)
            self.audit.event("refused", "refused", reason=reason,
                             calling_ae=event.assoc.requestor.ae_title)
            return OUT_OF_RESOURCES
        fields = {"item": item, "calling_ae": event.assoc.requestor.ae_title,
                  "address": event.assoc.requestor.address,
                  "sop_class_uid": str(event.request.AffectedSOPClassUID), "bytes": len(data)}
        if inbox.route:
            fields["route"] = inbox.route
        self.audit.event("received", "received", **fields)
        inbox.stored()
        return SUCCESS

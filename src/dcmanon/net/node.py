"""A DICOM node: a Storage SCP that spools, a worker that de-identifies and forwards, and a
status endpoint, started and stopped together."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmanon.errors import UsageError
from dcmanon.net._sockets import require_pynetdicom
from dcmanon.net.audit import Audit
from dcmanon.net.spool import Spool

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer
    from dcmanon.net.forward import Destination
    from dcmanon.net.process import WorkerProcess
    from dcmanon.net.routes import Route
    from dcmanon.net.scp import Inbox, StorageSCP
    from dcmanon.net.status import StatusServer
    from dcmanon.net.worker import RetryPolicy, Worker

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeSettings:
    """How a node listens, where it spools and where it forwards."""

    spool: Path
    forward: str | None = None
    """``AE@HOST:PORT`` of the destination (C-STORE)."""
    forward_folder: Path | None = None
    forward_dicomweb: str | None = None
    """The DICOMweb service root of the destination (STOW-RS)."""
    host: str = "0.0.0.0"
    port: int = 11112
    ae_title: str = "DCMANON"
    spool_limit: int | None = None
    """Bytes; past it, images are answered Out of Resources."""
    batch_size: int = 64
    timeout: float = 30.0
    """Seconds the destination has to connect, associate and answer."""
    audit_log: Path | None = None
    status_host: str = "127.0.0.1"
    status_port: int | None = None
    allowed_ae: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    forward_tls: bool = False
    """C-STORE to the destination over TLS."""
    forward_tls_ca: Path | None = None
    forward_tls_cert: Path | None = None
    forward_tls_key: Path | None = None
    mapping_dir: Path | None = None
    """Append uid_mapping.csv and patient_mapping.csv here (the anonymizer records them);
    with routes, in a folder per route."""


def make_destination(settings: NodeSettings) -> Destination:
    """The destination ``settings`` name (exactly one of ``forward``, ``forward_folder``,
    ``forward_dicomweb``).

    Raises
    ------
    UsageError
        If none or several are given, or one is malformed.
    """
    from dcmanon.net.dicomweb import DicomWebDestination
    from dcmanon.net.forward import FolderDestination, StoreDestination, TlsClient

    given = [d for d in (settings.forward, settings.forward_folder, settings.forward_dicomweb)
             if d is not None]
    if len(given) != 1:
        raise UsageError("give one destination: --forward AE@HOST:PORT, --forward-folder DIR "
                         "or --forward-dicomweb URL")
    if settings.forward_folder is not None:
        return FolderDestination(settings.forward_folder)
    if settings.forward_dicomweb is not None:
        return DicomWebDestination(settings.forward_dicomweb, settings.timeout)
    assert settings.forward is not None
    tls = None
    if settings.forward_tls or settings.forward_tls_ca or settings.forward_tls_cert:
        tls = TlsClient(settings.forward_tls_ca, settings.forward_tls_cert,
                        settings.forward_tls_key)
        try:
            tls.context()  # refused now, not at the first send
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--forward-tls: cannot load the CA, certificate or key "
                             f"({type(exc).__name__})") from None
    return StoreDestination(settings.forward, settings.ae_title, settings.timeout, tls)


def tls_context(settings: NodeSettings) -> ssl.SSLContext | None:
    """The server's TLS context (None without ``tls_cert``); with ``tls_client_ca``, clients
    must present a certificate it signed.

    Raises
    ------
    UsageError
        If the certificate, key or CA cannot be loaded.
    """
    if settings.tls_cert is None:
        if settings.tls_key is not None or settings.tls_client_ca is not None:
            raise UsageError("--tls-key and --tls-client-ca need --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_client_ca is not None:
            context.load_verify_locations(settings.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"{settings.tls_cert}: cannot load the TLS certificate, key or "
                         f"client CA ({type(exc).__name__}: {exc.strerror or exc})") from None
    return context


@dataclass
class Pipeline:
    """One route through the node: its spool, destination and worker."""

    name: str
    spool: Spool
    destination: Destination
    worker: Worker | WorkerProcess
    route: Route | None = None


class Node:
    """Receive, de-identify, forward; never lose what was acknowledged.

    Parameters
    ----------
    settings : NodeSettings
        Where it listens, spools and forwards.
    anonymizer : Anonymizer, optional
        The configuration and keys applied to every image (without ``routes``).
    retry : RetryPolicy, optional
        Backoff and attempts when forwarding fails.
    routes : sequence of (Route, Anonymizer)
        Several pipelines instead of one (:mod:`dcmanon.net.routes`): each spools under
        ``<spool>/<name>`` and forwards to its own destination.
    worker_process : bool
        De-identify and forward in a process of its own (default), so that receiving never
        waits for the interpreter lock; False: in a thread of this process.
    """

    def __init__(self, settings: NodeSettings, anonymizer: Anonymizer | None = None,
                 retry: RetryPolicy | None = None, *,
                 routes: Sequence[tuple[Route, Anonymizer]] = (),
                 worker_process: bool = True) -> None:
        require_pynetdicom()
        from dcmanon.net.scp import StorageSCP

        self.settings = settings
        context = tls_context(settings)
        self.audit = Audit(settings.audit_log)
        self.pipelines: list[Pipeline] = []
        if routes:
            for route, route_anonymizer in routes:
                destination = make_destination(replace(
                    settings, forward=route.forward, forward_folder=route.forward_folder,
                    forward_dicomweb=route.forward_dicomweb))
                self._add(route.name, settings.spool / route.name, destination,
                          route_anonymizer, retry, worker_process, route)
        else:
            if anonymizer is None:
                raise UsageError("a node needs an anonymizer, or routes")
            self._add("", settings.spool, make_destination(settings), anonymizer, retry,
                      worker_process, None)
        try:
            self.scp: StorageSCP = StorageSCP(
                self._select, self.audit, ae_title=settings.ae_title,
                any_called_ae=bool(routes), allowed_ae=settings.allowed_ae,
                allowed_hosts=settings.allowed_hosts, ssl_context=context)
        except ValueError as exc:
            raise UsageError(f"--allow-host: {exc}") from None
        self.status_server: StatusServer | None = None
        self.address: tuple[str, int] | None = None

    def _add(self, name: str, root: Path, destination: Destination, anonymizer: Anonymizer,
             retry: RetryPolicy | None, worker_process: bool, route: Route | None) -> None:
        from dcmanon.net.process import WorkerProcess
        from dcmanon.net.worker import Worker

        spool = Spool(root, self.settings.spool_limit)
        mappings = self.settings.mapping_dir
        mapping_dir = str(mappings / name if name else mappings) if mappings else None
        worker: Worker | WorkerProcess
        if worker_process:
            worker = WorkerProcess(spool, anonymizer, destination, self.audit,
                                   batch_size=self.settings.batch_size, retry=retry, route=name,
                                   mapping_dir=mapping_dir)
        else:
            worker = Worker(spool, anonymizer, destination, self.audit,
                            batch_size=self.settings.batch_size, retry=retry,
                            mapping_dir=mapping_dir)
        self.pipelines.append(Pipeline(name, spool, destination, worker, route))

    def _select(self, called: str, calling: str, address: str) -> Inbox | None:
        from dcmanon.net.scp import Inbox

        for pipeline in self.pipelines:
            if pipeline.route is None or pipeline.route.matches(called, calling, address):
                return Inbox(pipeline.spool, pipeline.worker.wake, pipeline.name)
        return None

    @property
    def spool(self) -> Spool:
        """The first pipeline's spool (the only one without routes)."""
        return self.pipelines[0].spool

    @property
    def destination(self) -> Destination:
        """The first pipeline's destination (the only one without routes)."""
        return self.pipelines[0].destination

    def start(self) -> tuple[str, int]:
        """Resume the spools, listen, serve the status; returns the DICOM address bound."""
        for pipeline in self.pipelines:
            pipeline.worker.start()
        try:
            self.address = self.scp.start(self.settings.host, self.settings.port)
        except OSError as exc:
            for pipeline in self.pipelines:
                pipeline.worker.stop()
            raise UsageError(f"cannot listen on {self.settings.host}:{self.settings.port} "
                             f"({exc.strerror or type(exc).__name__})") from None
        if self.settings.status_port is not None:
            from dcmanon.net.status import StatusServer

            self.status_server = StatusServer(self.status, self.settings.status_host,
                                              self.settings.status_port)
        return self.address

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the associations in progress (up to ``timeout`` s), then the batches in
        progress; what is left stays in the spools for the next start."""
        self.scp.stop(timeout)
        for pipeline in self.pipelines:
            pipeline.worker.stop(timeout)
        if self.status_server is not None:
            self.status_server.stop()
        self.audit.close()
        for pipeline in self.pipelines:
            pipeline.spool.close()

    def queued(self) -> int:
        """Images waiting in every spool."""
        return sum(len(p.spool.pending()) for p in self.pipelines)

    def wait_forwarded(self, timeout: float) -> bool:
        """Wait until the queues are empty (True) or ``timeout`` s passed (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queued():
                return True
            time.sleep(0.05)
        return False

    def status(self) -> dict[str, Any]:
        """What the status endpoint serves."""
        counters = self.audit.snapshot()
        ages = [age for p in self.pipelines if (age := p.spool.oldest_age()) is not None]
        return {
            "received": counters.received,
            "refused": counters.refused,
            "deidentified": counters.deidentified,
            "forwarded": counters.forwarded,
            "duplicates": counters.duplicates,
            "failed": counters.failed,
            "retries": counters.retries,
            "associations": counters.associations,
            "queued": self.queued(),
            "quarantined": sum(len(p.spool.quarantined_items()) for p in self.pipelines),
            "spool_bytes": sum(p.spool.used for p in self.pipelines),
            "oldest_queued_seconds": round(max(ages), 3) if ages else 0,
            "destination": ", ".join(p.destination.name for p in self.pipelines),
            "routes": {p.name: {"queued": len(p.spool.pending()),
                                "destination": p.destination.name}
                       for p in self.pipelines if p.name},
            "uptime_seconds": round(time.time() - counters.started, 3),
            "pid": os.getpid(),
        }

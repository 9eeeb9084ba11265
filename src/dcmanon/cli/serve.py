"""``dcmanon serve``: run a DICOM node (receive, de-identify, forward)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from dcmanon.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    config_options,
    fail,
    guarded,
    limit_options,
    load_run_config,
    parse_size,
    pixels_option,
    warn_keys,
)


def _size_or_none(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_size(ctx, param, value)


@click.command("serve")
@click.option("--spool", "spool", required=True, type=click.Path(file_okay=False),
              help="Folder where received images wait until the destination has them "
                   "(resumed at start-up).")
@click.option("--forward", "forward", metavar="AE@HOST:PORT",
              help="Forward by C-STORE to this DICOM peer.")
@click.option("--forward-folder", "forward_folder", type=click.Path(file_okay=False),
              help="Forward to this folder (<Study>/<Series>/<SOP>.dcm, de-identified UIDs).")
@click.option("--forward-dicomweb", "forward_dicomweb", metavar="URL",
              help="Forward by DICOMweb STOW-RS to this service root "
                   "(https://host/dicom-web; user:password@ in the URL for Basic auth).")
@click.option("--routes", "routes_file", type=click.Path(dir_okay=False),
              help="Several pipelines, chosen by called AE, calling AE or address, each with "
                   "its configuration, key and destination (JSON; see docs/node.md); instead "
                   "of --forward, --forward-folder and the configuration options.")
@click.option("--host", "host", default="0.0.0.0", show_default=True,
              help="Address to listen on.")
@click.option("--port", "port", default=11112, show_default=True,
              type=click.IntRange(0, 65535), help="Port to listen on (0: any free port).")
@click.option("--ae-title", "ae_title", default="DCMANON", show_default=True,
              help="The called AE title the node answers to (and calls the destination "
                   "with).")
@click.option("--spool-limit", "spool_limit", metavar="SIZE", callback=_size_or_none,
              help="Answer Out of Resources past this much spooled data (e.g. 20GiB); a "
                   "full disk does the same.")
@click.option("--batch-size", "batch_size", default=64, show_default=True,
              type=click.IntRange(1, 128), help="Images forwarded per association at most.")
@click.option("--timeout", "timeout", default=30.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds the destination has to connect, associate and answer.")
@click.option("--retry-max-delay", "retry_max_delay", default=60.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Longest wait between two attempts to forward (the first comes after 1 s, "
                   "each next one waits twice as long).")
@click.option("--max-attempts", "max_attempts", default=8, show_default=True,
              type=click.IntRange(min=1),
              help="Quarantine an image the destination refused this many times with a "
                   "transient status (one it cannot reach is retried without end).")
@click.option("--audit-log", "audit_log", type=click.Path(dir_okay=False),
              help="Append JSON lines here: received, de-identified, forwarded, failed "
                   "(pseudonyms and de-identified UIDs only).")
@click.option("--status-port", "status_port", type=click.IntRange(0, 65535),
              help="Serve /status (JSON) and /metrics (Prometheus) over HTTP on this port.")
@click.option("--status-host", "status_host", default="127.0.0.1", show_default=True,
              help="Address of the status endpoint.")
@click.option("--allow-ae", "allowed_ae", multiple=True, metavar="AE",
              help="Accept only this calling AE title; repeat for several.")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="ADDRESS",
              help="Accept only this address or network (10.0.0.0/24); repeat for several.")
@click.option("--tls-cert", "tls_cert", type=click.Path(dir_okay=False),
              help="Serve DICOM over TLS with this certificate (PEM).")
@click.option("--tls-key", "tls_key", type=click.Path(dir_okay=False),
              help="The TLS private key (PEM), if not in --tls-cert.")
@click.option("--tls-client-ca", "tls_client_ca", type=click.Path(dir_okay=False),
              help="Require client certificates signed by this CA (PEM).")
@click.option("--forward-tls", "forward_tls", is_flag=True,
              help="C-STORE to the destination over TLS (its certificate verified against "
                   "the system's CAs, or --forward-tls-ca).")
@click.option("--forward-tls-ca", "forward_tls_ca", type=click.Path(dir_okay=False),
              help="The CA (PEM) that signed the destination's certificate; implies "
                   "--forward-tls.")
@click.option("--forward-tls-cert", "forward_tls_cert", type=click.Path(dir_okay=False),
              help="The node's client certificate (PEM) for the destination; implies "
                   "--forward-tls.")
@click.option("--forward-tls-key", "forward_tls_key", type=click.Path(dir_okay=False),
              help="Its private key (PEM), if not in --forward-tls-cert.")
@click.option("--requeue", "requeue", is_flag=True,
              help="Put every quarantined image of the spool back in its queue, then exit.")
@config_options("to apply")
@click.option("--mapping-dir", "mapping_dir", type=click.Path(file_okay=False),
              help="Append uid_mapping.csv and patient_mapping.csv (id_old,id_new) here as "
                   "images are de-identified (with --routes, a folder per route). They "
                   "re-identify the data: keep them apart from it.")
@click.option("--validateInput", "validate_input", is_flag=True,
              help="Check every input value against its VR; failing images are quarantined.")
@click.option("--validateOutput", "validate_output", is_flag=True,
              help="Check every output value against its VR; failing images are quarantined.")
@pixels_option
@limit_options
def serve_command(spool: str, forward: str | None, forward_folder: str | None,
                  forward_dicomweb: str | None, routes_file: str | None, host: str,
                  port: int, ae_title: str, spool_limit: int | None, batch_size: int,
                  timeout: float, retry_max_delay: float, max_attempts: int,
                  audit_log: str | None, status_port: int | None,
                  status_host: str, allowed_ae: tuple[str, ...],
                  allowed_hosts: tuple[str, ...], tls_cert: str | None, tls_key: str | None,
                  tls_client_ca: str | None, forward_tls: bool, forward_tls_ca: str | None,
                  forward_tls_cert: str | None, forward_tls_key: str | None, requeue: bool,
                  config_file: str | None, key_file: str | None, profile: str | None,
                  options: tuple[str, ...], mapping_dir: str | None,
                  validate_input: bool, validate_output: bool, pixels: str | None,
                  max_inflated_size: int, max_nesting: int) -> None:
    """Run a DICOM node: receive images (C-STORE), de-identify them, forward them.

    \b
      dcmanon serve --port 11112 --ae-title DCMANON --spool /var/spool/dcmanon \\
          --forward RESEARCH@pacs.example.org:104 -c config.json --key-file key.txt

    An image is acknowledged (C-STORE Success) only once its bytes are written to the spool
    and flushed to disk; it leaves the spool only when the destination answered Success.
    Forwarding runs in batches (one association each), retries with backoff, and moves
    images that can never be sent to <spool>/quarantine with a reason file (--requeue puts
    them back). Stop with SIGTERM or Ctrl-C: the associations in progress end, the spool is
    kept and resumed at the next start.
    """
    def run() -> None:
        from dcmanon.net.node import Node, NodeSettings
        from dcmanon.net.worker import RetryPolicy

        if requeue:
            from dcmanon.net.spool import Spool

            store = Spool(spool, owner=False)  # a running node picks them up too
            count = store.requeue()
            store.close()
            click.echo(f"dcmanon: {count} quarantined image(s) put back in {spool}/queue",
                       err=True)
            return
        from dcmanon.anonymizer import Anonymizer

        def anonymizer_for(config: Any, mode: str | None) -> Anonymizer:
            return Anonymizer(config, validate_input=validate_input,
                              validate_output=validate_output,
                              record_mappings=mapping_dir is not None,
                              max_inflated_size=max_inflated_size, max_nesting=max_nesting,
                              pixels=mode)

        routes: list[Any] = []
        anonymizer = None
        if routes_file is not None:
            if any((forward, forward_folder, forward_dicomweb, config_file, key_file, profile,
                    options)):
                fail("--routes gives each route its destination, configuration and key: "
                     "leave out --forward, --forward-folder, --forward-dicomweb, -c, "
                     "--key-file, --profile and --option")
            from dcmanon.net.routes import load_routes

            # A route's own "pixels" wins, then --pixels, then its configuration's.
            routes = [(route, anonymizer_for(warn_keys(route.config()), route.pixels or pixels))
                      for route in load_routes(routes_file)]
        else:
            anonymizer = anonymizer_for(load_run_config(config_file, key_file, profile,
                                                        options), pixels)
        settings = NodeSettings(
            spool=Path(spool), forward=forward, forward_dicomweb=forward_dicomweb,
            forward_folder=Path(forward_folder) if forward_folder else None, host=host,
            port=port, ae_title=ae_title, spool_limit=spool_limit, batch_size=batch_size,
            timeout=timeout, audit_log=Path(audit_log) if audit_log else None,
            status_host=status_host, status_port=status_port, allowed_ae=allowed_ae,
            allowed_hosts=allowed_hosts, tls_cert=Path(tls_cert) if tls_cert else None,
            tls_key=Path(tls_key) if tls_key else None,
            tls_client_ca=Path(tls_client_ca) if tls_client_ca else None,
            forward_tls=forward_tls,
            forward_tls_ca=Path(forward_tls_ca) if forward_tls_ca else None,
            forward_tls_cert=Path(forward_tls_cert) if forward_tls_cert else None,
            forward_tls_key=Path(forward_tls_key) if forward_tls_key else None,
            mapping_dir=Path(mapping_dir) if mapping_dir else None)
        retry = RetryPolicy(first=min(1.0, retry_max_delay), longest=retry_max_delay,
                            attempts=max_attempts)
        node = Node(settings, anonymizer, retry, routes=routes)
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        bound = node.start()
        queued = node.queued()
        targets = ", ".join(f"{p.name + ': ' if p.name else ''}{p.destination.name}"
                            for p in node.pipelines)
        click.echo(f"dcmanon: node {ae_title} listening on {bound[0]}:{bound[1]}, "
                   f"forwarding to {targets}"
                   + (f"; {queued} image(s) resumed from the spool" if queued else ""),
                   err=True)
        if node.status_server is not None:
            address = node.status_server.address
            click.echo(f"dcmanon: status on http://{address[0]}:{address[1]}/status", err=True)
        while not stopping.wait(1.0):
            pass
        click.echo("dcmanon: stopping: finishing the associations in progress; the spool is "
                   "kept", err=True)
        node.stop()
        status = node.status()
        click.echo(f"dcmanon: stopped: {status['received']} received, "
                   f"{status['forwarded']} forwarded, {status['failed']} quarantined, "
                   f"{status['queued']} left in the spool", err=True)

    guarded(run)
    raise SystemExit(EXIT_OK)


@click.command("pull")
@click.argument("peer", metavar="AE@HOST:PORT")
@click.option("--move-to", "move_to", metavar="AE",
              help="The AE title of the node (a running `dcmanon serve`, known to the PACS) "
                   "the studies are moved to (C-MOVE).")
@click.option("--patient-id", "patient_ids", multiple=True, metavar="ID",
              help="Studies of this patient; repeatable.")
@click.option("--accession", "accessions", multiple=True, metavar="NUMBER",
              help="The study with this accession number; repeatable.")
@click.option("--study-uid", "study_uids", multiple=True, metavar="UID",
              help="The study with this Study Instance UID; repeatable.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False),
              help="A CSV file whose columns patient_id, accession or study_uid list studies.")
@click.option("--ae-title", "ae_title", default="DCMANON", show_default=True,
              help="The calling AE title towards the PACS.")
@click.option("--timeout", "timeout", default=60.0, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds to connect and associate.")
@click.option("--get-into", "get_into", type=click.Path(file_okay=False), metavar="SPOOL",
              help="Instead of --move-to: retrieve with C-GET into this node spool (the "
                   "--spool of `dcmanon serve`, which forwards them, now or at its start).")
def pull_command(peer: str, move_to: str | None, patient_ids: tuple[str, ...],
                 accessions: tuple[str, ...], study_uids: tuple[str, ...],
                 csv_file: str | None, ae_title: str, timeout: float,
                 get_into: str | None) -> None:
    """Query a PACS and move the studies found to a node, which de-identifies and forwards.

    \b
      dcmanon pull PACS@10.0.0.2:104 --move-to DCMANON --accession A123 --accession A124
      dcmanon pull PACS@10.0.0.2:104 --move-to DCMANON --csv studies.csv
      dcmanon pull PACS@10.0.0.2:104 --get-into /var/spool/dcmanon --patient-id 123

    C-FIND at study level for each patient ID, accession number or Study Instance UID, then
    C-MOVE of each study found to --move-to (the PACS must know that AE title, with the
    node's address and port), or C-GET into the node's spool (--get-into). Only counts are
    printed: what the PACS answers identifies.

    \b
    Exit status:
      0  every study moved
      1  a query or a move failed (counted; the rest went on)
      2  usage error, or the PACS cannot be reached
    """
    if (move_to is None) == (get_into is None):
        fail("give where the studies go: --move-to AE (C-MOVE to a running node) or "
             "--get-into SPOOL (C-GET into a node's spool)", EXIT_USAGE)

    def run() -> None:
        from dcmanon.net.pull import pull, read_queries
        from dcmanon.net.spool import Spool

        queries = [("patient_id", v) for v in patient_ids] + [
            ("accession", v) for v in accessions] + [("study_uid", v) for v in study_uids]
        if csv_file is not None:
            queries += read_queries(csv_file)
        if not queries:
            fail("give what to pull: --patient-id, --accession, --study-uid or --csv")
        spool = Spool(get_into, owner=False) if get_into is not None else None
        try:
            result = pull(peer, move_to, queries, calling_ae=ae_title, timeout=timeout,
                          spool=spool)
        finally:
            if spool is not None:
                spool.close()
        for problem in result.problems:
            click.echo(f"dcmanon: error: {problem}", err=True)
        where = f"moved to {move_to}" if move_to else f"retrieved into {get_into}"
        click.echo(f"dcmanon: {result.queries} queries, {result.studies} studies found, "
                   f"{result.moved} images {where}, {result.failed} failed", err=True)
        if result.problems or result.failed:
            raise SystemExit(EXIT_FAILED)

    guarded(run)
    raise SystemExit(EXIT_OK)

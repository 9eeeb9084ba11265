"""The node over TLS, with DCMTK's storescu +tls as the sender (certificates made by the test)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.net_peers import (
    HOST,
    free_port,
    pseudonymous_uids,
    received_uids,
    start_node,
    stop,
    storescp,
    storescu,
    wait_for,
    write_series,
)

pytestmark = [pytest.mark.peer, pytest.mark.usefixtures("no_process_left")]
Tool = Callable[[str], str]


Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _certificate(folder: Path, name: str, issuer: Issued | None) -> Issued:
    """A certificate and its key, written as ``<name>.pem`` and ``<name>.key`` (PEM);
    self-signed as a CA without ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1)))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False)
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    return certificate, key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    folder = tmp_path / "pki"
    folder.mkdir()
    ca = _certificate(folder, "ca", None)
    _certificate(folder, "server", ca)
    _certificate(folder, "client", ca)
    return folder


def test_storescu_over_tls(tmp_path: Path, pki: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 3, patient=1)
    out = tmp_path / "out"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(out),
                      "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    try:
        plain = storescu(external_tool("storescu"), node.port, files[:1])
        assert not plain.acknowledged
        sent = storescu(external_tool("storescu"), node.port, files, "+tla",
                        "+cf", str(pki / "ca.pem"))
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == len(files), 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    assert {p.stem for p in out.rglob("*.dcm")} == pseudonymous_uids(files)


def test_client_certificates_required(tmp_path: Path, pki: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 2, patient=1)
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(tmp_path / "out"),
                      "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                      "--tls-client-ca", str(pki / "ca.pem"))
    try:
        anonymous = storescu(external_tool("storescu"), node.port, files, "+tla",
                             "+cf", str(pki / "ca.pem"))
        assert not anonymous.acknowledged
        sent = storescu(external_tool("storescu"), node.port, files, "+tls",
                        str(pki / "client.key"), str(pki / "client.pem"),
                        "+cf", str(pki / "ca.pem"))
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        assert node.status()["received"] == len(files)
    finally:
        assert stop(node.process) == 0


def test_forwarding_over_tls_to_storescp(tmp_path: Path, pki: Path,
                                         external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 3, patient=1)
    dest_port = free_port()
    # storescp over TLS, requiring a client certificate signed by the test CA.
    dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port, "+tls",
                    str(pki / "server.key"), str(pki / "server.pem"), "+cf", str(pki / "ca.pem"))
    node = start_node(tmp_path, tmp_path / "spool", "--forward", f"DEST@{HOST}:{dest_port}",
                      "--forward-tls-ca", str(pki / "ca.pem"),
                      "--forward-tls-cert", str(pki / "client.pem"),
                      "--forward-tls-key", str(pki / "client.key"))
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == len(files), 60, "forwarded")
    finally:
        assert stop(node.process) == 0
        stop(dest)
    assert set(received_uids(tmp_path / "received")) == pseudonymous_uids(files)

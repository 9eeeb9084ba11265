"""The standard's way back: ``--encrypt-to`` keeps the originals encrypted (PS3.15 E.1.1,
Encrypted Attributes Sequence), ``dcmanon reidentify`` restores them with the private key.

Certificates and keys are made here, for each test session (never committed); openssl is the
independent check of the CMS content.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from dcmanon import cli
from dcmanon.testing import make_instance, make_patient, phi_markers, write_study_tree
from tests.peer_tools import dciodvfy_errors
from tests.test_cli import run_process

KEY = "test-reidentify-project-secret-of-32-chars"
IDENTITY = ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "SeriesDate",
            "ContentDate", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
            "FrameOfReferenceUID")


def run(*args: object) -> Result:
    """The real command in-process; never a traceback."""
    result = CliRunner(env={"DCMANON_KEY": KEY}).invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    return result


def _recipient(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its private key (PEM), written to ``folder``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dcmanon test {name}")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def recipients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Two recipients (``trial``, ``sponsor``) and one stranger: certificate and key each."""
    folder = tmp_path_factory.mktemp("keys")
    return {name: _recipient(folder, name) for name in ("trial", "sponsor", "stranger")}


def _input(folder: Path, index: int = 3) -> Path:
    path = folder / "in.dcm"
    make_instance(make_patient(index), 0, 0, 0).save_as(path, enforce_file_format=True)
    return path


def _differences(original: Dataset, restored: Dataset) -> list[str]:
    """Keywords (or tags) of elements missing, added or different in ``restored``."""
    found = []
    for element in original:
        if element.tag not in restored:
            found.append(f"missing {element.keyword or element.tag}")
        elif restored[element.tag].value != element.value:
            found.append(f"changed {element.keyword or element.tag}")
    found += [f"added {e.keyword or e.tag}" for e in restored if e.tag not in original]
    return found


def _anonymized(tmp_path: Path, recipients: dict[str, tuple[Path, Path]],
                *names: str) -> tuple[Path, Path]:
    source = _input(tmp_path)
    output = tmp_path / "out.dcm"
    certs = [arg for name in names for arg in ("--encrypt-to", recipients[name][0])]
    result = run("-i", source, "-o", output, *certs)
    assert result.exit_code == 0, result.stderr
    return source, output


def test_reidentify_restores_every_original_exactly(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial")
    original, anonymized = pydicom.dcmread(source), pydicom.dcmread(output)
    for keyword in IDENTITY:  # the run did change them
        assert anonymized.get(keyword) != original.get(keyword), keyword
    back = tmp_path / "back.dcm"
    result = run("reidentify", "-i", output, "-o", back, "--key", recipients["trial"][1])
    assert result.exit_code == 0, result.stderr
    restored = pydicom.dcmread(back)
    for keyword in IDENTITY:
        assert restored.get(keyword) == original.get(keyword), keyword
    # Nested originals too (whole top-level sequences), and nothing the run added is left.
    assert _differences(original, restored) == []
    assert restored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID


def test_without_the_key_the_output_holds_no_original_value(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial", "sponsor")
    original = pydicom.dcmread(source)
    planted = [*phi_markers(make_patient(3)),
               *(str(original.get(k)) for k in IDENTITY if "UID" in k)]
    data = output.read_bytes()
    assert pydicom.dcmread(output).EncryptedAttributesSequence  # the originals are in there
    assert [value for value in planted if value.encode() in data] == []


def test_every_recipient_opens_it_and_a_stranger_fails_clearly(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial", "sponsor")
    original = pydicom.dcmread(source)
    for name in ("trial", "sponsor"):
        back = tmp_path / f"{name}.dcm"
        result = run("reidentify", "-i", output, "-o", back, "--key", recipients[name][1])
        assert result.exit_code == 0, result.stderr
        assert pydicom.dcmread(back).PatientID == original.PatientID
    back = tmp_path / "stranger.dcm"
    proc = run_process("reidentify", "-i", output, "-o", back, "--key",
                       recipients["stranger"][1], cwd=tmp_path)
    assert proc.returncode == 1
    assert str(output) in proc.stderr and "not the private key of a recipient" in proc.stderr
    assert not back.exists()


def test_a_file_without_encrypted_attributes_fails_clearly(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    source = _input(tmp_path)
    output = tmp_path / "out.dcm"
    assert run("-i", source, "-o", output).exit_code == 0
    result = run("reidentify", "-i", output, "-o", tmp_path / "back.dcm", "--key",
                 recipients["trial"][1])
    assert result.exit_code == 1
    assert str(output) in result.stderr and "--encrypt-to" in result.stderr


def test_a_certificate_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    source = _input(tmp_path)
    wrong = tmp_path / "cert.pem"
    wrong.write_text("not a certificate\n")
    result = run("-i", source, "-o", tmp_path / "out.dcm", "--encrypt-to", wrong)
    assert result.exit_code == 2
    assert f"{wrong}: not an X.509 certificate" in result.stderr
    assert not (tmp_path / "out.dcm").exists()


def _content(output: Path) -> bytes:
    item = pydicom.dcmread(output).EncryptedAttributesSequence[0]
    assert item.EncryptedContentTransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    return bytes(item.EncryptedContent)


def _modified(content: bytes) -> Dataset:
    decoded = read_dataset(io.BytesIO(content), is_implicit_VR=False, is_little_endian=True)
    assert list(decoded.keys()) == [0x04000550]  # only the Modified Attributes Sequence
    assert len(decoded.ModifiedAttributesSequence) == 1
    item: Dataset = decoded.ModifiedAttributesSequence[0]
    return item


@pytest.mark.peer
def test_openssl_decrypts_the_same_content(tmp_path: Path,
                                           recipients: dict[str, tuple[Path, Path]],
                                           external_tool: Callable[[str], str]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial", "sponsor")
    content = tmp_path / "content.der"
    content.write_bytes(_content(output))
    cert, key = recipients["sponsor"]
    proc = subprocess.run([external_tool("openssl"), "cms", "-decrypt", "-inform", "DER",
                           "-in", str(content), "-recip", str(cert), "-inkey", str(key)],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    original = pydicom.dcmread(source)
    item = _modified(proc.stdout)
    for keyword in IDENTITY:
        assert item.get(keyword) == original.get(keyword), keyword
    # The cipher is one the attribute confidentiality profiles allow: AES (here AES-256-CBC).
    listing = subprocess.run([external_tool("openssl"), "cms", "-cmsout", "-print", "-inform",
                              "DER", "-in", str(content)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert "aes-256-cbc" in listing and listing.count("rsaEncryption") == 2
    # cryptography's own reader (which needs the certificate) agrees byte for byte.
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert pkcs7.pkcs7_decrypt_der(content.read_bytes(), certificate, private, []) == proc.stdout


def test_only_what_changed_is_kept(tmp_path: Path,
                                   recipients: dict[str, tuple[Path, Path]]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial")
    from dcmanon.trials._cms import decrypt_enveloped
    from dcmanon.trials.encrypted import load_private_key

    content = decrypt_enveloped(_content(output), load_private_key(recipients["trial"][1]))
    assert content is not None
    item = _modified(content)
    anonymized = pydicom.dcmread(output)
    kept = [e.keyword for e in pydicom.dcmread(source)
            if e.tag in anonymized and e.tag != 0x00080005
            and anonymized[e.tag].value == e.value and e.VR != "SQ"]
    assert "Modality" in kept  # the Basic Profile keeps it
    assert [k for k in kept if k in item] == []
    assert "PatientName" in item and "PixelData" not in item


def test_large_removed_values_come_back(tmp_path: Path,
                                        recipients: dict[str, tuple[Path, Path]]) -> None:
    """A large private value (left on disk while anonymizing) is removed, then restored."""
    ds = make_instance(make_patient(5), 0, 0, 0)
    block = ds.private_block(0x0011, "DCMANON TEST BLOB", create=True)
    blob = bytes(range(256)) * 2048  # 512 KiB: past the size read lazily
    block.add_new(0x01, "OB", blob)
    source, output = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds.save_as(source, enforce_file_format=True)
    assert run("-i", source, "-o", output, "--encrypt-to", recipients["trial"][0]).exit_code == 0
    assert 0x00111001 not in pydicom.dcmread(output)
    back = tmp_path / "back.dcm"
    assert run("reidentify", "-i", output, "-o", back, "--key",
               recipients["trial"][1]).exit_code == 0
    assert pydicom.dcmread(back)[0x00111001].value == blob


def test_folders_there_and_back(tmp_path: Path,
                                recipients: dict[str, tuple[Path, Path]]) -> None:
    inputs = write_study_tree(tmp_path / "in", patients=2, studies=1, series=2, instances=2)
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-j", 2, "--encrypt-to",
                 recipients["trial"][0], "--layout", "uid")
    assert result.exit_code == 0, result.stderr
    result = run("reidentify", "-I", tmp_path / "out", "-O", tmp_path / "back", "--key",
                 recipients["trial"][1])
    assert result.exit_code == 0, result.stderr
    assert f"{len(inputs)} re-identified, 0 failed" in result.stderr
    restored = {str(ds.SOPInstanceUID): ds for ds in map(
        pydicom.dcmread, sorted((tmp_path / "back").rglob("*.dcm")))}
    assert len(restored) == len(inputs)
    for path in inputs:
        original = pydicom.dcmread(path)
        assert _differences(original, restored[str(original.SOPInstanceUID)]) == []


def test_implicit_vr_and_a_character_set_come_back_exactly(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    """Implicit VR Little Endian (empty values read as None by pydicom) and UTF-8 names."""
    ds = make_instance(make_patient(4), 0, 0, 0)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Zoë=山田^太郎"
    ds.InstitutionName = "Klinikum Süd"
    ds.PositionReferenceIndicator = ""
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    source, output, back = tmp_path / "in.dcm", tmp_path / "out.dcm", tmp_path / "back.dcm"
    ds.save_as(source, enforce_file_format=True, implicit_vr=True, little_endian=True)
    assert run("-i", source, "-o", output, "--encrypt-to", recipients["trial"][0]).exit_code == 0
    assert "Müller".encode() not in output.read_bytes()
    result = run("reidentify", "-i", output, "-o", back, "--key", recipients["trial"][1])
    assert result.exit_code == 0, result.stderr
    original, restored = pydicom.dcmread(source), pydicom.dcmread(back)
    assert restored.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    assert str(restored.PatientName) == "Müller^Zoë=山田^太郎"
    assert _differences(original, restored) == []


def _utf8_instance(folder: Path) -> Path:
    ds = make_instance(make_patient(6), 0, 0, 0)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Ødegård^Zoë"
    path = folder / "in.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.peer
def test_gdcmanon_reidentifies_what_dcmanon_encrypted(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]],
        external_tool: Callable[[str], str]) -> None:
    """GDCM's own PS3.15 E.1.2 re-identification reads our Encrypted Attributes Sequence."""
    source, output = _utf8_instance(tmp_path), tmp_path / "out.dcm"
    cert, key = recipients["sponsor"]
    assert run("-i", source, "-o", output, "--encrypt-to", cert).exit_code == 0
    back = tmp_path / "gdcm-back.dcm"
    proc = subprocess.run([external_tool("gdcmanon"), "-d", "-i", str(output), "-o", str(back),
                           "-k", str(key), "-c", str(cert)], capture_output=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    original, restored = pydicom.dcmread(source), pydicom.dcmread(back)
    for keyword in (*IDENTITY, "PatientName"):
        assert restored.get(keyword) == original.get(keyword), keyword
    # gdcmanon removes PatientIdentityRemoved and DeidentificationMethod, not these two.
    assert set(_differences(original, restored)) <= {
        "added DeidentificationMethodCodeSequence",
        "added LongitudinalTemporalInformationModified"}


@pytest.mark.peer
def test_dcmanon_reidentifies_what_gdcmanon_encrypted(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]],
        external_tool: Callable[[str], str]) -> None:
    """gdcmanon -e writes its originals as UN, without a character set: they come back."""
    source, output = _utf8_instance(tmp_path), tmp_path / "gdcm-out.dcm"
    cert, key = recipients["sponsor"]
    proc = subprocess.run([external_tool("gdcmanon"), "-e", "-i", str(source), "-o",
                           str(output), "-c", str(cert)], capture_output=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    back = tmp_path / "back.dcm"
    result = run("reidentify", "-i", output, "-o", back, "--key", key)
    assert result.exit_code == 0, result.stderr
    assert _differences(pydicom.dcmread(source), pydicom.dcmread(back)) == []


def test_an_encrypted_attributes_sequence_of_the_input_comes_back(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    """Anonymizing an output again (keeping everything) replaces its sequence by the new run's;
    the way back gives the first output, its own sequence included."""
    _, first = _anonymized(tmp_path, recipients, "trial")
    config = tmp_path / "keep.json"
    config.write_text('{"rules": [{"tag": "PatientID", "method": "redact"}], '
                      '"unmatched": "keep"}')
    second, back = tmp_path / "second.dcm", tmp_path / "back.dcm"
    result = run("-i", first, "-o", second, "-c", config, "--encrypt-to",
                 recipients["sponsor"][0])
    assert result.exit_code == 0, result.stderr
    assert run("reidentify", "-i", second, "-o", back, "--key",
               recipients["sponsor"][1]).exit_code == 0
    assert _differences(pydicom.dcmread(first), pydicom.dcmread(back)) == []


@pytest.mark.peer
def test_dciodvfy_finds_no_new_error_in_the_sequence(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]],
        external_tool: Callable[[str], str]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial")
    plain = tmp_path / "plain.dcm"
    assert run("-i", source, "-o", plain).exit_code == 0
    dciodvfy = external_tool("dciodvfy")
    assert dciodvfy_errors(dciodvfy, output) == dciodvfy_errors(dciodvfy, plain)


def _rewrap(output: Path, recipients: dict[str, tuple[Path, Path]], syntax: str,
            implicit: bool) -> None:
    """Re-encrypt ``output``'s content in another transfer syntax (as another tool may)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from dcmanon.trials._cms import decrypt_enveloped
    from dcmanon.trials.encrypted import envelope, load_private_key, load_recipients

    content = decrypt_enveloped(_content(output), load_private_key(recipients["trial"][1]))
    assert content is not None
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, read_dataset(io.BytesIO(content), False, True))
    ds = pydicom.dcmread(output)
    item = ds.EncryptedAttributesSequence[0]
    item.EncryptedContentTransferSyntaxUID = syntax
    item.EncryptedContent = envelope(fp.getvalue(), load_recipients([recipients["trial"][0]]))
    ds.save_as(output)


def test_content_in_implicit_vr_is_read_and_another_syntax_is_named(
        tmp_path: Path, recipients: dict[str, tuple[Path, Path]]) -> None:
    source, output = _anonymized(tmp_path, recipients, "trial")
    other = tmp_path / "other.dcm"
    other.write_bytes(output.read_bytes())
    _rewrap(output, recipients, pydicom.uid.ImplicitVRLittleEndian, implicit=True)
    back = tmp_path / "back.dcm"
    result = run("reidentify", "-i", output, "-o", back, "--key", recipients["trial"][1])
    assert result.exit_code == 0, result.stderr
    # Implicit VR does not carry the VRs of private elements: they come back as UN (bytes).
    original, restored = pydicom.dcmread(source), pydicom.dcmread(back)
    assert _differences(original, restored) == ["changed (0009,1001)", "changed (0009,1002)"]
    assert restored[0x00091001].value == original[0x00091001].value.encode()
    _rewrap(other, recipients, pydicom.uid.DeflatedExplicitVRLittleEndian, implicit=False)
    result = run("reidentify", "-i", other, "-o", tmp_path / "no.dcm", "--key",
                 recipients["trial"][1])
    assert result.exit_code == 1
    assert f"transfer syntax {pydicom.uid.DeflatedExplicitVRLittleEndian}" in result.stderr

"""Certificates made by `fedge tls create`, and the checks made when a daemon loads its pair."""

from __future__ import annotations

import datetime
import ipaddress
import stat

import pytest
from cryptography import x509

from fedge.shared.tls import ServerTls, TlsError, create_certificate, fingerprint


@pytest.fixture
def pair(tmp_path):
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    printed = create_certificate(cert, key, ["fedge.lan", "192.168.1.20", "localhost"], days=30)
    return cert, key, printed


def test_a_self_signed_certificate_names_every_host_and_its_key_is_private(pair):
    cert, key, printed = pair
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fedge.lan", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
    assert certificate.issuer == certificate.subject
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days == 30
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert printed == fingerprint(certificate) and len(printed.split(":")) == 32


def test_loading_the_pair_reads_its_names(pair):
    cert, key, _ = pair
    loaded = ServerTls.load(cert, key)
    assert loaded.names == ("fedge.lan", "localhost", "192.168.1.20")
    assert loaded.self_signed and loaded.cert == cert.read_bytes()
    client = loaded.loopback_client()  # how the daemon's own gateway dials it: trusting this very certificate
    assert (client.ca, client.server_name) == (cert.read_bytes(), "localhost")
    assert loaded.ssl_context().minimum_version.name == "TLSv1_2"


def test_a_key_that_is_not_the_certificates_is_refused(pair, tmp_path):
    cert, _, _ = pair
    create_certificate(tmp_path / "other.pem", tmp_path / "other.key", ["localhost"])
    with pytest.raises(TlsError, match=r"other\.key is not the private key of the certificate in .*cert\.pem"):
        ServerTls.load(cert, tmp_path / "other.key")


def test_missing_or_garbled_files_are_refused_with_the_path(pair, tmp_path):
    cert, key, _ = pair
    with pytest.raises(TlsError, match=r"cannot read the TLS certificate .*nowhere\.pem"):
        ServerTls.load(tmp_path / "nowhere.pem", key)
    (tmp_path / "garbled.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match=r"garbled\.pem: expected a PEM certificate"):
        ServerTls.load(tmp_path / "garbled.pem", key)
    with pytest.raises(TlsError, match=r"cert\.pem: expected an unencrypted PEM private key"):
        ServerTls.load(cert, cert)


@pytest.mark.parametrize("hosts", [[], ["bad host"], ["a..b"], ["x" * 64 + ".lan"]])
def test_hosts_that_cannot_be_named_in_a_certificate_are_refused(tmp_path, hosts):
    with pytest.raises(TlsError, match=r"expected"):
        create_certificate(tmp_path / "c.pem", tmp_path / "k.pem", hosts)
    assert not (tmp_path / "k.pem").exists()


def test_an_expired_certificate_is_refused_with_its_date(tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    then = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(then).not_valid_after(then + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "old.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "old.key").write_bytes(pem)
    with pytest.raises(TlsError, match=r"old\.pem expired on 2020-01-31: renew it"):
        ServerTls.load(tmp_path / "old.pem", tmp_path / "old.key")


def test_a_fresh_certificate_says_how_long_it_lasts(pair):
    cert, key, _ = pair
    assert 29.9 < ServerTls.load(cert, key).days_left() <= 30

"""The proxy's own TLS: a private CA made for one run, and a serving certificate it signs.

Clients reach the proxy over HTTPS because the mainstream ones require it:
client-go (controller-runtime, kubectl) sends a bearer token only to an
``https://`` server, and ``@kubernetes/client-node`` refuses plain HTTP.  The
CA goes into the kubeconfig the recorder writes (``certificate-authority-data``),
so a client needs nothing else.

Keys are ECDSA P-256: every Kubernetes client accepts them, and a handshake
costs a fraction of an RSA-2048 one.  The CA's key lives only in memory and is
forgotten once the serving certificate is signed, so nobody can mint another
certificate this CA vouches for.  Python's ``ssl`` loads a certificate chain
only from files: the serving key is written encrypted (with a random password
held in memory) into a 0700 temporary directory, loaded, and the directory is
removed at once, before the proxy accepts its first connection.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)  # a recording may run for months; the key dies with the run
SKEW = datetime.timedelta(hours=1)  # a client whose clock is a little behind still accepts it


class ProxyCertificate:
    """A per-run CA and a serving certificate for ``hosts`` (names and IP addresses)."""

    def __init__(self, hosts: list[str]):
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "replay-tui"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"replay-tui record CA {secrets.token_hex(4)}")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (x509.CertificateBuilder()
              .subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - SKEW).not_valid_after(now + VALIDITY)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False, key_agreement=False,
                                           key_cert_sign=True, crl_sign=True, encipher_only=False,
                                           decipher_only=False), critical=True)
              .add_extension(ca_ski, critical=False)
              .sign(ca_key, hashes.SHA256()))
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.hosts = list(dict.fromkeys(hosts))
        self.cert = (x509.CertificateBuilder()
                     .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replay-tui record proxy")]))
                     .issuer_name(ca_name)
                     .public_key(self._key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - SKEW).not_valid_after(now + VALIDITY)
                     .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in self.hosts]),
                                    critical=False)
                     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                                    critical=False)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                                    critical=False)
                     .sign(ca_key, hashes.SHA256()))
        self.ca = ca
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)  # what the kubeconfig carries

    def server_context(self, directory: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
        """A TLS server context (TLS 1.2 or newer) holding the serving key, which touches disk only encrypted
        and only for the moment ``load_cert_chain`` reads it (in ``directory``: the recorder's private one)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        password = secrets.token_bytes(32)
        key_pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(password))
        chain = self.cert.public_bytes(serialization.Encoding.PEM)
        tmp = tempfile.mkdtemp(prefix="replay-tui-tls-", dir=directory)  # 0700
        try:
            cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_file, chain), (key_file, key_pem)):
                fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert_file, key_file, password=password)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return ctx


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def serving_hosts(listen_host: str) -> list[str]:
    """Names the serving certificate covers: loopback always, the --listen host, and for a wildcard
    address (0.0.0.0, ::) this machine's name, which clients elsewhere would use."""
    hosts = ["127.0.0.1", "::1", "localhost"]
    if listen_host in ("", "0.0.0.0", "::"):
        hosts.append(socket.gethostname())
    elif listen_host:
        hosts.append(listen_host)
    return hosts

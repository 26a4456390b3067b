"""A private CA and a TLS-terminating TCP proxy in front of the plain dev server.

The dev server has no TLS options; gRPC over TLS works through a proxy that ends TLS and
forwards the bytes. The proxy keeps what clients sent (decrypted), so a test can read the
HTTP/2 request headers (the API key's ``authorization`` header) that TLS hides on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import hpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, CONTINUATION = 0x1, 0x9
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20


@dataclass(frozen=True)
class Pem:
    """A certificate and its key, written as PEM files."""

    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Pem:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Pem(cert_path, key_path)


@dataclass
class PrivateCA:
    """A certificate authority of the test's own; it signs server and client certificates."""

    directory: Path
    name: str = "orchestrator test CA"
    key: ec.EllipticCurvePrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)
    pem: Pem = field(init=False)

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.name))
            .issuer_name(_name(self.name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = self.name.replace(" ", "-")
        self.pem = _write(self.directory, stem, self.cert, self.key)

    def issue(self, common_name: str, *, server: bool) -> Pem:
        """A leaf certificate: a server's (DNS name ``common_name``) or a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return _write(self.directory, common_name.replace(" ", "-"), cert, key)


class TlsProxy:
    """Ends TLS on a local port and forwards each connection to ``upstream`` in plain TCP."""

    def __init__(self, upstream: str, server: Pem, *, client_ca: Path | None = None) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(server.cert, server.key)
        self._context.set_alpn_protocols(["h2"])
        if client_ca is not None:  # mTLS: no certificate from this CA, no connection
            self._context.verify_mode = ssl.CERT_REQUIRED
            self._context.load_verify_locations(client_ca)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[bytearray] = []  # what each connection's client sent, decrypted

    @property
    def address(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aenter__(self) -> TlsProxy:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self._context, ssl_handshake_timeout=5
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        captured = bytearray()
        self.sent.append(captured)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
            await asyncio.gather(_pipe(reader, up_writer, captured), _pipe(up_reader, writer, None))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def request_headers(self) -> list[dict[str, str]]:
        """The HTTP/2 request headers every client sent through the proxy, decoded."""
        return [headers for sent in self.sent for headers in _request_headers(bytes(sent))]


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, captured: bytearray | None
) -> None:
    try:
        while data := await reader.read(65536):
            if captured is not None:
                captured.extend(data)
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _request_headers(stream: bytes) -> list[dict[str, str]]:
    """Decode the header blocks of one client-to-server HTTP/2 byte stream (HPACK state
    is per connection, so every block is decoded in order)."""
    if not stream.startswith(HTTP2_PREFACE):
        return []
    decoder = hpack.Decoder()
    position, block, found = len(HTTP2_PREFACE), b"", []
    while position + 9 <= len(stream):
        length = int.from_bytes(stream[position : position + 3], "big")
        kind, flags = stream[position + 3], stream[position + 4]
        payload = stream[position + 9 : position + 9 + length]
        position += 9 + length
        if kind == HEADERS:
            pad = payload[0] if flags & PADDED else 0
            start = (1 if flags & PADDED else 0) + (5 if flags & PRIORITY else 0)
            block = payload[start : len(payload) - pad]
        elif kind == CONTINUATION:
            block += payload
        else:
            continue
        if flags & END_HEADERS:
            found.append({str(k): str(v) for k, v in decoder.decode(block, raw=False)})
            block = b""
    return found

"""Real local sinks for notification tests: an HTTP webhook receiver that can fail on
purpose, and an aiosmtpd SMTP server with STARTTLS and AUTH (self-signed certificate)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class WebhookSink:
    """Records every POST; answers 500 for the first ``fail_first`` (or every) request."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first, self.always_fail = fail_first, always_fail
        self.requests: list[dict[str, Any]] = []   # every request, failed ones included
        self.delivered: list[dict[str, Any]] = []  # bodies answered 2xx
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    parsed = json.loads(body)
                    sink.requests.append({"path": self.path, "body": parsed,
                                          "contentType": self.headers.get("Content-Type")})
                    fail = sink.always_fail or len(sink.requests) <= sink.fail_first
                    if not fail:
                        sink.delivered.append(parsed)
                self.send_response(500 if fail else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/workflows/hook?sig=SECRET"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (also used as the client's CA file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """aiosmtpd requiring STARTTLS before AUTH, and AUTH before mail."""

    folder: Path
    user: str = "cloudops"
    password: str = "s3cret-pass"
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        # aiosmtpd logs a deprecation line on every successful AUTH; it is not ours
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self.cert, key = self_signed_certificate(self.folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.received.append(Received(
                    envelope.mail_from, list(envelope.rcpt_tos),
                    message_from_bytes(envelope.original_content or envelope.content,
                                       policy=policy.default)))  # type: ignore[arg-type]
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         data: Any) -> AuthResult:
            ok = (isinstance(data, LoginPassword) and data.login.decode() == sink.user
                  and data.password.decode() == sink.password)
            return AuthResult(success=ok, handled=False)

        self.port = free_port()  # aiosmtpd probes its own port, so 0 cannot be used
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     tls_context=context, require_starttls=True,
                                     auth_require_tls=True, auth_required=True,
                                     authenticator=authenticate)
        self.controller.start()

    def settings_env(self) -> dict[str, str]:
        return {"CLOUDOPS_SMTP_HOST": "127.0.0.1", "CLOUDOPS_SMTP_PORT": str(self.port),
                "CLOUDOPS_SMTP_USER": self.user, "CLOUDOPS_SMTP_PASSWORD": self.password,
                "CLOUDOPS_SMTP_FROM": "cloudops@example.com",
                "CLOUDOPS_SMTP_CA_FILE": str(self.cert)}

    def close(self) -> None:
        self.controller.stop()

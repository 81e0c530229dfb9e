"""The two ways out: a Teams incoming webhook (HTTP POST of a card) and SMTP e-mail.

Both raise ``DeliveryError`` with a reason safe to show (never the webhook URL, never the
SMTP password); the delivery layer records it and retries.
"""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from shared.httpclient import RequestException, post_pinned
from shared.settings import Settings

TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A delivery attempt failed; the message is safe to store and show."""


def post_teams(webhook_url: str, message: dict[str, Any], *,
               allow_loopback: bool = False) -> None:
    """POST the card message to a Teams (Workflows) incoming webhook; 2xx is success.

    The webhook URL is chosen by project admins, so it must not reach inside: ``https``
    only; every address the host resolves to must be public (no private, loopback,
    link-local/metadata, CGNAT, multicast, reserved, or IPv6 equivalents and IPv4-mapped
    forms); the connection goes to the address that was checked (a second DNS answer
    cannot rebind it), TLS is verified against the host name, redirects are not followed,
    and errors name the status only, never the response body. ``allow_loopback`` (the
    setting ``CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK``, off by default) admits ``http`` to
    loopback for local tests."""
    target = webhook_target(webhook_url, allow_loopback=allow_loopback)
    body = json.dumps(message, ensure_ascii=False).encode()
    try:
        # the body is read up to 1 KiB and dropped: errors name the status only
        status = post_pinned(target.scheme, target.host, target.port, target.address,
                             target.path, body, timeout=TIMEOUT_SECONDS,
                             headers={"Content-Type": "application/json; charset=utf-8"}
                             ).status
    except (OSError, RequestException) as exc:
        raise DeliveryError(f"Teams webhook unreachable: {_cause(exc)}") from None
    if 300 <= status < 400:
        raise DeliveryError(f"Teams webhook answered HTTP {status}; redirects are not "
                            "followed")
    if not 200 <= status < 300:
        raise DeliveryError(f"Teams webhook answered HTTP {status}")


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    path: str      # path and query, as sent
    address: str   # the checked IP the connection goes to


# Public by the registry but platform endpoints: Azure's WireServer, cloud metadata.
_BLOCKED = {ipaddress.ip_address("168.63.129.16"), ipaddress.ip_address("169.254.169.254"),
            ipaddress.ip_address("fd00:ec2::254")}


def address_is_public(address: str) -> bool:
    """True for a globally routable unicast address that is no platform endpoint."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_is_public(str(embedded))
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return address_is_public(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not ip.is_link_local and not ip.is_loopback and not ip.is_private
            and ip not in _BLOCKED)


def webhook_target(url: str, *, allow_loopback: bool = False) -> WebhookTarget:
    """Where a webhook POST may go, or DeliveryError (without echoing the URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DeliveryError("Teams webhook URL is not valid") from None
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise DeliveryError("Teams webhook URL needs a host and no user info")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_loopback):
        raise DeliveryError("Teams webhook URL must use https")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DeliveryError("Teams webhook host does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DeliveryError("Teams webhook host does not resolve")

    def allowed(address: str) -> bool:
        if address_is_public(address):
            return parts.scheme == "https"
        return allow_loopback and ipaddress.ip_address(address.split("%", 1)[0]).is_loopback

    if not all(allowed(a) for a in addresses):  # one bad answer spoils the name
        raise DeliveryError("Teams webhook host resolves to an address that is not public; "
                            "refused")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(parts.scheme, host, port, path, addresses[0])


def _cause(exc: BaseException) -> str:
    """The innermost error's class name (``ConnectionRefusedError``, ``SSLCertVerificationError``),
    never its text, which may hold the URL."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args and
                                                     isinstance(exc.args[0], BaseException)
                                                     else None)
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            inner = reason
        if inner is None:
            break
        exc = inner
    return type(exc).__name__


def build_email(settings: Settings, recipients: Sequence[str], subject: str, text: str,
                html: str) -> EmailMessage:
    """multipart/alternative: the text part first, the HTML part preferred."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2]
                                       or "cloudops")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_email(settings: Settings, message: EmailMessage, recipients: Sequence[str]) -> None:
    """Send over SMTP: STARTTLS (verified) before AUTH unless turned off in settings."""
    if not settings.smtp_host:
        raise DeliveryError("e-mail is not configured (CLOUDOPS_SMTP_HOST is unset)")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                context = ssl.create_default_context(cafile=settings.smtp_ca_file)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            refused = smtp.send_message(message, to_addrs=list(recipients))
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP authentication failed ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP server answered {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError("SMTP server refused every recipient") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}") from None
    if refused:
        raise DeliveryError(f"SMTP server refused {len(refused)} recipient(s)")

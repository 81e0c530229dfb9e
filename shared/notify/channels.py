"""The two ways out: a Teams incoming webhook (HTTP POST of a card) and SMTP e-mail.

Both raise ``DeliveryError`` with a reason safe to show (never the webhook URL, never the
SMTP password); the delivery layer records it and retries.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from shared.settings import Settings

TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A delivery attempt failed; the message is safe to store and show."""


def post_teams(webhook_url: str, message: dict[str, Any]) -> None:
    """POST the card message to a Teams (Workflows) incoming webhook; 2xx is success."""
    body = json.dumps(message, ensure_ascii=False).encode()
    request = urllib.request.Request(webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"Teams webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"Teams webhook unreachable: {type(reason).__name__}") from None


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

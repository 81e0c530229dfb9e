"""The backup-artifact port: short-lived URLs to upload and download a named file.

Agents never hold storage credentials: the control plane hands them an upload URL (an
HTTP ``PUT`` of the whole file with ``x-ms-blob-type: BlockBlob``, Azure Blob semantics)
and a download URL (``GET``), both expiring. ``location(name)`` is what the Backup row
keeps; ``name_of(location)`` turns it back into a name.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import timedelta

from shared.errors import ConstraintViolation, DomainError

# Segments start with a letter or digit, so "." and ".." (path traversal) cannot occur.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
MAX_NAME = 512
MAX_TTL = timedelta(days=7)  # the longest a user-delegation SAS may live


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"


class ArtifactStore(ABC):
    @abstractmethod
    def upload_url(self, name: str, ttl: timedelta) -> str:
        """A URL that accepts one ``PUT`` of the whole file until ``ttl`` from now."""

    @abstractmethod
    def download_url(self, name: str, ttl: timedelta) -> str:
        """A URL that answers ``GET`` with the file until ``ttl`` from now."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the artifact; deleting a missing one is not an error."""

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def location(self, name: str) -> str:
        """Where the artifact lives, stable and credential-free (kept on the Backup row)."""

    @abstractmethod
    def name_of(self, location: str) -> str:
        """The artifact name inside a ``location`` this store produced."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
        raise ConstraintViolation(
            "artifact name must be '/'-separated segments of letters, digits, '.', '_' or '-',"
            f" each starting with a letter or digit, at most {MAX_NAME} characters",
            field="name")
    return name


def check_ttl(ttl: timedelta) -> timedelta:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0) or ttl > MAX_TTL:
        raise ConstraintViolation("ttl must be positive and at most 7 days", field="ttl")
    return ttl

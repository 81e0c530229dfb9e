"""The one typed settings object, built from environment variables at start-up.

Names match the Azure app settings the Bicep defines (see infra/bicep), so the same
variables drive `func start`, the local host and Azure. Nothing here is read at import
time: callers build a ``Settings`` with ``Settings.from_env()`` when they start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

Mode = Literal["local", "azure"]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Setting:
    """Metadata of one environment variable, used for parsing and the infra drift test."""

    env: str
    description: str
    required_in_azure: bool = False
    secret: bool = False


def _setting(env: str, description: str, *, required_in_azure: bool = False,
             secret: bool = False, default: object = None) -> Any:
    meta = Setting(env, description, required_in_azure, secret)
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class Settings:
    mode: Mode = _setting("CLOUDOPS_MODE", "local (offline host) or azure", default="local")
    database_url: str | None = _setting(
        "DATABASE_URL", "Postgres URL; unset in local mode starts an embedded server",
        required_in_azure=True, secret=True)
    database_entra_user: str | None = _setting(
        "CLOUDOPS_DATABASE_ENTRA_USER",
        "Entra principal name used as Postgres user with a token as password (Azure)")
    home: Path = _setting("CLOUDOPS_HOME", "state folder for the local host",
                          default=Path(".cloudops"))
    task_queue: str = _setting("CLOUDOPS_TASK_QUEUE", "session-enabled Service Bus queue",
                               default="tasks")
    task_hub: str = _setting("CLOUDOPS_TASK_HUB", "Durable Functions task hub name",
                             default="cloudops")
    service_bus_namespace: str | None = _setting(
        "ServiceBusConnection__fullyQualifiedNamespace",
        "Service Bus namespace host (managed identity)", required_in_azure=True)
    service_bus_connection: str | None = _setting(
        "ServiceBusConnection", "Service Bus connection string (instead of identity)",
        secret=True)
    local_host_url: str = _setting(
        "CLOUDOPS_LOCAL_HOST_URL", "base URL of the local host's emulations",
        default="http://127.0.0.1:7071")
    signalr_connection_string: str | None = _setting(
        "AzureSignalRConnectionString", "SignalR Service: Endpoint=...;AccessKey=...;",
        secret=True)
    signalr_endpoint: str | None = _setting(
        "AzureSignalRConnectionString__serviceUri", "SignalR endpoint (managed identity)",
        required_in_azure=True)
    signalr_hub: str = _setting("CLOUDOPS_SIGNALR_HUB", "SignalR hub name",
                                default="cloudops")
    storage_connection: str | None = _setting(
        "AzureWebJobsStorage", "storage connection string (Azurite locally)", secret=True)
    table_endpoint: str | None = _setting(
        "AzureWebJobsStorage__tableServiceUri", "Table endpoint (managed identity)",
        required_in_azure=True)
    blob_endpoint: str | None = _setting(
        "AzureWebJobsStorage__blobServiceUri", "Blob endpoint (managed identity)",
        required_in_azure=True)
    agent_key_secret: str | None = _setting(
        "CLOUDOPS_AGENT_KEY_SECRET", "server secret for HMAC of agent keys",
        required_in_azure=True, secret=True)
    pipeline_keys: str | None = _setting(
        "CLOUDOPS_PIPELINE_KEYS", "named pipeline keys: name=sha256hex,... (Key Vault ref)",
        secret=True)
    public_url: str | None = _setting(
        "CLOUDOPS_PUBLIC_URL", "URL of the web app, used in notification links")
    resend_after_seconds: int = _setting(
        "CLOUDOPS_RESEND_AFTER_SECONDS",
        "a queued task nobody picked up is re-sent after this long", default=30)
    log_level: str = _setting("CLOUDOPS_LOG_LEVEL", "Python log level",
                              default="INFO")
    db_pool_max: int = _setting("CLOUDOPS_DB_POOL_MAX", "max Postgres connections per host",
                                default=10)
    azure_client_id: str | None = _setting(
        "AZURE_CLIENT_ID", "client id of the user-assigned managed identity (azure-identity)")
    log_store: str | None = _setting(
        "CLOUDOPS_LOG_STORE", "task-log store: memory, postgres or table (default by mode)")
    log_table: str = _setting("CLOUDOPS_LOG_TABLE", "Table storage table for task logs",
                              default="tasklogs")
    artifact_container: str = _setting(
        "CLOUDOPS_ARTIFACT_CONTAINER", "Blob container for backup artifacts", default="backups")
    artifact_secret: str | None = _setting(
        "CLOUDOPS_ARTIFACT_SECRET",
        "HMAC key for local artifact URLs (generated under CLOUDOPS_HOME if unset)", secret=True)
    artifact_max_bytes: int = _setting(
        "CLOUDOPS_ARTIFACT_MAX_BYTES", "largest artifact the local endpoint accepts",
        default=4 * 1024**3)
    arm_endpoint: str = _setting(
        "CLOUDOPS_ARM_ENDPOINT", "Azure Resource Manager endpoint for App Service deploys",
        default="https://management.azure.com")
    arm_poll_interval_ms: int = _setting(
        "CLOUDOPS_ARM_POLL_INTERVAL_MS",
        "long-running ARM operation poll interval when ARM sends no Retry-After", default=5000)
    health_check_scheme: str = _setting(
        "CLOUDOPS_HEALTH_CHECK_SCHEME", "scheme of deploy health checks (https or http)",
        default="https")
    health_check_attempts: int = _setting(
        "CLOUDOPS_HEALTH_CHECK_ATTEMPTS", "deploy health-check attempts before unhealthy",
        default=5)
    health_check_interval_ms: int = _setting(
        "CLOUDOPS_HEALTH_CHECK_INTERVAL_MS",
        "first wait between health-check attempts (grows linearly)", default=2000)
    appinsights_connection_string: str | None = _setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "Application Insights (enables OpenTelemetry)",
        secret=True)

    # -- notifications, schedules, sandbox expiry (shared/notify, shared/schedules) ------
    smtp_host: str | None = _setting(
        "CLOUDOPS_SMTP_HOST", "SMTP relay for e-mail notifications (unset: e-mail is off)")
    smtp_port: int = _setting("CLOUDOPS_SMTP_PORT", "SMTP port (submission)",
                              default=587)
    smtp_user: str | None = _setting(
        "CLOUDOPS_SMTP_USER", "SMTP AUTH user (unset: no AUTH)")
    smtp_password: str | None = _setting(
        "CLOUDOPS_SMTP_PASSWORD", "SMTP AUTH password (Key Vault reference)", secret=True)
    smtp_from: str = _setting(
        "CLOUDOPS_SMTP_FROM", "From address of notification e-mail",
        default="cloudops@localhost")
    smtp_starttls: bool = _setting(
        "CLOUDOPS_SMTP_STARTTLS", "upgrade the SMTP session with STARTTLS (never AUTH in clear)",
        default=True)
    smtp_ca_file: str | None = _setting(
        "CLOUDOPS_SMTP_CA_FILE", "CA bundle that signs the SMTP relay's certificate (optional)")
    notify_attempts: int = _setting(
        "CLOUDOPS_NOTIFY_ATTEMPTS", "delivery attempts per notification channel", default=4)
    notify_first_retry_ms: int = _setting(
        "CLOUDOPS_NOTIFY_FIRST_RETRY_MS", "first retry delay of a delivery (doubles)",
        default=2000)
    webhook_allow_loopback: bool = _setting(
        "CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK",
        "let webhooks reach http://loopback (local tests only; never in Azure)", default=False)
    sandbox_warn_minutes: int = _setting(
        "CLOUDOPS_SANDBOX_WARN_MINUTES", "warn this long before a sandbox expires", default=60)
    sandbox_max_ttl_hours: int = _setting(
        "CLOUDOPS_SANDBOX_MAX_TTL_HOURS", "longest total lifetime of a sandbox", default=168)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise SettingsError."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            meta: Setting = f.metadata["setting"]
            raw = env.get(meta.env)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, meta.env, raw.strip(), f.default)
        settings = cls(**values)  # type: ignore[arg-type]  # each parsed to its field's type
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.mode not in ("local", "azure"):
            raise SettingsError("CLOUDOPS_MODE", f"must be 'local' or 'azure', got {self.mode!r}")
        if self.mode == "azure":
            for f in fields(self):
                meta: Setting = f.metadata["setting"]
                if meta.required_in_azure and getattr(self, f.name) is None and not (
                    self._has_alternative(f.name)
                ):
                    raise SettingsError(meta.env, "is required when CLOUDOPS_MODE=azure")
        if self.mode == "azure" and self.webhook_allow_loopback:
            raise SettingsError("CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK", "is for local tests only")
        if self.mode == "azure" and self.pipeline_keys:
            raise SettingsError("CLOUDOPS_PIPELINE_KEYS", "names the local host's function keys "
                                "only; create pipeline keys with POST /api/pipeline-keys")
        if self.database_url is not None and not (
            self.database_url.startswith(("postgresql://", "postgres://"))
            or "=" in self.database_url
        ):
            raise SettingsError("DATABASE_URL", "must be a postgresql:// URL or libpq DSN")

    def _has_alternative(self, name: str) -> bool:
        """Identity-based settings may be replaced by their connection-string twin."""
        alternatives = {
            "service_bus_namespace": self.service_bus_connection,
            "signalr_endpoint": self.signalr_connection_string,
            "table_endpoint": self.storage_connection,
            "blob_endpoint": self.storage_connection,
        }
        return alternatives.get(name) is not None

    @classmethod
    def variables(cls) -> list[Setting]:
        """Every environment variable the code reads, with its metadata."""
        return [f.metadata["setting"] for f in fields(cls)]

    def env_defaults(self) -> dict[str, str]:
        """Environment variable → default value, for settings that have a default."""
        return {f.metadata["setting"].env: str(f.default) for f in fields(self)
                if f.default is not None}

    def redacted(self) -> dict[str, object]:
        """Settings safe to log: secrets shown only as set/unset."""
        out: dict[str, object] = {}
        for f in fields(self):
            meta: Setting = f.metadata["setting"]
            value = getattr(self, f.name)
            out[meta.env] = ("<set>" if value else None) if meta.secret else value
        return out


def _parse(name: str, env: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(env, f"must be true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(env, f"must be an integer, got {raw!r}") from None
        if value <= 0:
            raise SettingsError(env, f"must be positive, got {value}")
        return value
    if isinstance(default, Path):
        return Path(raw)
    return raw

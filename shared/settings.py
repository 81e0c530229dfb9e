"""The one typed settings object, built from environment variables at start-up.

Names match the Azure app settings the Bicep defines (see infra/bicep), so the same
variables drive `func start`, the local host and Azure. Nothing here is read at import
time: callers build a ``Settings`` with ``Settings.from_env()`` when they start.

The model is a pydantic-settings ``BaseSettings``: each field's alias is its environment
variable, ``_Environ`` is the one place the environment is read (blank values are unset),
and every validation error becomes a one-line ``SettingsError`` naming the variable. The
agent timing policy (``CLOUDOPS_AGENT_*``) is part of the same model; ``agent_policy()``
gives it as the ``AgentPolicy`` value the agent modules take.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:
    from shared.agents.policy import AgentPolicy

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
             secret: bool = False, default: Any = None) -> Any:
    return Field(default=default, validation_alias=env, description=description,
                 json_schema_extra={"required_in_azure": required_in_azure, "secret": secret})


_N = TypeVar("_N", int, float)


def _positive(convert: Callable[[str | int | float], _N], noun: str,
              accepted: tuple[type[str | int | float], ...]) -> Callable[[object], _N]:
    """A validator of a positive ``convert``-ible value (an ``int`` or a ``float``) from
    the environment's text or from a value given in code; the error names ``noun``."""
    def validate(raw: object) -> _N:
        if isinstance(raw, bool) or not isinstance(raw, accepted):
            raise ValueError(f"must be {noun}, got {raw!r}")
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(f"must be {noun}, got {raw!r}") from None
        if value <= 0:  # an integer is told as read ("-01" is -1), a number as written
            raise ValueError(f"must be positive, got {raw if isinstance(value, float) else value}")
        return value
    return validate


_positive_int = _positive(int, "an integer", (int, str))
_positive_number = _positive(float, "a number", (int, float, str))


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
PositiveNumber = Annotated[float, BeforeValidator(_positive_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("cloudops_environ", default=None)


class _Environ(EnvSettingsSource):
    """The environment (or the mapping ``from_env`` was given), values stripped, blank = unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        source = os.environ if environ is None else environ
        return {k: v.strip() for k, v in source.items() if v and v.strip()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore",
                                      populate_by_name=True, validate_default=False)

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
    resend_after_seconds: PositiveInt = _setting(
        "CLOUDOPS_RESEND_AFTER_SECONDS",
        "a queued task nobody picked up is re-sent after this long", default=30)
    log_level: str = _setting("CLOUDOPS_LOG_LEVEL", "Python log level",
                              default="INFO")
    db_pool_max: PositiveInt = _setting("CLOUDOPS_DB_POOL_MAX", "max Postgres connections per host",
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
    artifact_max_bytes: PositiveInt = _setting(
        "CLOUDOPS_ARTIFACT_MAX_BYTES", "largest artifact the local endpoint accepts",
        default=4 * 1024**3)
    arm_endpoint: str = _setting(
        "CLOUDOPS_ARM_ENDPOINT", "Azure Resource Manager endpoint for App Service deploys",
        default="https://management.azure.com")
    arm_poll_interval_ms: PositiveInt = _setting(
        "CLOUDOPS_ARM_POLL_INTERVAL_MS",
        "long-running ARM operation poll interval when ARM sends no Retry-After", default=5000)
    health_check_scheme: str = _setting(
        "CLOUDOPS_HEALTH_CHECK_SCHEME", "scheme of deploy health checks (https or http)",
        default="https")
    health_check_attempts: PositiveInt = _setting(
        "CLOUDOPS_HEALTH_CHECK_ATTEMPTS", "deploy health-check attempts before unhealthy",
        default=5)
    health_check_interval_ms: PositiveInt = _setting(
        "CLOUDOPS_HEALTH_CHECK_INTERVAL_MS",
        "first wait between health-check attempts (grows linearly)", default=2000)
    appinsights_connection_string: str | None = _setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "Application Insights (enables OpenTelemetry)",
        secret=True)

    # -- notifications, schedules, sandbox expiry (shared/notify, shared/schedules) ------
    smtp_host: str | None = _setting(
        "CLOUDOPS_SMTP_HOST", "SMTP relay for e-mail notifications (unset: e-mail is off)")
    smtp_port: PositiveInt = _setting("CLOUDOPS_SMTP_PORT", "SMTP port (submission)",
                              default=587)
    smtp_user: str | None = _setting(
        "CLOUDOPS_SMTP_USER", "SMTP AUTH user (unset: no AUTH)")
    smtp_password: str | None = _setting(
        "CLOUDOPS_SMTP_PASSWORD", "SMTP AUTH password (Key Vault reference)", secret=True)
    smtp_from: str = _setting(
        "CLOUDOPS_SMTP_FROM", "From address of notification e-mail",
        default="cloudops@localhost")
    smtp_starttls: Flag = _setting(
        "CLOUDOPS_SMTP_STARTTLS", "upgrade the SMTP session with STARTTLS (never AUTH in clear)",
        default=True)
    smtp_ca_file: str | None = _setting(
        "CLOUDOPS_SMTP_CA_FILE", "CA bundle that signs the SMTP relay's certificate (optional)")
    notify_attempts: PositiveInt = _setting(
        "CLOUDOPS_NOTIFY_ATTEMPTS", "delivery attempts per notification channel", default=4)
    notify_first_retry_ms: PositiveInt = _setting(
        "CLOUDOPS_NOTIFY_FIRST_RETRY_MS", "first retry delay of a delivery (doubles)",
        default=2000)
    webhook_allow_loopback: Flag = _setting(
        "CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK",
        "let webhooks reach http://loopback (local tests only; never in Azure)", default=False)
    sandbox_warn_minutes: PositiveInt = _setting(
        "CLOUDOPS_SANDBOX_WARN_MINUTES", "warn this long before a sandbox expires", default=60)
    sandbox_max_ttl_hours: PositiveInt = _setting(
        "CLOUDOPS_SANDBOX_MAX_TTL_HOURS", "longest total lifetime of a sandbox", default=168)


    # -- agent timing and lifetime (shared/agents/policy.py) ------------------------------
    agent_heartbeat_seconds: PositiveNumber = _setting(
        "CLOUDOPS_AGENT_HEARTBEAT_SECONDS", "how often agents heartbeat", default=20.0)
    agent_offline_factor: PositiveNumber = _setting(
        "CLOUDOPS_AGENT_OFFLINE_FACTOR", "offline after this many missed heartbeats",
        default=3.0)
    agent_lease_seconds: PositiveNumber = _setting(
        "CLOUDOPS_AGENT_LEASE_SECONDS", "a job lease; renewed by every heartbeat", default=60.0)
    agent_key_days: PositiveNumber = _setting(
        "CLOUDOPS_AGENT_KEY_DAYS", "lifetime of an agent key", default=30.0)
    agent_max_wait_seconds: PositiveNumber = _setting(
        "CLOUDOPS_AGENT_MAX_WAIT_SECONDS", "longest long-poll hold (Azure: 230 s cap)",
        default=50.0)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environ(settings_cls)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise SettingsError."""
        with _reading(environ):
            try:
                return cls()
            except ValidationError as exc:
                raise _settings_error(exc) from None

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        if value not in ("local", "azure"):
            raise ValueError(f"must be 'local' or 'azure', got {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.startswith(("postgresql://", "postgres://")) or "=" in value
        ):
            raise ValueError("must be a postgresql:// URL or libpq DSN")
        return value

    @model_validator(mode="after")
    def _validate(self) -> Settings:
        if self.mode == "azure":
            for name, info in type(self).model_fields.items():
                meta = _meta(name, info)
                if meta.required_in_azure and getattr(self, name) is None and not (
                    self._has_alternative(name)
                ):
                    raise SettingsError(meta.env, "is required when CLOUDOPS_MODE=azure")
        if self.mode == "azure" and self.webhook_allow_loopback:
            raise SettingsError("CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK", "is for local tests only")
        if self.mode == "azure" and self.pipeline_keys:
            raise SettingsError("CLOUDOPS_PIPELINE_KEYS", "names the local host's function keys "
                                "only; create pipeline keys with POST /api/pipeline-keys")
        if self.agent_max_wait_seconds > 230:
            raise SettingsError("CLOUDOPS_AGENT_MAX_WAIT_SECONDS",
                                "must stay below Azure's 230 s HTTP limit")
        offline_after = self.agent_heartbeat_seconds * self.agent_offline_factor
        if self.agent_max_wait_seconds >= offline_after:
            # allowed (tests shrink the heartbeat), but idle agents may look offline
            logging.getLogger("cloudops.agents").warning(
                "CLOUDOPS_AGENT_MAX_WAIT_SECONDS (%g) is not below the offline window"
                " (%g s): idle long-polling agents may be reported offline",
                self.agent_max_wait_seconds, offline_after)
        if self.agent_lease_seconds < self.agent_heartbeat_seconds * 2:
            raise SettingsError("CLOUDOPS_AGENT_LEASE_SECONDS",
                                "must be at least two heartbeat intervals")
        return self

    def _has_alternative(self, name: str) -> bool:
        """Identity-based settings may be replaced by their connection-string twin."""
        alternatives = {
            "service_bus_namespace": self.service_bus_connection,
            "signalr_endpoint": self.signalr_connection_string,
            "table_endpoint": self.storage_connection,
            "blob_endpoint": self.storage_connection,
        }
        return alternatives.get(name) is not None

    def agent_policy(self) -> AgentPolicy:
        """The agent timing rules these settings describe."""
        from shared.agents.policy import AgentPolicy

        return AgentPolicy(heartbeat_seconds=self.agent_heartbeat_seconds,
                           offline_factor=self.agent_offline_factor,
                           lease_seconds=self.agent_lease_seconds,
                           key_days=self.agent_key_days,
                           max_wait_seconds=self.agent_max_wait_seconds)

    @classmethod
    def variables(cls) -> list[Setting]:
        """Every environment variable the code reads, with its metadata."""
        return [_meta(name, info) for name, info in cls.model_fields.items()]

    @classmethod
    def env_defaults(cls) -> dict[str, str]:
        """Environment variable → default value, for settings that have a default."""
        return {_meta(name, info).env: str(info.default)
                for name, info in cls.model_fields.items() if info.default is not None}

    def redacted(self) -> dict[str, object]:
        """Settings safe to log: secrets shown only as set/unset."""
        out: dict[str, object] = {}
        for name, info in type(self).model_fields.items():
            meta = _meta(name, info)
            value = getattr(self, name)
            out[meta.env] = ("<set>" if value else None) if meta.secret else value
        return out


def _meta(name: str, info: Any) -> Setting:
    extra = info.json_schema_extra
    assert isinstance(extra, dict) and isinstance(info.validation_alias, str), name
    return Setting(info.validation_alias, info.description or "",
                   bool(extra["required_in_azure"]), bool(extra["secret"]))


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def _settings_error(exc: ValidationError) -> SettingsError:
    """The first problem as a one-line error naming its environment variable."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SettingsError):
        return cause
    name = str(error["loc"][0]) if error["loc"] else "?"
    return SettingsError(name, str(cause) if cause is not None else error["msg"])

"""Typed, validated request bodies. The same models generate the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# Every pattern a person may trip over, in words: the API's 422 says these instead of the
# regular expression, and the OpenAPI document carries them (``x-rule``) for the web forms.
SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
LABEL_PATTERN = r"^[A-Za-z0-9._:=-]{1,100}$"
# Printable, not only spaces, and no bidirectional controls (U+202A-U+202E, U+2066-U+2069)
# that make a name display as something else.
_NAME_CHAR = r"[^\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]"
_NAME_SOLID = r"[^\s\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]"
NAME_PATTERN = rf"^{_NAME_CHAR}*{_NAME_SOLID}{_NAME_CHAR}*$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+:/@-]*$"
K8S_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,251}[a-z0-9])?$"
PATTERN_RULES: dict[str, str] = {
    SLUG_PATTERN: "use lower-case letters, digits and hyphens (at most 63), starting and "
                  "ending with a letter or digit",
    LABEL_PATTERN: "use letters, digits and . _ : = - (at most 100)",
    NAME_PATTERN: "use visible characters: not only spaces, no control or text-direction "
                  "characters",
    VERSION_PATTERN: "start with a letter or digit, then letters, digits and . _ + : / @ - "
                     "(no spaces)",
    K8S_PATTERN: "use lower-case letters, digits and hyphens, starting and ending with a "
                 "letter or digit",
}


def _ruled(pattern: str, *, min_length: int | None = None,
           max_length: int | None = None) -> Any:
    return (StringConstraints(pattern=pattern, min_length=min_length, max_length=max_length),
            Field(json_schema_extra={"x-rule": PATTERN_RULES[pattern]}))


Slug = Annotated[str, *_ruled(SLUG_PATTERN)]
Label = Annotated[str, *_ruled(LABEL_PATTERN)]
Name = Annotated[str, *_ruled(NAME_PATTERN, min_length=1, max_length=200)]
# Versions and workload names travel into argv and URLs: no whitespace or control chars.
Version = Annotated[str, *_ruled(VERSION_PATTERN, min_length=1, max_length=128)]
K8sName = Annotated[str, *_ruled(K8S_PATTERN)]


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid", frozen=True)


class AgentTarget(Body):
    """Operations run on a self-hosted agent of ``pool`` whose labels cover ``labels``."""

    type: Literal["agent"]
    pool: Slug
    labels: list[Label] = Field(default_factory=list, max_length=20)
    deploy_script: Slug | None = Field(
        default=None, description="catalogue script run for deployments (version as parameter)")
    cluster: Name | None = Field(default=None, description="agent-side cluster name for restarts")
    namespace: K8sName | None = None
    namespaces: list[K8sName] = Field(
        default_factory=list, max_length=20,
        description="further namespaces a restart may name (each granted to the project "
                    "on the cluster); restarts default to namespace")
    services: dict[K8sName, Slug] = Field(
        default_factory=dict, max_length=50,
        description="restartable workloads run as services on the agent: workload name → "
                    "a service in the agent's config (a systemd unit or a supervised app)")


class AppServiceTarget(Body):
    """An Azure App Service / Function App deployed slot-swap style through ARM."""

    type: Literal["appservice"]
    subscription_id: UUID
    resource_group: Annotated[str, StringConstraints(pattern=r"^[-A-Za-z0-9_.()]{1,90}$")]
    site: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,60}$")]
    slot: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,59}$")] = "staging"
    health_path: Annotated[str, StringConstraints(pattern=r"^/[\x21-\x7e]*$")] = "/health"
    pool: Slug | None = Field(default=None, description="agent pool for database operations")
    labels: list[Label] = Field(default_factory=list, max_length=20)


class NoopTarget(Body):
    """A dry-run target: every operation logs what it would do and succeeds."""

    type: Literal["noop"]


Target = Annotated[AgentTarget | AppServiceTarget | NoopTarget, Field(discriminator="type")]


class DatabaseRef(Body):
    connection: Name = Field(description="name of a connection known to the agent")


class ProjectCreate(Body):
    slug: Slug
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] = ""


class ProjectUpdate(Body):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class EnvironmentCreate(Body):
    slug: Slug
    name: Name
    target: Target
    database: DatabaseRef | None = None
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")] | None = None


class EnvironmentUpdate(Body):
    name: Name | None = None
    target: Target | None = None
    database: DatabaseRef | None = None
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")] | None = None


class DeployRequest(Body):
    version: Version
    package_url: Annotated[str, StringConstraints(pattern=r"^https://\S{1,2000}$")] | None = Field(
        default=None, description="App Service: a zip package the slot runs from "
                                  "(WEBSITE_RUN_FROM_PACKAGE); a SAS query is kept secret")
    image: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./:@-]{1,300}$")] | None = Field(
        default=None, description="App Service: a container image for the slot "
                                  "(linuxFxVersion DOCKER|image)")


ParamValue = str | int | float | bool
ParamKey = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")]


class BackupRequest(Body):
    pass


class RestoreRequest(Body):
    backup_id: UUID


class RefreshRequest(Body):
    """Restore this environment from a backup of another environment of the project."""

    source_environment: Slug = Field(description="the environment whose backup is restored here")
    backup_id: UUID | None = Field(
        default=None, description="a backup of the source environment; default its latest "
                                  "backup (never a safety copy)")
    mask_script: Slug | None = Field(
        default=None, description="catalogue script run right after the restore (masking "
                                  "personal data); the refresh fails if it fails")
    mask_parameters: dict[ParamKey, ParamValue] = Field(default_factory=dict, max_length=50)


class RestartRequest(Body):
    workload: K8sName = Field(
        description="a Kubernetes workload, a service in target.services, or on an App "
                    "Service target the site's name (production) or its slot's name")
    namespace: K8sName | None = None
    kind: Literal["deployment", "statefulset", "daemonset"] | None = Field(
        default=None, description="the Kubernetes workload's kind (default deployment); "
                                  "only for Kubernetes workloads")


class SandboxRequest(Body):
    name: Slug
    ttl_hours: int = Field(default=8, ge=1, le=168)
    backup_id: UUID | None = Field(
        default=None, description="seed from this backup of the parent (a regular backup, "
                                  "never a safety copy); default: a fresh backup of the "
                                  "parent taken first")


class TeardownRequest(Body):
    reason: Annotated[str, StringConstraints(max_length=500,
                                             pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


class ScriptRunRequest(Body):
    parameters: dict[Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")],
                     ParamValue] = Field(default_factory=dict, max_length=50)


OPERATION_BODIES: dict[str, type[Body]] = {
    "deploy": DeployRequest,
    "backup": BackupRequest,
    "restore": RestoreRequest,
    "refresh": RefreshRequest,
    "restart": RestartRequest,
    "sandbox_create": SandboxRequest,
    "script_run": ScriptRunRequest,
    "sandbox_delete": TeardownRequest,
}


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready camelCase dict of a request body (what a task stores as parameters)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)

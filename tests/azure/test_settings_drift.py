"""Code and infrastructure cannot drift apart silently: every setting the code reads is an
app setting of the Function App in the Bicep (or listed as optional in docs/deploy.md),
every app setting the Bicep defines is read by someone, and every Azure role the code and
the Functions host need is assigned to the app's identity on the right kind of resource."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

from shared.azure_credential import (
    KEY_VAULT_SECRETS_USER,
    SERVICE_BUS_DATA_OWNER,
    SERVICE_BUS_DATA_RECEIVER,
    SERVICE_BUS_DATA_SENDER,
    SIGNALR_APP_SERVER,
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    STORAGE_TABLE_DATA_CONTRIBUTOR,
    AzureRole,
)
from shared.settings import Settings
from tests.azure.bicep import Str, body, parse, text
from tests.conftest import ROOT

BICEP = ROOT / "infra" / "bicep"
FUNCTION_APP = BICEP / "modules" / "functionapp.bicep"
CODE_DIRS = ("shared", "functions")

# Settings the Functions host / platform reads rather than our code.
HOST_SETTINGS = {"APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "PYTHON_THREADPOOL_THREAD_COUNT",
                 # host.json durableTask.storageProvider.connectionStringName
                 "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"
# What the Functions host itself needs for our bindings, and what adapters owned by other
# parts need (until their modules declare AZURE_ROLES, they are listed here).
PLATFORM_ROLES = (
    AzureRole("AzureWebJobsStorage: host leases, Durable task hub blobs",
              "Microsoft.Storage/storageAccounts", (STORAGE_BLOB_DATA_OWNER,)),
    AzureRole("Durable task hub queues", "Microsoft.Storage/storageAccounts",
              (STORAGE_QUEUE_DATA_CONTRIBUTOR,)),
    AzureRole("Durable task hub tables", "Microsoft.Storage/storageAccounts",
              (STORAGE_TABLE_DATA_CONTRIBUTOR,)),
    AzureRole("Service Bus trigger (sessions) and its scale controller",
              "Microsoft.ServiceBus/namespaces/queues",
              (SERVICE_BUS_DATA_OWNER, SERVICE_BUS_DATA_RECEIVER)),
    AzureRole("shared/bus: task sender", "Microsoft.ServiceBus/namespaces/queues",
              (SERVICE_BUS_DATA_SENDER, SERVICE_BUS_DATA_OWNER)),
    AzureRole("shared/realtime: SignalR REST publish with Entra tokens",
              "Microsoft.SignalRService/signalR", (SIGNALR_APP_SERVER,)),
    AzureRole("Key Vault references in app settings", "Microsoft.KeyVault/vaults",
              (KEY_VAULT_SECRETS_USER,)),
    AzureRole("Durable Functions backend: the Durable Task Scheduler task hub",
              "Microsoft.DurableTask/schedulers/taskHubs", (DURABLE_TASK_DATA_CONTRIBUTOR,)),
)


def app_settings() -> dict[str, str]:
    """App setting name → its value as Bicep text (a literal in quotes)."""
    bicep = parse(FUNCTION_APP)
    return {k: text(v) for k, v in bicep.symbols("var")["appSettings"].value.items()}


def optional_settings() -> set[str]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### Optional settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z0-9_]+)`", section, re.M))


def names_in_code() -> set[str]:
    """Every CLOUDOPS_* name written as a string literal in the app's code."""
    found: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"[\"'](CLOUDOPS_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def test_every_setting_the_code_reads_is_in_the_bicep_or_documented_as_optional() -> None:
    defined, optional = set(app_settings()), optional_settings()
    read = {v.env for v in Settings.variables()} | names_in_code()
    missing = sorted(read - defined - optional)
    assert not missing, f"read by the code but neither in functionapp.bicep nor optional: " \
                        f"{missing}"


def test_settings_required_in_azure_are_provisioned_not_just_documented() -> None:
    defined = set(app_settings())
    required = {v.env for v in Settings.variables() if v.required_in_azure}
    assert required <= defined, sorted(required - defined)


def test_every_app_setting_in_the_bicep_is_read_by_the_code_or_the_host() -> None:
    known = {v.env for v in Settings.variables()} | names_in_code() | HOST_SETTINGS
    prefixes = {name.split("__")[0] for name in known} | {"AzureWebJobsStorage"}
    unused = sorted(k for k in app_settings()
                    if k not in known and k.split("__")[0] not in prefixes)
    assert not unused, f"app settings nobody reads: {unused}"


def test_documented_optional_settings_still_exist_in_the_code() -> None:
    read = {v.env for v in Settings.variables()} | names_in_code()
    stale = sorted(optional_settings() - read)
    assert not stale, f"docs/deploy.md lists settings the code no longer reads: {stale}"


def test_the_app_settings_select_the_azure_adapters() -> None:
    """The Function App's settings, as the Bicep writes them, parse in azure mode and pick
    Table storage for logs and Blob storage for artifacts through the managed identity."""
    from shared.artifacts import make_artifact_store
    from shared.artifacts._blob import BlobArtifactStore
    from shared.logs import make_log_store
    from shared.logs._table import TableLogStore

    values: dict[str, str] = {}
    for key, value in app_settings().items():
        if value.startswith("'") and value.endswith("'"):
            values[key] = value[1:-1]  # a literal in the Bicep
        elif key.endswith(("Uri", "Namespace")):
            values[key] = "https://account.example.net/"
        else:
            values[key] = "provisioned-value"
    values["DATABASE_URL"] = "host=psql.example dbname=cloudops user=id sslmode=require"
    values["CLOUDOPS_DB_POOL_MAX"] = "4"
    settings = Settings.from_env(values)
    assert settings.mode == "azure"
    assert isinstance(make_log_store(settings, None), TableLogStore)
    assert isinstance(make_artifact_store(settings), BlobArtifactStore)


def test_binding_connections_and_host_json_references_are_defined() -> None:
    """Every `connection` a trigger/binding names has identity-based settings in the
    Bicep, and every %NAME% in host.json or a binding is an app setting."""
    script = ("import json; from function_app import app; "
              "print(json.dumps([f.get_function_json() for f in app.get_functions()]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    functions = [json.loads(f) if isinstance(f, str) else f for f in json.loads(out)]
    defined = set(app_settings())
    text = (ROOT / "host.json").read_text() + json.dumps(functions)
    for name in set(re.findall(r"%([A-Za-z0-9_]+)%", text)):
        assert name in defined, f"%{name}% is not an app setting"
    for fn in functions:
        for binding in fn["bindings"]:
            connection = binding.get("connection")
            if connection:
                assert any(k.startswith(f"{connection}__") for k in defined), connection
                assert f"{connection}__credential" in defined, connection


def test_the_durable_backend_host_json_names_is_provisioned_with_the_identity() -> None:
    """host.json's Durable storage provider (the Durable Task Scheduler) reads its
    connection from an app setting the Bicep writes: the scheduler's endpoint, the task hub
    host.json's hubName resolves to, and the app's managed identity (no keys); and the
    extension bundle is one that carries the provider (4.32.0 or later)."""
    host = json.loads((ROOT / "host.json").read_text())
    provider = host["extensions"]["durableTask"]["storageProvider"]
    assert provider["type"] == "azureManaged"
    bundle_floor = host["extensionBundle"]["version"].strip("[(").split(",")[0].strip()
    assert tuple(int(p) for p in bundle_floor.split(".")) >= (4, 32, 0), bundle_floor
    settings = app_settings()
    literal = settings[provider["connectionStringName"]]
    assert literal.startswith("'") and literal.endswith("'"), literal
    value = literal[1:-1]
    fields = dict(part.split("=", 1) for part in value.split(";"))
    assert fields == {"Endpoint": "${durableTaskEndpoint}", "TaskHub": "${taskHubName}",
                      "Authentication": "ManagedIdentity", "ClientID": "${identityClientId}"}
    assert host["extensions"]["durableTask"]["hubName"] == "%CLOUDOPS_TASK_HUB%"
    assert settings["CLOUDOPS_TASK_HUB"] == "taskHubName"


def _assigned_roles() -> set[tuple[str, str]]:
    """(resource type, role id) granted to the app identity (`principalId` param)."""
    granted: set[tuple[str, str]] = set()
    main = parse(BICEP / "main.bicep")
    for module in main.symbols("module").values():
        params = body(module).get("params") or {}
        if text(params.get("principalId")) != "identity.outputs.principalId":
            continue
        bicep = parse(BICEP / module.type)
        types = {name: s.type.split("@")[0] for name, s in bicep.symbols("resource").items()}
        roles = {name: s.value for name, s in bicep.symbols("var").items()}
        for s in bicep.symbols("resource").values():
            if types[s.name] != "Microsoft.Authorization/roleAssignments":
                continue
            spec = body(s)
            props = spec.get("properties") or {}
            if text(props.get("principalId")) != "principalId":
                continue
            role_var = re.search(r",\s*(\w+)\)$", text(props["roleDefinitionId"]))
            assert role_var, s.name
            role_id = roles[role_var.group(1)]
            assert isinstance(role_id, Str), s.name
            granted.add((types[text(spec.get("scope"))], str(role_id)))
    return granted


def _declared_needs() -> list[AzureRole]:
    needs = list(PLATFORM_ROLES)
    for path in (ROOT / "shared").rglob("*.py"):
        if "AZURE_ROLES = " in path.read_text():
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            needs.extend(importlib.import_module(module).AZURE_ROLES)
    return needs


def test_every_role_the_code_needs_is_assigned_to_the_app_identity() -> None:
    granted = _assigned_roles()
    needs = _declared_needs()
    assert any(n.need.startswith("task logs") for n in needs)  # adapters were found
    missing = [n.need for n in needs
               if not any((n.resource_type, role) in granted for role in n.role_ids)]
    assert not missing, f"roles the code needs but the Bicep does not assign: {missing}"


def test_no_role_is_granted_wider_than_one_resource() -> None:
    for path in BICEP.rglob("*.bicep"):
        text = path.read_text()
        assert "scope: resourceGroup()" not in text and "scope: subscription()" not in text, \
            f"{path.name} grants a role on a whole resource group or subscription"


def test_database_url_logs_in_as_the_identity_with_entra_tokens() -> None:
    settings = app_settings()
    bicep = parse(FUNCTION_APP)
    url = bicep.symbols("var")["databaseUrl"].value
    assert isinstance(url, Str)
    assert "user=${identityName}" in url and "sslmode=require" in url
    assert "password" not in url
    assert settings["CLOUDOPS_DATABASE_ENTRA_USER"] == "identityName"

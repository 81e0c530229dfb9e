"""The Bicep in infra/bicep passes a structural check (no Bicep compiler is reachable on
these machines: tests/azure/bicep.py parses the files with pycep-parser and checks what a
parser alone does not; `az bicep build` is not run), and the checker itself fails on the
mistakes it exists to catch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.azure.bicep import BicepError, check_file, check_modules, parse
from tests.conftest import ROOT

BICEP = ROOT / "infra" / "bicep"
FILES = sorted(BICEP.rglob("*.bicep"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(BICEP)))
def test_every_bicep_file_is_structurally_sound(path: Path) -> None:
    bicep = parse(path)
    check_file(bicep)
    check_modules(bicep)


def test_main_declares_the_whole_platform() -> None:
    types = set()
    for path in FILES:
        bicep = parse(path)
        for s in bicep.symbols("resource").values():
            types.add(s.type.split("@")[0])
    assert {
        "Microsoft.ManagedIdentity/userAssignedIdentities", "Microsoft.Web/sites",
        "Microsoft.Web/serverfarms", "Microsoft.Storage/storageAccounts",
        "Microsoft.ServiceBus/namespaces/queues", "Microsoft.SignalRService/signalR",
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "Microsoft.DBforPostgreSQL/flexibleServers/administrators",
        "Microsoft.Web/staticSites", "Microsoft.Web/staticSites/linkedBackends",
        "Microsoft.Insights/components", "Microsoft.OperationalInsights/workspaces",
        "Microsoft.KeyVault/vaults", "Microsoft.Authorization/roleAssignments",
        "Microsoft.DurableTask/schedulers", "Microsoft.DurableTask/schedulers/taskHubs",
    } <= types


def test_queue_is_session_enabled_with_dead_lettering_and_duplicate_detection() -> None:
    text = (BICEP / "modules" / "servicebus.bicep").read_text()
    for line in ("requiresSession: true", "requiresDuplicateDetection: true",
                 "deadLetteringOnMessageExpiration: true", "maxDeliveryCount: maxDeliveryCount",
                 "duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow"):
        assert line in text


def test_shared_key_and_local_auth_are_disabled_everywhere() -> None:
    modules = BICEP / "modules"
    assert "allowSharedKeyAccess: false" in (modules / "storage.bicep").read_text()
    for name in ("servicebus.bicep", "signalr.bicep"):
        assert "disableLocalAuth: true" in (modules / name).read_text()
    assert "DisableLocalAuth: true" in (modules / "monitoring.bicep").read_text()
    assert "activeDirectoryAuth: 'Enabled'" in (modules / "postgres.bicep").read_text()


def test_azure_yaml_names_the_services_infra_and_an_existing_migration_hook() -> None:
    """azd's JSON schema is not available offline; this checks the fields azd needs."""
    doc = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert doc["infra"] == {"provider": "bicep", "path": "infra/bicep", "module": "main"}
    assert (ROOT / doc["infra"]["path"] / f"{doc['infra']['module']}.bicep").exists()
    assert doc["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    web = doc["services"]["web"]
    assert web["host"] == "staticwebapp"
    assert web["dist"] == "dist"  # scripts/build_web.py writes web/dist
    assert (ROOT / web["project"] / web["hooks"]["prepackage"]["posix"]["run"]).resolve()\
        .exists()
    for hook in ("preprovision", "postprovision"):
        script = doc["hooks"][hook]["posix"]["run"]
        assert (ROOT / script).exists(), script
    # the Bicep tags what azd deploys each service to
    app = (BICEP / "modules" / "functionapp.bicep").read_text()
    swa = (BICEP / "modules" / "staticwebapp.bicep").read_text()
    assert "'azd-service-name': 'api'" in app
    assert "'azd-service-name': 'web'" in swa


def test_parameters_file_feeds_every_required_main_parameter() -> None:
    import json

    given = set(json.loads((BICEP / "main.parameters.json").read_text())["parameters"])
    main = parse(BICEP / "main.bicep")
    required = {n for n, p in main.symbols("param").items() if p.value is None}
    assert required <= given
    assert given <= set(main.symbols("param"))


GOOD_MODULE = """
@description('x')
param name string
param size int = 1
output id string = name
"""


def _check_source(tmp_path: Path, source: str, module: str = GOOD_MODULE) -> None:
    (tmp_path / "mod.bicep").write_text(module)
    path = tmp_path / "main.bicep"
    path.write_text(source)
    bicep = parse(path)
    check_file(bicep)
    check_modules(bicep)


ROLE = """
param principalId string
var role = 'abc'
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: 'v'
}
resource ra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: NAME
  scope: vault
  properties: {
    principalId: principalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}
"""


def test_checker_accepts_a_correct_file(tmp_path: Path) -> None:
    _check_source(tmp_path, "module m 'mod.bicep' = {\n  name: 'm'\n  params: {\n"
                            "    name: 'x'\n  }\n}\noutput o string = m.outputs.id\n")
    _check_source(tmp_path, ROLE.replace("NAME", "guid(vault.id, principalId, role)"))


@pytest.mark.parametrize(("source", "problem"), [
    ("var a = {\n  b: 1\n", "main.bicep:2: syntax error"),  # never closed
    ("var a = 'open\n", "main.bicep:1: syntax error"),  # unterminated string
    ("param p string\nvar a = q\n", "undeclared q"),
    ("var a = toLowerCase('X')\n", "unknown function toLowerCase"),
    ("var a = '${missing}'\n", "undeclared missing"),
    ("resource r 'Microsoft.Web/sites' = {\n  name: 'x'\n}\n", "api-version"),
    ("@allowed([\n  'a'\n])\nparam p string = 'b'\n", "not in @allowed"),
    ("param p strin\n", "no known type"),
    ("var a = 1\nvar a = 2\n", "declared twice"),
    ("nonsense here\n", "main.bicep:1: syntax error"),
    ("resource r 'Microsoft.Web/sites@2024-04-01' = [for s in sites: if (s.on) {\n"
     "  name: s.name\n}]\n", "undeclared sites"),  # a filtered loop is read, not skipped
    ("module m 'mod.bicep' = {\n  name: 'm'\n  params: {\n    size: 2\n  }\n}\n",
     "misses params"),
    ("module m 'mod.bicep' = {\n  name: 'm'\n  params: {\n    name: 'x'\n    colour: 'red'\n"
     "  }\n}\n", "unknown params"),
    ("module m 'mod.bicep' = {\n  name: 'm'\n  params: {\n    name: 'x'\n  }\n}\n"
     "output o string = m.outputs.nope\n", "no output nope"),
    ("module m 'missing.bicep' = {\n  name: 'm'\n}\n", "file missing"),
    (ROLE.replace("NAME", "'fixed-name'"), "guid(scope, principal, role)"),
    (ROLE.replace("NAME", "guid(resourceGroup().id, principalId, role)"), "vault.id"),
    (ROLE.replace("NAME", "guid(vault.id, 'someone', role)"), "principal"),
])
def test_checker_refuses_broken_bicep(tmp_path: Path, source: str, problem: str) -> None:
    with pytest.raises(BicepError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        _check_source(tmp_path, source)

"""#18: the Bicep declares the front door and the hardening (structural: no Bicep compiler
runs here; ``tests/azure/bicep.py`` parses the files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.azure.bicep import BicepFile, Statement, body, parse, text

MODULES = Path(__file__).resolve().parents[2] / "infra" / "bicep" / "modules"


def resource(bicep: BicepFile, rtype: str, name: str | None = None) -> Statement:
    for s in bicep.statements:
        if s.kind == "resource" and s.type.startswith(rtype + "@") and (
                name is None or text(body(s).get("name")) == name):
            return s
    raise AssertionError(f"{bicep.path.name} declares no {rtype} {name or ''}")


def at(bicep: BicepFile, s: Statement, path: str) -> str:
    """The value at a dotted path of the resource body, as Bicep text."""
    value: Any = body(s)
    for key in path.split("."):
        value = value[key]
    return text(value)


def test_function_app_auth_is_declared_after_the_swa_link_and_vouches_per_provider() -> None:
    bicep = parse(MODULES / "swa-backend.bicep")
    link = resource(bicep, "Microsoft.Web/staticSites/linkedBackends")
    auth = resource(bicep, "Microsoft.Web/sites/config", "'authsettingsV2'")
    assert link.name in at(bicep, auth, "dependsOn")
    assert at(bicep, auth, "properties.platform.enabled") == "true"
    assert at(bicep, auth, "properties.globalValidation.unauthenticatedClientAction") == \
        "'AllowAnonymous'"
    assert at(bicep, auth, "properties.login.tokenStore.enabled") == "false"
    swa = "properties.identityProviders.azureStaticWebApps"
    assert at(bicep, auth, f"{swa}.enabled") == "true"
    assert at(bicep, auth, f"{swa}.registration.clientId") == "staticWebAppHostname"
    aad = "properties.identityProviders.azureActiveDirectory"
    assert at(bicep, auth, f"{aad}.validation.defaultAuthorizationPolicy.allowedApplications"
              ) == "pipelineAppIds"
    assert "tenant().tenantId" in at(bicep, auth, f"{aad}.registration.openIdIssuer")
    assert "!empty(pipelineAppIds)" in at(bicep, auth, f"{aad}.enabled")


def test_key_vault_has_purge_protection_rbac_and_a_firewall() -> None:
    bicep = parse(MODULES / "keyvault.bicep")
    vault = resource(bicep, "Microsoft.KeyVault/vaults")
    assert at(bicep, vault, "properties.enablePurgeProtection") == "true"
    assert at(bicep, vault, "properties.enableRbacAuthorization") == "true"
    assert at(bicep, vault, "properties.networkAcls.bypass") == "'AzureServices'"
    assert "'Deny'" in at(bicep, vault, "properties.networkAcls.defaultAction")
    assert bicep.symbols("param")["networkAccess"].value == "restricted"
    assert "pipeline-keys" not in (MODULES / "keyvault.bicep").read_text()


def test_signalr_cors_is_the_web_apps_origin_only() -> None:
    bicep = parse(MODULES / "signalr.bicep")
    service = resource(bicep, "Microsoft.SignalRService/signalR")
    assert at(bicep, service, "properties.cors.allowedOrigins") == "allowedOrigins"
    main = (MODULES.parent / "main.bicep").read_text()
    block = main[main.index("module signalr"):main.index("module postgres")]
    assert "'https://${staticWebApp.outputs.defaultHostname}'" in block and "'*'" not in block


def test_storage_has_no_public_blobs_and_tls_1_2() -> None:
    bicep = parse(MODULES / "storage.bicep")
    account = resource(bicep, "Microsoft.Storage/storageAccounts")
    assert at(bicep, account, "properties.allowBlobPublicAccess") == "false"
    assert at(bicep, account, "properties.minimumTlsVersion") == "'TLS1_2'"


def test_function_app_has_tls_1_2_https_only_and_no_ftp_or_basic_publishing() -> None:
    bicep = parse(MODULES / "functionapp.bicep")
    site = resource(bicep, "Microsoft.Web/sites")
    assert at(bicep, site, "properties.httpsOnly") == "true"
    assert at(bicep, site, "properties.siteConfig.minTlsVersion") == "'1.2'"
    assert at(bicep, site, "properties.siteConfig.ftpsState") == "'Disabled'"
    for name in ("'ftp'", "'scm'"):
        policy = resource(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies", name)
        assert at(bicep, policy, "properties.allow") == "false"
    assert "CLOUDOPS_PIPELINE_KEYS" not in (MODULES / "functionapp.bicep").read_text()

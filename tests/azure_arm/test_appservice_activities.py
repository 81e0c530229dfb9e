"""The four App Service deploy activities against a local stand-in of ARM.

ARM cannot run offline, so every test here talks to ``_arm_standin`` — a small aiohttp
server answering the ARM endpoints azure-mgmt-web calls (with LRO polling), plus two
small servers playing the production and slot hosts — through the real SDK and pipeline.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import pytest

from functions.activities import appservice as activities
from shared.appservice import (
    AppServiceDeployer,
    AppServiceError,
    LocalStandInCredential,
    web_client_factory,
)
from shared.settings import Settings, SettingsError
from tests.azure_arm._arm_standin import ArmStandIn
from tests.azure_arm.conftest import TOKEN, FakeCredential, make_ref

API_VERSION = "2025-05-01"  # azure-mgmt-web 11.0.1's Microsoft.Web API version


def test_package_deploy_merges_app_settings_and_keeps_existing_ones(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any],
        credential: FakeCredential) -> None:
    """Local ARM stand-in (ARM cannot run offline): list, then replace with a merged set."""
    url = "https://pkgs.example/orders-2.0.0.zip?sv=2024&sig=SECRETSIG"
    result = activities.set_version(make_ref(target, "2.0.0", package_url=url), deployer)

    assert standin.arm_calls() == [
        ("POST", "/slots/staging/config/appsettings/list"),
        ("PUT", "/slots/staging/config/appsettings"),
    ]
    put = standin.requests[1]
    assert put.body == {"properties": {"CLOUDOPS_VERSION": "2.0.0", "DB_NAME": "orders-staging",
                                       "FEATURE_FLAGS": "beta",
                                       "WEBSITE_RUN_FROM_PACKAGE": url}}
    assert all(r.query == {"api-version": API_VERSION} for r in standin.requests)
    assert all(r.authorization == f"Bearer {TOKEN}" for r in standin.requests)
    assert credential.scopes and all(s == (f"{standin.base_url}/.default",)
                                     for s in credential.scopes)
    # Production is untouched; the SAS never reaches the task log.
    assert standin.production.version == "1.0.0"
    assert result["settingsKept"] == 2
    assert "SECRETSIG" not in repr(result)
    assert "?<redacted>" in result["log"][0]


def test_image_deploy_sets_linux_fx_version_on_the_slot_only(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): the site config PATCH carries the image."""
    image = "registry.example/orders:2.0.0"
    activities.set_version(make_ref(target, "2.0.0", image=image), deployer)

    assert ("PATCH", "/slots/staging/config/web") in standin.arm_calls()
    patch = next(r for r in standin.requests if r.method == "PATCH")
    assert patch.body == {"properties": {"linuxFxVersion": f"DOCKER|{image}"}}
    assert standin.staging.linux_fx_version == f"DOCKER|{image}"
    assert standin.staging.app_settings["CLOUDOPS_VERSION"] == "2.0.0"
    assert "WEBSITE_RUN_FROM_PACKAGE" not in standin.staging.app_settings
    assert standin.production.linux_fx_version == ""


def test_restart_posts_to_the_slot_restart_endpoint(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline)."""
    result = activities.restart_slot(make_ref(target, "2.0.0"), deployer)

    assert standin.arm_calls() == [("POST", "/slots/staging/restart")]
    assert standin.staging.restarts == 1
    assert standin.production.restarts == 0
    assert result["restarted"] is True


def test_site_restart_posts_to_the_site_restart_endpoint(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline)."""
    result = activities.restart_site({"target": target}, deployer)

    assert standin.arm_calls() == [("POST", "/restart")]
    assert standin.production.restarts == 1
    assert standin.staging.restarts == 0
    assert result["restarted"] is True


def test_swap_polls_the_long_running_operation_until_it_succeeds(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): 202 + Azure-AsyncOperation, polled
    InProgress three times, then Succeeded and the Location result."""
    standin.swap_polls = 3
    ref = make_ref(target, "2.0.0", package_url="https://pkgs.example/2.0.0.zip")
    activities.set_version(ref, deployer)
    standin.requests.clear()

    result = activities.swap(ref, deployer)

    calls = standin.arm_calls()
    assert calls[0] == ("POST", "/slots/staging/slotsswap")
    assert standin.requests[0].body == {"targetSlot": "production", "preserveVnet": True}
    status_polls = [path for method, path in calls if "/operations/" in path]
    assert len(status_polls) == 4  # three InProgress, one Succeeded
    assert any("/operationResults/" in path for _, path in calls)
    assert all(r.authorization == f"Bearer {TOKEN}" for r in standin.requests)
    assert standin.swaps == 1
    assert result == {"swapped": True, "production": "2.0.0", "slot": "1.0.0",
                      "log": [result["log"][0]]}
    assert standin.production.app_settings["WEBSITE_RUN_FROM_PACKAGE"].endswith("2.0.0.zip")


def test_swapping_again_swaps_back(standin: ArmStandIn, deployer: AppServiceDeployer,
                                   target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline)."""
    ref = make_ref(target, "2.0.0")
    activities.set_version(ref, deployer)
    activities.swap(ref, deployer)
    back = activities.swap(ref, deployer)

    assert standin.swaps == 2
    assert back["production"] == "1.0.0"
    assert standin.production.version == "1.0.0"
    assert standin.staging.version == "2.0.0"


def test_swap_with_expected_production_version_is_safe_to_retry(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): a retried swap must not swap back."""
    ref = {**make_ref(target, "2.0.0"), "expectProduction": "2.0.0"}
    activities.set_version(ref, deployer)
    first = activities.swap(ref, deployer)
    retried = activities.swap(ref, deployer)

    assert first["swapped"] is True
    assert retried["swapped"] is False
    assert standin.swaps == 1
    assert standin.production.version == "2.0.0"


def test_health_check_uses_the_host_name_arm_reports_and_retries(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): the slot answers 503 twice, then 200."""
    answers = iter([503, 503])
    standin.health_rule = lambda where, version: next(answers, 200)

    result = activities.health_check({**make_ref(target, "1.0.0"), "where": "slot"}, deployer)

    assert standin.arm_calls() == [("GET", "/slots/staging")]
    assert result["healthy"] is True
    assert result["url"] == f"http://{standin.staging.host}/health"
    assert result["detail"] == "HTTP 200 on attempt 3 of 3"
    assert standin.health_requests == [("slot", "/health")] * 3


def test_unhealthy_production_is_a_result_after_all_attempts(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): unhealthy is an answer, not an error."""
    standin.health_rule = lambda where, version: 503 if where == "production" else 200
    ref = make_ref(target, "1.0.0")

    production = activities.health_check({**ref, "where": "production"}, deployer)
    slot = activities.health_check({**ref, "where": "slot"}, deployer)

    assert ("GET", "/") in standin.arm_calls()  # the site itself, for its host name
    assert production["healthy"] is False
    assert production["detail"] == "HTTP 503 after 3 attempts"
    assert production["url"] == f"http://{standin.production.host}/health"
    assert slot["healthy"] is True


def test_health_check_of_an_unreachable_host_reports_no_response(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): ARM names a host nobody listens on."""
    standin.staging.host = "127.0.0.1:9"  # discard port: connection refused
    result = activities.health_check({**make_ref(target, "1.0.0"), "where": "slot"}, deployer)

    assert result["healthy"] is False
    assert result["detail"].startswith("no response (")
    assert result["detail"].endswith("after 3 attempts")


def test_arm_authorization_failure_names_status_code_and_message(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline) answering 403 like ARM does."""
    standin.fail("POST", "/slots/staging/config/appsettings/list", 403, "AuthorizationFailed",
                 "The client 'abc' does not have authorization to perform action "
                 "'Microsoft.Web/sites/slots/config/list/action'.")

    with pytest.raises(AppServiceError) as raised:
        activities.set_version(make_ref(target, "2.0.0"), deployer)

    message = str(raised.value)
    assert message.startswith("list app settings of orders-api/staging failed: HTTP 403 "
                              "AuthorizationFailed: The client 'abc' does not have")
    assert TOKEN not in message
    assert not any(r.method == "PUT" for r in standin.requests)  # nothing half written


def test_missing_slot_is_a_clear_not_found(standin: ArmStandIn, deployer: AppServiceDeployer,
                                           target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline) answering 404 ResourceNotFound."""
    with pytest.raises(AppServiceError, match=r"restart orders-api/blue failed: HTTP 404 "
                                              r"ResourceNotFound: slot blue not found"):
        activities.restart_slot(make_ref({**target, "slot": "blue"}, "2.0.0"), deployer)


def test_rejected_token_surfaces_as_authentication_failure(
        standin: ArmStandIn, settings: Settings, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline) rejecting a token it does not know."""
    wrong = AppServiceDeployer.from_settings(settings, credential=FakeCredential("other"))

    with pytest.raises(AppServiceError, match="HTTP 401 InvalidAuthenticationToken"):
        activities.restart_slot(make_ref(target, "2.0.0"), wrong)
    assert standin.staging.restarts == 0


def test_local_mode_uses_the_stand_in_token_for_a_loopback_arm_endpoint(
        standin: ArmStandIn, settings: Settings, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): the offline host has no Azure AD, so
    local mode with a loopback endpoint needs no injected credential."""
    standin.token = LocalStandInCredential.TOKEN
    assert settings.mode == "local"

    activities.restart_slot(make_ref(target, "2.0.0"), AppServiceDeployer.from_settings(settings))

    assert standin.requests[0].authorization == f"Bearer {LocalStandInCredential.TOKEN}"
    assert standin.staging.restarts == 1


def test_token_is_never_sent_over_plain_http_beyond_loopback(target: dict[str, Any]) -> None:
    """No server needed: azure-core refuses before connecting; the loopback exemption for
    local stand-ins does not extend to other hosts."""
    factory = web_client_factory(FakeCredential(), endpoint="http://arm.example.invalid")
    deployer = AppServiceDeployer(factory)

    with pytest.raises(AppServiceError, match="non-TLS"):
        activities.restart_slot(make_ref(target, "2.0.0"), deployer)


@pytest.mark.parametrize(("change", "problem"), [
    ({"site": None}, "needs site"),
    ({"subscriptionId": ""}, "needs subscriptionId"),
    ({"slot": "production"}, "must be a deployment slot"),
    ({"healthPath": "health"}, "must start with '/'"),
])
def test_invalid_target_is_refused_before_calling_arm(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any],
        change: dict[str, Any], problem: str) -> None:
    """Local ARM stand-in (ARM cannot run offline): it must see no request at all."""
    with pytest.raises(AppServiceError, match=problem):
        activities.restart_slot(make_ref({**target, **change}, "2.0.0"), deployer)
    assert standin.requests == []


def test_health_check_scheme_setting_is_validated() -> None:
    settings = Settings.from_env({"CLOUDOPS_HEALTH_CHECK_SCHEME": "ftp"})
    with pytest.raises(SettingsError, match="CLOUDOPS_HEALTH_CHECK_SCHEME"):
        AppServiceDeployer.from_settings(settings, credential=FakeCredential())


def test_triggers_are_the_activities_the_deploy_and_sandbox_orchestrators_call(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): the registered trigger runs the plain
    function with the installed deployer."""
    app = df.DFApp()
    app.register_functions(activities.bp)
    functions = {fn.get_function_name(): fn for fn in app.get_functions()}
    assert set(functions) == {"appservice_set_version", "appservice_restart_slot",
                              "appservice_restart_site", "appservice_health_check",
                              "appservice_swap", "appservice_create_sandbox_slot",
                              "appservice_delete_sandbox_slot"}
    assert all(fn.get_trigger().get_binding_name() == "activityTrigger"
               for fn in functions.values())

    activities.use_deployer(lambda: deployer)
    try:
        ref = {**make_ref(target, "2.0.0"), "taskId": None}  # no task: nothing to log
        functions["appservice_restart_slot"].get_user_function()(ref)
    finally:
        activities.use_deployer(None)
    assert standin.staging.restarts == 1

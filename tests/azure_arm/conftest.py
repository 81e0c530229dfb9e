"""Fixtures for the App Service deploy tests: the local ARM stand-in, a fake credential
and a deployer built from settings that point at the stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.appservice import AppServiceDeployer
from shared.settings import Settings
from tests.azure_arm._arm_standin import ArmStandIn, SlotState, run_standin

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
TOKEN = "fake-arm-token-abc123"


class FakeCredential:
    """A ``TokenCredential`` that hands out a fixed token and remembers the scopes asked."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def standin() -> Iterator[ArmStandIn]:
    state = ArmStandIn(
        subscription_id=SUBSCRIPTION, resource_group="rg-orders", site="orders-api",
        slot="staging", token=TOKEN,
        production=SlotState({"CLOUDOPS_VERSION": "1.0.0", "DB_NAME": "orders",
                              "WEBSITE_RUN_FROM_PACKAGE": "https://pkgs.example/1.0.0.zip"}),
        staging=SlotState({"CLOUDOPS_VERSION": "1.0.0", "DB_NAME": "orders-staging",
                           "FEATURE_FLAGS": "beta"}))
    with run_standin(state) as running:
        yield running


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def settings(standin: ArmStandIn) -> Settings:
    return Settings.from_env({
        "CLOUDOPS_ARM_ENDPOINT": standin.base_url,
        "CLOUDOPS_ARM_POLL_INTERVAL_MS": "10",
        "CLOUDOPS_HEALTH_CHECK_SCHEME": "http",
        "CLOUDOPS_HEALTH_CHECK_ATTEMPTS": "3",
        "CLOUDOPS_HEALTH_CHECK_INTERVAL_MS": "10",
    })


@pytest.fixture
def deployer(settings: Settings, credential: FakeCredential) -> AppServiceDeployer:
    return AppServiceDeployer.from_settings(settings, credential=credential)


@pytest.fixture
def target(standin: ArmStandIn) -> dict[str, Any]:
    """The environment's target JSON, as the HTTP API stores it (camelCase)."""
    return {"type": "appservice", "subscriptionId": standin.subscription_id,
            "resourceGroup": standin.resource_group, "site": standin.site,
            "slot": standin.slot, "healthPath": standin.health_path}


def make_ref(target: dict[str, Any], version: str, *, package_url: str | None = None,
             image: str | None = None) -> dict[str, Any]:
    return {"taskId": "5f0c1c9e-0000-4000-8000-000000000001", "target": target,
            "version": version, "packageUrl": package_url, "image": image}

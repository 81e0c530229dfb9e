"""Deploy adapter for Azure App Service / Function App targets, through ARM (azure-mgmt-web).

The slot-swap deploy is four calls, each an activity of the deploy orchestration:
``set_version`` on the staging slot (container image or run-from-package URL, plus the
``CLOUDOPS_VERSION`` app setting), ``restart_slot``, ``health_check`` of the slot or of
production, and ``swap`` (a long-running ARM operation; a second swap swaps back).

Authentication is an injected ``TokenCredential`` (``DefaultAzureCredential`` in real use),
so tests pass a fake one and point ``CLOUDOPS_ARM_ENDPOINT`` at a local stand-in of ARM.
ARM failures surface as ``AppServiceError`` naming the call, the HTTP status and ARM's
error code/message — never tokens, and never app-setting values (they hold secrets).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_incrementing

from shared.httpclient import RequestException, session
from shared.settings import Settings, SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.web import WebSiteManagementClient

VERSION_SETTING = "CLOUDOPS_VERSION"
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
PRODUCTION = "production"
HEALTH_TIMEOUT_S = 10.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

ClientFactory = Callable[[str], "WebSiteManagementClient"]


class AppServiceError(RuntimeError):
    """An App Service deploy step failed; the message says which call and why."""


@dataclass(frozen=True)
class HealthPolicy:
    """How health checks run: ``attempts`` GETs, waiting interval, 2 x interval, ... between."""

    scheme: str = "https"
    attempts: int = 5
    interval_s: float = 2.0
    timeout_s: float = HEALTH_TIMEOUT_S


@dataclass(frozen=True)
class SlotTarget:
    """Where to deploy: the ``appservice`` target of an environment (camelCase JSON).

    The HTTP API validates targets (``AppServiceTarget``); this re-checks the fields the
    deploy needs, because an activity's input is only JSON.
    """

    subscription_id: str
    resource_group: str
    site: str
    slot: str = "staging"
    health_path: str = "/health"

    @classmethod
    def from_json(cls, target: Mapping[str, Any]) -> SlotTarget:
        values: dict[str, str] = {}
        for name, key in (("subscription_id", "subscriptionId"),
                          ("resource_group", "resourceGroup"), ("site", "site"),
                          ("slot", "slot"), ("health_path", "healthPath")):
            raw = target.get(key)
            if raw is None and name in ("slot", "health_path"):
                continue
            if not isinstance(raw, str) or not raw.strip():
                raise AppServiceError(f"the environment's appservice target needs {key} "
                                      f"(a non-empty string), got {raw!r}")
            values[name] = raw.strip()
        found = cls(**values)
        if found.slot.lower() == PRODUCTION:
            raise AppServiceError("the appservice target's slot must be a deployment slot, "
                                  "not production")
        if not found.health_path.startswith("/"):
            raise AppServiceError(f"the appservice target's healthPath must start with '/', "
                                  f"got {found.health_path!r}")
        return found


def redact_url(url: str) -> str:
    """A URL fit for logs: a run-from-package URL usually carries a SAS token in its query."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "<redacted>" if parts.query
                       else "", ""))


class _AllowLoopbackHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]  # any transport
    """Let the bearer policy send a token over plain HTTP to a loopback stand-in only.

    azure-core refuses tokens on non-TLS URLs; a local ARM stand-in speaks HTTP. The
    check is per request (LRO polling URLs come from the server), so a token never
    leaves the machine unencrypted.
    """

    def on_request(self, request: Any) -> None:
        if urlsplit(request.http_request.url).hostname in _LOOPBACK:
            request.context["enforce_https"] = False


class LocalStandInCredential:
    """The token for a local ARM stand-in (local mode, loopback endpoint only)."""

    TOKEN = "local-arm-stand-in"

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        return AccessToken(self.TOKEN, int(time.time()) + 3600)


def web_client_factory(credential: TokenCredential, *, endpoint: str,
                       poll_interval_s: float = 5.0, **client_kwargs: Any) -> ClientFactory:
    """Build ``WebSiteManagementClient``s for one ARM endpoint, one per subscription."""
    from azure.mgmt.web import WebSiteManagementClient

    base = endpoint.rstrip("/")
    # The token audience is the ARM endpoint itself (sovereign clouds differ).
    scope = f"{base}/.default"

    def make(subscription_id: str) -> WebSiteManagementClient:
        return WebSiteManagementClient(
            credential, subscription_id, base_url=base, credential_scopes=[scope],
            polling_interval=poll_interval_s, per_call_policies=[_AllowLoopbackHttp()],
            **client_kwargs)

    return make


class AppServiceDeployer:
    """The four deploy steps against one ARM endpoint."""

    def __init__(self, client_factory: ClientFactory, health: HealthPolicy | None = None,
                 *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client_factory = client_factory
        self._health = health or HealthPolicy()
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings,
                      credential: TokenCredential | None = None) -> AppServiceDeployer:
        """The deployer for ``settings``; the credential defaults to the process's shared
        ``DefaultAzureCredential``."""
        if settings.health_check_scheme not in ("https", "http"):
            raise SettingsError("CLOUDOPS_HEALTH_CHECK_SCHEME",
                                f"must be https or http, got {settings.health_check_scheme!r}")
        if credential is None and settings.mode == "local" and \
                urlsplit(settings.arm_endpoint).hostname in _LOOPBACK:
            # Offline, the ARM endpoint is a local stand-in: no Azure AD to ask.
            credential = LocalStandInCredential()
        if credential is None:
            from shared.azure_credential import azure_credential

            credential = azure_credential(settings)
        factory = web_client_factory(credential, endpoint=settings.arm_endpoint,
                                     poll_interval_s=settings.arm_poll_interval_ms / 1000)
        health = HealthPolicy(scheme=settings.health_check_scheme,
                              attempts=settings.health_check_attempts,
                              interval_s=settings.health_check_interval_ms / 1000)
        return cls(factory, health)

    # -- the four steps ---------------------------------------------------------------
    def set_version(self, target: SlotTarget, version: str, *,
                    package_url: str | None = None, image: str | None = None) -> dict[str, Any]:
        """Put ``version`` on the slot: image or package, and the version app setting.

        App settings are replaced as a whole by ARM, so they are listed and merged: every
        existing setting is kept.
        """
        from azure.mgmt.web.models import SiteConfig, SiteConfigResource, StringDictionary

        rg, site, slot = target.resource_group, target.site, target.slot
        with self._client(target) as client:
            with _arm_call(f"list app settings of {site}/{slot}"):
                current = client.web_apps.list_application_settings_slot(rg, site, slot)
            settings = dict(current.properties or {})
            kept = len(settings.keys() - {VERSION_SETTING})
            if image:
                source = f"container image {image}"
                config = SiteConfigResource(properties=SiteConfig(
                    linux_fx_version=f"DOCKER|{image}"))
                with _arm_call(f"set the container image of {site}/{slot}"):
                    client.web_apps.update_configuration_slot(rg, site, slot, config)
            elif package_url:
                source = f"package {redact_url(package_url)}"
                settings[RUN_FROM_PACKAGE] = package_url
            else:
                source = "version setting only (no image or package given)"
            settings[VERSION_SETTING] = version
            with _arm_call(f"update app settings of {site}/{slot}"):
                client.web_apps.update_application_settings_slot(
                    rg, site, slot, StringDictionary(properties=settings))
        line = f"slot {slot} of {site}: version {version} from {source} ({kept} settings kept)"
        return {"slot": slot, "version": version, "source": source, "settingsKept": kept,
                "log": [line]}

    def restart_site(self, target: SlotTarget) -> dict[str, Any]:
        """Restart the site itself (production), as the portal's Restart does."""
        rg, site = target.resource_group, target.site
        with self._client(target) as client, _arm_call(f"restart {site}"):
            client.web_apps.restart(rg, site)
        return {"slot": PRODUCTION, "restarted": True, "log": [f"site {site} restarted"]}

    def restart_slot(self, target: SlotTarget) -> dict[str, Any]:
        rg, site, slot = target.resource_group, target.site, target.slot
        with self._client(target) as client, _arm_call(f"restart {site}/{slot}"):
            client.web_apps.restart_slot(rg, site, slot)
        return {"slot": slot, "restarted": True, "log": [f"slot {slot} of {site} restarted"]}

    def health_check(self, target: SlotTarget, where: str) -> dict[str, Any]:
        """GET the health path on the slot's or production's host, with retries.

        Unhealthy is an answer (``healthy: False`` with a detail), not an exception, so the
        orchestration decides what to do; only ARM failures raise.
        """
        if where not in ("slot", PRODUCTION):
            raise AppServiceError(f"health check 'where' must be slot or production, got {where!r}")
        rg, site = target.resource_group, target.site
        label = f"slot {target.slot}" if where == "slot" else PRODUCTION
        with self._client(target) as client, _arm_call(f"read the host name of {site} {label}"):
            found = (client.web_apps.get_slot(rg, site, target.slot) if where == "slot"
                     else client.web_apps.get(rg, site))
        host = found.properties.default_host_name if found.properties else None
        if not host:
            detail = f"{label} of {site} has no default host name (stopped or not provisioned?)"
            return {"healthy": False, "where": where, "url": None, "detail": detail,
                    "log": [f"health check of {label}: {detail}"]}
        url = f"{self._health.scheme}://{host}{target.health_path}"
        healthy, detail = self._probe(url)
        return {"healthy": healthy, "where": where, "url": url, "detail": detail,
                "log": [f"health check of {label} ({url}): "
                        f"{'healthy' if healthy else 'unhealthy'}, {detail}"]}

    def swap(self, target: SlotTarget, *,
             expect_production: str | None = None) -> dict[str, Any]:
        """Swap the slot with production and wait for the long-running operation.

        Swapping is a toggle, so a blind retry would undo it. ``expect_production`` makes a
        retry safe: when production already serves that version, nothing is swapped.
        """
        from azure.mgmt.web.models import CsmSlotEntity

        rg, site, slot = target.resource_group, target.site, target.slot
        with self._client(target) as client:
            if expect_production is not None and \
                    self._version(client, target, PRODUCTION) == expect_production:
                line = f"production of {site} already serves {expect_production}; not swapped"
                return {"swapped": False, "production": expect_production, "log": [line]}
            with _arm_call(f"swap {site}/{slot} into production"):
                poller = client.web_apps.begin_swap_slot(
                    rg, site, slot, CsmSlotEntity(target_slot=PRODUCTION, preserve_vnet=True))
                poller.result()
            production = self._version(client, target, PRODUCTION)
            staged = self._version(client, target, slot)
        unknown = "an unknown version"
        line = (f"swapped {slot} into production of {site}: production serves "
                f"{production or unknown}, {slot} serves {staged or unknown}")
        return {"swapped": True, "production": production, "slot": staged, "log": [line]}

    # -- helpers -----------------------------------------------------------------------
    # -- a sandbox's own slot --------------------------------------------------------------
    def create_slot(self, target: SlotTarget) -> dict[str, Any]:
        """Create the deployment slot ``target.slot`` on the site (a sandbox's own), in the
        site's location and plan; creating an existing slot again is a no-op update."""
        from azure.mgmt.web.models import Site

        rg, site, slot = target.resource_group, target.site, target.slot
        with self._client(target) as client:
            with _arm_call(f"read site {site}"):
                parent = client.web_apps.get(rg, site)
            with _arm_call(f"create slot {slot} on {site}"):
                client.web_apps.begin_create_or_update_slot(
                    rg, site, slot, Site(location=parent.location,  # type: ignore[call-overload]  # flattened kwarg
                                         server_farm_id=parent.server_farm_id)).result()
        return {"slot": slot, "created": True, "log": [f"slot {slot} created on {site}"]}

    def delete_slot(self, target: SlotTarget) -> dict[str, Any]:
        """Delete the deployment slot ``target.slot``; one already gone is not an error."""
        from azure.core.exceptions import ResourceNotFoundError

        rg, site, slot = target.resource_group, target.site, target.slot
        with self._client(target) as client, _arm_call(f"delete slot {slot} of {site}"):
            try:
                client.web_apps.delete_slot(rg, site, slot, delete_empty_server_farm=False)
            except ResourceNotFoundError:
                return {"slot": slot, "deleted": False,
                        "log": [f"slot {slot} of {site} was already gone"]}
        return {"slot": slot, "deleted": True, "log": [f"slot {slot} of {site} deleted"]}

    @contextlib.contextmanager
    def _client(self, target: SlotTarget) -> Iterator[WebSiteManagementClient]:
        client = self._client_factory(str(target.subscription_id))
        with client:
            yield client

    @staticmethod
    def _version(client: WebSiteManagementClient, target: SlotTarget,
                 slot: str) -> str | None:
        """The ``CLOUDOPS_VERSION`` app setting of a slot (or production)."""
        rg, site = target.resource_group, target.site
        with _arm_call(f"list app settings of {site}/{slot}"):
            found = (client.web_apps.list_application_settings(rg, site) if slot == PRODUCTION
                     else client.web_apps.list_application_settings_slot(rg, site, slot))
        return (found.properties or {}).get(VERSION_SETTING)

    def _probe(self, url: str) -> tuple[bool, str]:
        attempts = max(1, self._health.attempts)
        interval = self._health.interval_s
        detail = "not checked"
        # Linear backoff: a restarting app needs more time the longer it is down.
        for attempt in Retrying(stop=stop_after_attempt(attempts),
                                wait=wait_incrementing(start=interval, increment=interval),
                                retry=retry_if_result(lambda healthy: not healthy),
                                retry_error_callback=lambda state: False, sleep=self._sleep):
            with attempt:
                status, detail = _get_status(url, self._health.timeout_s)
            healthy = status is not None and 200 <= status < 300
            attempt.retry_state.set_result(healthy)
            if healthy:
                number = attempt.retry_state.attempt_number
                return True, f"HTTP {status} on attempt {number} of {attempts}"
        return False, f"{detail} after {attempts} attempts"


def _get_status(url: str, timeout_s: float) -> tuple[int | None, str]:
    try:
        response = session().get(url, timeout=timeout_s, allow_redirects=True,
                                 headers={"User-Agent": "cloudops-health-check"})
    except RequestException as exc:
        return None, f"no response ({_reason(exc)})"
    response.close()
    return response.status_code, f"HTTP {response.status_code}"


def _reason(exc: BaseException) -> BaseException | str:
    """What went wrong under requests' wrapping (e.g. the refused connection)."""
    while True:
        inner = getattr(exc, "reason", None) or (exc.args[0] if exc.args else None)
        if not isinstance(inner, BaseException) or inner is exc:
            return exc
        exc = inner


@contextlib.contextmanager
def _arm_call(action: str) -> Iterator[None]:
    """Translate azure-core errors into one clear ``AppServiceError`` for ``action``."""
    try:
        yield
    except HttpResponseError as exc:
        raise AppServiceError(f"{action} failed: {describe_arm_error(exc)}") from None
    except ServiceRequestError as exc:
        raise AppServiceError(f"{action} failed: could not reach ARM ({exc.message})") from None
    except AzureError as exc:  # e.g. the credential could not get a token
        raise AppServiceError(f"{action} failed: {type(exc).__name__}: {exc.message}") from None


def describe_arm_error(exc: HttpResponseError) -> str:
    """``HTTP 403 AuthorizationFailed: <ARM's message>`` from an ARM error response."""
    status = exc.status_code
    code = message = None
    error = getattr(exc, "error", None)
    if error is not None:
        code, message = getattr(error, "code", None), getattr(error, "message", None)
    if not code and exc.response is not None:
        code, message = _error_from_body(exc.response)
    if status is None:  # raised before any response, e.g. by the credential
        return f"{type(exc).__name__}: {exc.message}"
    text = f"HTTP {status}"
    if code:
        text += f" {code}"
    if message:
        text += f": {message}"
    elif exc.reason:
        text += f" ({exc.reason})"
    return text[:2000]


def _error_from_body(response: Any) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except Exception:  # not JSON: ARM gateways answer some failures with HTML
        return None, None
    error = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return None, None
    return error.get("code"), error.get("message")

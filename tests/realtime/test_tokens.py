"""The emulation's token check refuses what Azure SignalR Service (and PyJWT, which it
used before) refuses: a wrong key or kid, another algorithm, no or a past expiry, a token
not yet valid, a malformed token, another URL; and accepts server tokens signed with a key
fetched for a kid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from localhost.signalr import tokens

KEY = "k" * 40
AUD = "http://h:1/signalr/api/v1/hubs/cloudops/groups/task%3A1"
# The parametrized tokens are built at collection, minutes before a long suite reaches them:
# their times are far enough off that they still mean the same when the test runs.
LATER = int(time.time()) + 365 * 86_400
NOT_YET = int(time.time()) + 30 * 86_400


def _token(claims: dict[str, object], key: str = KEY, **headers: object) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=headers or None)


def _part(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _unsigned(header: dict[str, object], claims: object) -> str:
    return f"{_part(header)}.{_part(claims)}."


def _signed(header: dict[str, object], claims: object) -> str:
    body = f"{_part(header)}.{_part(claims)}"
    mac = hmac.new(KEY.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_a_valid_server_token_is_accepted_with_its_user() -> None:
    now = int(time.time())
    claims = tokens.verify(_token({"aud": AUD, "exp": now + 60, "iat": now, "nameid": "u"}),
                           KEY, AUD + "/")
    assert claims.user_id == "u" and claims.expires_at == now + 60


def test_a_token_signed_with_a_kid_key_is_accepted_and_a_wrong_kid_refused() -> None:
    ring = tokens.KeyRing(KEY)
    kid, key = ring.issue()
    good = _token({"aud": AUD, "exp": int(time.time()) + 60}, key, kid=kid)
    assert tokens.verify(good, ring, AUD).user_id is None
    bad = _token({"aud": AUD, "exp": int(time.time()) + 60}, key, kid="someone-else")
    with pytest.raises(tokens.TokenError, match="InvalidSignatureError"):
        tokens.verify(bad, ring, AUD)


@pytest.mark.parametrize(("token", "reason"), [
    (_token({"aud": AUD, "exp": LATER}, "x" * 40), "InvalidSignatureError"),
    (_unsigned({"alg": "none", "typ": "JWT"}, {"aud": AUD, "exp": LATER}),
     "InvalidAlgorithmError"),
    (jwt.encode({"aud": AUD, "exp": LATER}, KEY * 2, algorithm="HS512"),
     "InvalidAlgorithmError"),
    (_token({"aud": AUD}), "MissingRequiredClaimError"),
    (_token({"aud": AUD, "exp": "soon"}), "DecodeError"),
    (_token({"aud": AUD, "exp": LATER, "nbf": NOT_YET}),
     "ImmatureSignatureError"),
    (_token({"aud": AUD, "exp": LATER, "iat": NOT_YET}),
     "ImmatureSignatureError"),
    (_token({"aud": AUD, "exp": LATER, "iat": "now"}),
     "InvalidIssuedAtError"),
    (_signed({"alg": "HS256", "kid": 7}, {"aud": AUD, "exp": LATER}),
     "InvalidTokenError"),
    ("not-a-token", "DecodeError"),
    ("a.b", "DecodeError"),
    (_unsigned({"alg": "HS256"}, {"aud": AUD, "exp": LATER}),
     "InvalidSignatureError"),
    (_signed({"alg": "HS256"}, ["not", "an", "object"]), "DecodeError"),
    (_signed(["not", "an", "object"], {"aud": AUD}), "DecodeError"),
])
def test_bad_tokens_are_refused_naming_why(token: str, reason: str) -> None:
    with pytest.raises(tokens.TokenError, match=reason):
        tokens.verify(token, KEY, AUD)


def test_an_expired_token_is_refused_beyond_the_leeway_only() -> None:
    now = int(time.time())
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(_token({"aud": AUD, "exp": now - 60}), KEY, AUD)
    assert tokens.verify(_token({"aud": AUD, "exp": now + 2}), KEY, AUD)


def test_a_token_for_another_url_or_without_a_token_is_refused() -> None:
    token = _token({"aud": AUD, "exp": int(time.time()) + 60})
    with pytest.raises(tokens.TokenError, match="audience"):
        tokens.verify(token, KEY, AUD.replace("task%3A1", "task%3A2"))
    with pytest.raises(tokens.TokenError, match="no access token"):
        tokens.verify("", KEY, AUD)


def test_a_token_verified_before_is_refused_once_it_expires(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    token = _token({"aud": AUD, "exp": now + 30})
    assert tokens.verify(token, KEY, AUD).expires_at == now + 30
    assert tokens.verify(token, KEY, AUD)  # again: from the cache
    monkeypatch.setattr(tokens.time, "time", lambda: now + 30 + tokens.LEEWAY_SECONDS + 1)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(token, KEY, AUD)


def test_a_token_verified_before_is_still_refused_for_another_url_or_key() -> None:
    token = _token({"aud": AUD, "exp": int(time.time()) + 60})
    assert tokens.verify(token, KEY, AUD)
    with pytest.raises(tokens.TokenError, match="audience"):
        tokens.verify(token, KEY, AUD.replace("task%3A1", "task%3A2"))
    with pytest.raises(tokens.TokenError, match="InvalidSignatureError"):
        tokens.verify(token, "y" * 40, AUD)

"""Access tokens (sync_server.tokens) and server credentials (sync_server.credentials)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from sync_generated.errors import (
    AccessError,
    InvalidTokenError,
    SyncError,
    TokenExpiredError,
    TokenGrantsError,
    TokenIssuerError,
    TokenNotYetValidError,
    TokenSignatureError,
)
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import SyncGrant

from sync_server.credentials import Credentials, describe, load_credentials, redact_url
from sync_server.tokens import TokenClaims, mint_token, verify_token

ACCOUNT = "AC" + "1" * 32
OTHER_ACCOUNT = "AC" + "2" * 32
KEY = "SK" + "a" * 32
OTHER_KEY = "SK" + "b" * 32
SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-abcd"  # 32 chars
OTHER_SECRET = "another-secret-another-secret-xy"
SERVICE = "IS" + "c" * 32
KEYS = {KEY: SECRET}
NOW = 1_700_000_000.0
_HS256_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode()
_NO_ALG_HEADER = base64.urlsafe_b64encode(b'{"typ":"JWT"}').rstrip(b"=").decode()


def _mint(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "api_key_sid": KEY,
        "api_secret": SECRET,
        "service_sid": SERVICE,
        "identity": "alice",
        "ttl": 600,
        "now": NOW,
    }
    args.update(overrides)
    return mint_token(**args)


def _verify(token: Any, **overrides: Any) -> TokenClaims:
    args: dict[str, Any] = {"keys": KEYS, "account_sid": ACCOUNT, "now": NOW + 1}
    args.update(overrides)
    return verify_token(token, **args)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(
    payload: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    secret: str = SECRET,
) -> str:
    """A token signed with `secret` (HS256) whatever header/payload it has."""
    if header is None:
        header = {"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def _claims(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "jti": f"{KEY}-{int(NOW)}",
        "iss": KEY,
        "sub": ACCOUNT,
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        "grants": {"identity": "alice", "data_sync": {"service_sid": SERVICE}},
    }
    for name, value in overrides.items():
        if value is _DROP:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


_DROP = object()


@contextmanager
def _raises(cls: type[SyncError], code: int, *fragments: str) -> Iterator[None]:
    """Expect `cls` with `code`, HTTP 401 and every fragment in its message."""
    with pytest.raises(cls) as info:
        yield
    err = info.value
    assert err.code == code, (err.code, err.message)
    assert err.status == 401
    assert isinstance(err, AccessError)
    for fragment in fragments:
        assert fragment in err.message, (fragment, err.message)


# -- minting --------------------------------------------------------------------------


def test_mint_shape_matches_twilio() -> None:
    token = _mint()
    header = pyjwt.get_unverified_header(token)
    assert header == {"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}
    payload = pyjwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert payload == {
        "jti": f"{KEY}-{int(NOW)}",
        "iss": KEY,
        "sub": ACCOUNT,
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        "grants": {"identity": "alice", "data_sync": {"service_sid": SERVICE}},
    }


def test_mint_nbf_only_when_given() -> None:
    with_nbf = _mint(nbf=int(NOW) - 5)
    payload = pyjwt.decode(with_nbf, options={"verify_signature": False})
    assert payload["nbf"] == int(NOW) - 5
    assert _verify(with_nbf).identity == "alice"


def test_mint_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="identity"):
        _mint(identity="")
    with pytest.raises(ValueError, match="ttl"):
        _mint(ttl=0)


def test_mint_defaults_to_current_time() -> None:
    token = _mint(now=None)
    claims = verify_token(token, keys=KEYS, account_sid=ACCOUNT)
    assert abs(claims.issued_at - time.time()) < 5
    assert claims.expires_at == claims.issued_at + 600


# -- round trip -----------------------------------------------------------------------


def test_round_trip() -> None:
    claims = _verify(_mint())
    assert claims == TokenClaims(
        identity="alice",
        account_sid=ACCOUNT,
        api_key_sid=KEY,
        service_sid=SERVICE,
        expires_at=NOW + 600,
        issued_at=NOW,
    )


def test_round_trip_with_several_keys() -> None:
    token = _mint(api_key_sid=OTHER_KEY, api_secret=OTHER_SECRET)
    claims = _verify(token, keys={KEY: SECRET, OTHER_KEY: OTHER_SECRET})
    assert claims.api_key_sid == OTHER_KEY


def test_surrounding_whitespace_is_ignored() -> None:
    assert _verify(f"  {_mint()}\n").identity == "alice"


def test_token_from_official_twilio_library() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="alice", ttl=600)
    token.add_grant(SyncGrant(service_sid=SERVICE))
    jwt_text = token.to_jwt()
    before = time.time()
    claims = verify_token(jwt_text, keys=KEYS, account_sid=ACCOUNT)
    assert claims.identity == "alice"
    assert claims.service_sid == SERVICE
    assert claims.account_sid == ACCOUNT
    assert claims.api_key_sid == KEY
    # Twilio sets nbf (not iat) to the minting time; issued_at falls back to it.
    assert abs(claims.issued_at - before) < 5
    assert abs(claims.expires_at - (claims.issued_at + 600)) < 2


def test_token_from_twilio_library_with_wrong_secret() -> None:
    token = AccessToken(ACCOUNT, KEY, OTHER_SECRET, identity="alice", ttl=600)
    token.add_grant(SyncGrant(service_sid=SERVICE))
    with _raises(TokenSignatureError, 20107, KEY):
        verify_token(token.to_jwt(), keys=KEYS, account_sid=ACCOUNT)


def test_token_from_twilio_library_without_identity() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, ttl=600)
    token.add_grant(SyncGrant(service_sid=SERVICE))
    with _raises(TokenGrantsError, 20106, "grants.identity"):
        verify_token(token.to_jwt(), keys=KEYS, account_sid=ACCOUNT)


def test_token_from_twilio_library_without_sync_grant() -> None:
    token = AccessToken(ACCOUNT, KEY, SECRET, identity="alice", ttl=600)
    with _raises(TokenGrantsError, 20106, "grants.data_sync"):
        verify_token(token.to_jwt(), keys=KEYS, account_sid=ACCOUNT)


# -- malformed (20101) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "expected 3 dot-separated base64url segments, got 1"),
        ("a.b", "expected 3 dot-separated base64url segments, got 2"),
        ("a.b.c.d", "expected 3 dot-separated base64url segments, got 4"),
        ("a.b.c", "header segment is not valid base64url"),
        (".eyJ9.c2ln", "header segment is empty"),
        ("e30..c2ln", "payload segment is empty"),
        ("e30.e3+9.c2ln", "payload segment is not base64url"),
        ("e30.e30.c2l=", "signature segment is not base64url"),
        ("c29tZSBnYXJiYWdl.bW9yZSBnYXJiYWdl.c2ln", "header is not JSON"),
        (f"{_b64(b'[1,2]')}.e30.c2ln", "header must be a JSON object, got list"),
        (f"{_HS256_HEADER}.{_b64(b'nope')}.c2ln", "payload is not JSON"),
        (f"{_HS256_HEADER}.{_b64(b'42')}.c2ln", "payload must be a JSON object"),
        (f"{_NO_ALG_HEADER}.e30.c2ln", "header has no 'alg'"),
        (_b64(os.urandom(48)), "got 1"),
    ],
)
def test_malformed(token: str, reason: str) -> None:
    with _raises(InvalidTokenError, 20101, reason):
        _verify(token)


def test_random_base64_garbage_in_three_segments() -> None:
    garbage = ".".join(_b64(os.urandom(n)) for n in (30, 60, 32))
    with _raises(InvalidTokenError, 20101, "Access token is malformed"):
        _verify(garbage)


def test_not_a_string() -> None:
    with _raises(InvalidTokenError, 20101, "expected a string, got bytes"):
        _verify(_mint().encode())
    with _raises(InvalidTokenError, 20101, "expected a string, got NoneType"):
        _verify(None)


def test_bearer_prefix_hint() -> None:
    with _raises(InvalidTokenError, 20101, "Bearer"):
        _verify(f"Bearer {_mint()}")


def test_alg_none() -> None:
    header = _b64(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with _raises(InvalidTokenError, 20101, "unsupported alg 'none'; expected HS256"):
        _verify(f"{header}.{payload}.")


def test_alg_none_made_by_pyjwt() -> None:
    token = pyjwt.encode(_claims(), None, algorithm="none")
    with _raises(InvalidTokenError, 20101, "unsupported alg 'none'"):
        _verify(token)


def test_alg_hs512_rejected_even_if_correctly_signed() -> None:
    token = pyjwt.encode(_claims(), SECRET * 2, algorithm="HS512")
    with _raises(InvalidTokenError, 20101, "unsupported alg 'HS512'; expected HS256"):
        _verify(token, keys={KEY: SECRET * 2})


def test_wrong_content_type() -> None:
    token = _forge(_claims(), header={"typ": "JWT", "alg": "HS256", "cty": "twilio-pat;v=2"})
    with _raises(InvalidTokenError, 20101, "twilio-pat;v=2", "twilio-fpa;v=1"):
        _verify(token)


def test_missing_content_type_is_accepted() -> None:
    token = _forge(_claims(), header={"typ": "JWT", "alg": "HS256"})
    assert _verify(token).identity == "alice"


# -- issuer / subject (20103) -------------------------------------------------------------


def test_unknown_api_key() -> None:
    token = _mint(api_key_sid=OTHER_KEY)
    with _raises(TokenIssuerError, 20103, OTHER_KEY, "does not know"):
        _verify(token)


def test_missing_iss() -> None:
    with _raises(TokenIssuerError, 20103, "no 'iss' claim"):
        _verify(_forge(_claims(iss=_DROP)))


def test_non_string_iss() -> None:
    with _raises(TokenIssuerError, 20103, "'iss' claim must be"):
        _verify(_forge(_claims(iss=123)))


def test_wrong_account() -> None:
    token = _mint(account_sid=OTHER_ACCOUNT)
    with _raises(
        TokenIssuerError,
        20103,
        f"token is for account {OTHER_ACCOUNT}, this server serves {ACCOUNT}",
    ):
        _verify(token)


def test_missing_sub() -> None:
    with _raises(TokenIssuerError, 20103, "no 'sub' claim", ACCOUNT):
        _verify(_forge(_claims(sub=_DROP)))


# -- signature (20107) ------------------------------------------------------------------


def test_wrong_secret() -> None:
    token = _mint(api_secret=OTHER_SECRET)
    with _raises(TokenSignatureError, 20107, "signature does not match", KEY):
        _verify(token)


def test_tampered_payload() -> None:
    header, _, sig = _mint().split(".")
    payload = _b64(json.dumps(_claims(grants={"identity": "mallory"})).encode())
    with _raises(TokenSignatureError, 20107, "signature"):
        _verify(f"{header}.{payload}.{sig}")


def test_empty_signature() -> None:
    header, payload, _ = _mint().split(".")
    with _raises(TokenSignatureError, 20107, "no signature"):
        _verify(f"{header}.{payload}.")


@pytest.mark.parametrize(
    "claims",
    [
        _claims(sub=OTHER_ACCOUNT),
        _claims(exp=int(NOW) - 1000),
        _claims(exp=_DROP),
        _claims(nbf=int(NOW) + 1000),
        _claims(grants=_DROP),
        _claims(grants={"identity": "alice"}),
    ],
)
def test_bad_signature_is_reported_before_claim_errors(claims: dict[str, Any]) -> None:
    with _raises(TokenSignatureError, 20107):
        _verify(_forge(claims, secret=OTHER_SECRET))


# -- expiry (20104) / not before (20105) ------------------------------------------------


def test_expired_token() -> None:
    token = _mint()
    with _raises(TokenExpiredError, 20104, "expired 1h 10s ago", "2023-11-14T22:23:20Z"):
        _verify(token, now=NOW + 600 + 3610)


def test_expired_exactly_at_exp() -> None:
    with _raises(TokenExpiredError, 20104, "expired 0s ago"):
        _verify(_mint(), now=NOW + 600)


def test_leeway_tolerates_skew() -> None:
    token = _mint()
    assert _verify(token, now=NOW + 610, leeway=30).identity == "alice"
    with _raises(TokenExpiredError, 20104, "expired"):
        _verify(token, now=NOW + 610, leeway=5)


def test_missing_exp() -> None:
    with _raises(TokenExpiredError, 20104, "no 'exp'"):
        _verify(_forge(_claims(exp=_DROP)))


@pytest.mark.parametrize("exp", ["tomorrow", None, True, [1]])
def test_invalid_exp(exp: Any) -> None:
    with _raises(TokenExpiredError, 20104, "'exp' is invalid"):
        _verify(_forge(_claims(exp=exp)))


def test_not_yet_valid() -> None:
    token = _forge(_claims(nbf=int(NOW) + 120))
    with _raises(TokenNotYetValidError, 20105, "not valid for another 2m", "nbf"):
        _verify(token, now=NOW)
    assert _verify(token, now=NOW, leeway=120).identity == "alice"


def test_invalid_nbf() -> None:
    with _raises(TokenNotYetValidError, 20105, "'nbf' is invalid"):
        _verify(_forge(_claims(nbf="soon")))


# -- grants (20106) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "reason"),
    [
        (_DROP, "no 'grants' claim"),
        ("everything", "'grants' claim must be an object"),
        ({"data_sync": {"service_sid": SERVICE}}, "no identity grant (grants.identity)"),
        ({"identity": "", "data_sync": {"service_sid": SERVICE}}, "grants.identity) must be"),
        ({"identity": 7, "data_sync": {"service_sid": SERVICE}}, "grants.identity) must be"),
        ({"identity": "alice"}, "no Sync grant (grants.data_sync)"),
        ({"identity": "alice", "data_sync": "yes"}, "grants.data_sync) must be an object"),
        ({"identity": "alice", "data_sync": {}}, "grants.data_sync.service_sid"),
        (
            {"identity": "alice", "data_sync": {"service_sid": ""}},
            "grants.data_sync.service_sid) must be",
        ),
        # A service's unique name is not enough (it would open a shadow set of objects).
        (
            {"identity": "alice", "data_sync": {"service_sid": "shared"}},
            "must be a service SID (IS and 32 hex digits), not a name",
        ),
        (
            {"identity": "alice", "data_sync": {"service_sid": SERVICE.upper()}},
            "must be a service SID",
        ),
    ],
)
def test_bad_grants(grants: Any, reason: str) -> None:
    with _raises(TokenGrantsError, 20106, reason):
        _verify(_forge(_claims(grants=grants)))


# -- credentials ------------------------------------------------------------------------


def test_dev_set_generated_once_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_credentials(data_dir, env={})
    assert first.generated is True
    assert first.account_sid.startswith("AC") and len(first.account_sid) == 34
    assert first.api_key_sid.startswith("SK") and len(first.api_key_sid) == 34
    assert first.service_sid.startswith("IS") and len(first.service_sid) == 34
    assert len(first.api_secret) == 32
    assert len(first.auth_token) == 32 and int(first.auth_token, 16) >= 0
    path = data_dir / "credentials.json"
    assert path.exists()
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_credentials(data_dir, env={})
    assert second == first
    assert (second.api_secret, second.auth_token) == (first.api_secret, first.auth_token)
    # A different data dir gets a different set.
    other = load_credentials(tmp_path / "other", env={})
    assert other.account_sid != first.account_sid


def test_dev_set_tokens_verify(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path, env={})
    token = mint_token(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret=creds.api_secret,
        service_sid=creds.service_sid,
        identity="bob",
    )
    claims = verify_token(
        token, keys={creds.api_key_sid: creds.api_secret}, account_sid=creds.account_sid
    )
    assert (claims.identity, claims.service_sid) == ("bob", creds.service_sid)


def test_env_credentials(tmp_path: Path) -> None:
    env = {
        "SYNC_ACCOUNT_SID": ACCOUNT,
        "SYNC_API_KEY": KEY,
        "SYNC_API_SECRET": SECRET,
        "SYNC_AUTH_TOKEN": "tok",
        "SYNC_SERVICE_SID": SERVICE,
    }
    creds = load_credentials(tmp_path, env=env)
    assert creds == Credentials(
        account_sid=ACCOUNT,
        auth_token="tok",
        api_key_sid=KEY,
        api_secret=SECRET,
        service_sid=SERVICE,
        generated=False,
    )
    assert not (tmp_path / "credentials.json").exists()


def test_explicit_args_beat_env(tmp_path: Path) -> None:
    env = {"SYNC_ACCOUNT_SID": ACCOUNT, "SYNC_API_KEY": KEY, "SYNC_API_SECRET": SECRET}
    creds = load_credentials(
        tmp_path,
        account_sid=OTHER_ACCOUNT,
        api_key=OTHER_KEY,
        api_secret=OTHER_SECRET,
        env=env,
    )
    assert (creds.account_sid, creds.api_key_sid, creds.api_secret) == (
        OTHER_ACCOUNT,
        OTHER_KEY,
        OTHER_SECRET,
    )
    assert creds.generated is False


def test_env_beats_stored_dev_set(tmp_path: Path) -> None:
    dev = load_credentials(tmp_path, env={})
    env = {"SYNC_ACCOUNT_SID": ACCOUNT, "SYNC_API_KEY": KEY, "SYNC_API_SECRET": SECRET}
    creds = load_credentials(tmp_path, env=env)
    assert creds.account_sid == ACCOUNT and creds.account_sid != dev.account_sid
    assert creds.generated is False
    # Explicit credentials without an auth token: Basic auth with the auth token is off.
    assert creds.auth_token == ""
    # The service SID is shared with the stored one.
    assert creds.service_sid == dev.service_sid


def test_explicit_creds_service_sid_generated_and_stored(tmp_path: Path) -> None:
    args = {"account_sid": ACCOUNT, "api_key": KEY, "api_secret": SECRET}
    first = load_credentials(tmp_path, env={}, **args)
    second = load_credentials(tmp_path, env={}, **args)
    assert first.service_sid.startswith("IS")
    assert first.service_sid == second.service_sid
    stored = json.loads((tmp_path / "credentials.json").read_text())
    assert stored == {"service_sid": first.service_sid}  # no secrets written
    # Later falling back to a dev set keeps that service SID.
    assert load_credentials(tmp_path, env={}).service_sid == first.service_sid


def test_service_sid_from_env_overrides_dev_set(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path, env={"SYNC_SERVICE_SID": SERVICE})
    assert creds.generated is True
    assert creds.service_sid == SERVICE


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        ({"account_sid": ACCOUNT}, ["API key (SYNC_API_KEY)", "API secret (SYNC_API_SECRET)"]),
        ({"account_sid": ACCOUNT, "api_key": KEY}, ["API secret (SYNC_API_SECRET)"]),
        ({"api_secret": SECRET}, ["account SID (SYNC_ACCOUNT_SID)", "API key (SYNC_API_KEY)"]),
    ],
)
def test_partial_credentials(tmp_path: Path, args: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(ValueError, match="Incomplete credentials") as info:
        load_credentials(tmp_path, env={}, **args)
    for name in missing:
        assert name in str(info.value)
    assert not (tmp_path / "credentials.json").exists()


def test_partial_credentials_mixing_env_and_args(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"API secret \(SYNC_API_SECRET\)"):
        load_credentials(tmp_path, account_sid=ACCOUNT, env={"SYNC_API_KEY": KEY})


@pytest.mark.parametrize(
    ("args", "what"),
    [
        ({"account_sid": "AC123"}, "account SID"),
        ({"account_sid": "AC" + "A" * 32}, "account SID"),  # uppercase hex
        ({"account_sid": "SK" + "1" * 32}, "account SID"),
        ({"api_key": "AC" + "1" * 32}, "API key SID"),
        ({"api_key": "SK" + "g" * 32}, "API key SID"),
        ({"service_sid": "IS" + "1" * 31}, "service SID"),
    ],
)
def test_invalid_sid_format(tmp_path: Path, args: dict[str, str], what: str) -> None:
    full = {"account_sid": ACCOUNT, "api_key": KEY, "api_secret": SECRET, **args}
    with pytest.raises(ValueError, match=f"Invalid {what}") as info:
        load_credentials(tmp_path, env={}, **full)
    assert "32 lowercase hex" in str(info.value)


def test_invalid_sid_in_env(tmp_path: Path) -> None:
    env = {"SYNC_ACCOUNT_SID": "nope", "SYNC_API_KEY": KEY, "SYNC_API_SECRET": SECRET}
    with pytest.raises(ValueError, match="SYNC_ACCOUNT_SID"):
        load_credentials(tmp_path, env=env)


def test_corrupt_credentials_file(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_credentials(tmp_path, env={})


def test_describe(tmp_path: Path) -> None:
    dev = load_credentials(tmp_path, env={})
    text = describe(dev)
    for value in (dev.account_sid, dev.api_key_sid, dev.api_secret, dev.auth_token):
        assert value in text
    assert dev.service_sid in text
    assert "development" in text
    explicit = load_credentials(
        tmp_path, account_sid=ACCOUNT, api_key=KEY, api_secret=SECRET, env={}
    )
    text = describe(explicit)
    assert ACCOUNT in text and KEY in text
    assert "development" not in text
    assert SECRET not in text  # operator-given secrets are masked
    assert "disabled" in text  # no auth token


def test_credentials_repr_hides_secrets(tmp_path: Path) -> None:
    creds = load_credentials(tmp_path, env={})
    assert creds.api_secret not in repr(creds)
    assert creds.auth_token not in repr(creds)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://sync:s3cret@db:5432/sync", "postgresql://sync:***@db:5432/sync"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("postgresql://sync@db/sync", "postgresql://sync@db/sync"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _token_cli(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "sync_server", "token", "--identity", "alice", "--data-dir",
         str(data_dir), *flags],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip


def test_token_command_never_makes_up_credentials(tmp_path: Path) -> None:
    """A token minted from credentials made up on the spot would be refused by the running
    server: `sync-server token` refuses, names the way out, and creates nothing."""
    refused = _token_cli(tmp_path / "elsewhere")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "no credentials in" in refused.stderr and "--init" in refused.stderr
    assert not (tmp_path / "elsewhere").exists()
    made = _token_cli(tmp_path / "dev", "--init")
    creds = load_credentials(tmp_path / "dev", env={}, create=False)
    claims = verify_token(
        made.stdout.strip(),
        keys={creds.api_key_sid: creds.api_secret},
        account_sid=creds.account_sid,
    )
    assert (claims.identity, claims.service_sid) == ("alice", creds.service_sid)
    assert f"signed with API key {creds.api_key_sid}" in made.stderr
    again = _token_cli(tmp_path / "dev")  # the same set, found this time
    assert again.returncode == 0 and creds.service_sid in again.stderr

"""Twilio access tokens: minting and verification.

Tokens are JWTs signed with HS256, shaped exactly like the ones made by Twilio's helper
libraries (`twilio.jwt.access_token.AccessToken` with a `SyncGrant`)::

    header  {"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}
    claims  {"jti": "SK…-<iat>", "iss": "SK…", "sub": "AC…", "iat": …, "exp": …,
             "grants": {"identity": "alice", "data_sync": {"service_sid": "IS…"}}}

`verify_token` turns every way a token can be wrong into a typed error from
`sync_generated.errors` whose message says exactly what is wrong (Twilio's own answers
are famously opaque). The checks run in this order, so that a forged token learns
nothing about its claims before its signature has been checked:

1. structure (3 base64url segments, JSON header and payload), `alg`, `cty` -> 20101
2. `iss` present and a known API key SID (needed to find the secret)      -> 20103
3. signature                                                               -> 20107
4. `sub` is this server's account SID                                      -> 20103
5. `exp` present, numeric and in the future                                -> 20104
6. `nbf` (if present) not in the future                                    -> 20105
7. `grants.identity` and `grants.data_sync.service_sid`                    -> 20106

Note that Twilio's helper library sets `nbf` to the minting time and does not set
`iat`; both forms are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

# The generated package has no py.typed marker (yet); `unused-ignore` keeps this line
# clean once it does.
from sync_generated.errors import (  # type: ignore[import-untyped, unused-ignore]
    InvalidTokenError,
    TokenExpiredError,
    TokenGrantsError,
    TokenIssuerError,
    TokenNotYetValidError,
    TokenSignatureError,
)

__all__ = ["TOKEN_CONTENT_TYPE", "TokenClaims", "mint_token", "verify_token"]

TOKEN_CONTENT_TYPE = "twilio-fpa;v=1"
"""The `cty` header of a Twilio access token."""

_ALGORITHM = "HS256"
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]*")
_SERVICE_SID = re.compile(r"IS[0-9a-f]{32}")
_MALFORMED = "Access token is malformed"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified access token says. Times are Unix seconds."""

    identity: str
    account_sid: str
    api_key_sid: str
    service_sid: str
    expires_at: float
    issued_at: float


def mint_token(
    *,
    account_sid: str,
    api_key_sid: str,
    api_secret: str,
    service_sid: str,
    identity: str,
    ttl: int = 3600,
    now: float | None = None,
    nbf: int | None = None,
) -> str:
    """An access token for `identity` on the Sync service `service_sid`, valid for `ttl`
    seconds from `now` (default: the current time). `nbf`, if given, is written as the
    not-before claim (Twilio's helper library sets it to the minting time by default;
    this function leaves it out unless asked)."""
    if not identity:
        raise ValueError("identity must be a non-empty string")
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    if not api_secret:
        raise ValueError("api_secret must not be empty")
    iat = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "jti": f"{api_key_sid}-{iat}",
        "iss": api_key_sid,
        "sub": account_sid,
        "iat": iat,
        "exp": iat + int(ttl),
        "grants": {"identity": identity, "data_sync": {"service_sid": service_sid}},
    }
    if nbf is not None:
        claims["nbf"] = int(nbf)
    return jwt.encode(
        claims,
        api_secret,
        algorithm=_ALGORITHM,
        headers={"typ": "JWT", "cty": TOKEN_CONTENT_TYPE},
    )


def verify_token(
    token: str,
    *,
    keys: Mapping[str, str],
    account_sid: str,
    now: float | None = None,
    leeway: float = 0,
) -> TokenClaims:
    """Check `token` and return its claims.

    `keys` maps API key SID -> API secret; `account_sid` is the account this server
    serves; `leeway` (seconds) tolerates clock skew on `exp` and `nbf`. Raises
    InvalidTokenError (20101), TokenIssuerError (20103), TokenExpiredError (20104),
    TokenNotYetValidError (20105), TokenGrantsError (20106) or TokenSignatureError
    (20107), each with a message naming the precise problem."""
    current = time.time() if now is None else now

    # 1. Structure.
    header_seg, payload_seg, signature_seg = _split(token)
    header = _decode_json(header_seg, "header")
    payload = _decode_json(payload_seg, "payload")
    if "alg" not in header:
        raise InvalidTokenError(f"{_MALFORMED}: header has no 'alg'; expected {_ALGORITHM}")
    alg = header["alg"]
    if alg != _ALGORITHM:
        raise InvalidTokenError(
            f"Access token uses unsupported alg {_show(alg)}; expected {_ALGORITHM}"
        )
    if "cty" in header and header["cty"] != TOKEN_CONTENT_TYPE:
        raise InvalidTokenError(
            f"Access token has content type (cty) {_show(header['cty'])}; "
            f"expected {TOKEN_CONTENT_TYPE!r}"
        )
    signature = _b64decode(signature_seg)

    # 2. Issuer: the API key whose secret signed the token.
    iss = payload.get("iss")
    if iss is None:
        raise TokenIssuerError("Access token has no 'iss' claim (the API key SID that signed it)")
    if not isinstance(iss, str) or not iss:
        raise TokenIssuerError(
            f"Access token 'iss' claim must be an API key SID string, got {_show(iss)}"
        )
    secret = keys.get(iss)
    if secret is None:
        raise TokenIssuerError(
            f"Access token was issued by API key {iss}, which this server does not know"
        )

    # 3. Signature.
    if not signature:
        raise TokenSignatureError("Access token has no signature")
    signing_input = f"{header_seg}.{payload_seg}".encode("ascii")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenSignatureError(
            f"Access token signature does not match the secret of API key {iss}; "
            "was it signed with a different secret?"
        )

    # 4. Subject: the account.
    sub = payload.get("sub")
    if sub is None:
        raise TokenIssuerError(
            f"Access token has no 'sub' claim (account SID); this server serves {account_sid}"
        )
    if sub != account_sid:
        raise TokenIssuerError(
            f"Access token is for account {_show_sid(sub)}, this server serves {account_sid}"
        )

    # 5. Expiry.
    if "exp" not in payload:
        raise TokenExpiredError("Access token has no 'exp' (expiration time) claim")
    exp = _number(payload["exp"])
    if exp is None:
        raise TokenExpiredError(
            f"Access token expiration time 'exp' is invalid: {_show(payload['exp'])} "
            "is not a number of seconds since the epoch"
        )
    if exp <= current - leeway:
        raise TokenExpiredError(
            f"Access token expired {_duration(current - exp)} ago (exp {_iso(exp)})"
        )

    # 6. Not before.
    if "nbf" in payload:
        nbf = _number(payload["nbf"])
        if nbf is None:
            raise TokenNotYetValidError(
                f"Access token not-before time 'nbf' is invalid: {_show(payload['nbf'])} "
                "is not a number of seconds since the epoch"
            )
        if nbf > current + leeway:
            raise TokenNotYetValidError(
                f"Access token is not valid for another {_duration(nbf - current)} "
                f"(nbf {_iso(nbf)}); check the clock of the machine that minted it"
            )

    # 7. Grants.
    grants = payload.get("grants")
    if grants is None:
        raise TokenGrantsError("Access token has no 'grants' claim")
    if not isinstance(grants, dict):
        raise TokenGrantsError(
            f"Access token 'grants' claim must be an object, got {_show(grants)}"
        )
    identity = grants.get("identity")
    if identity is None:
        raise TokenGrantsError(
            "Access token has no identity grant (grants.identity); set an identity when minting it"
        )
    if not isinstance(identity, str) or not identity:
        raise TokenGrantsError(
            f"Access token identity grant (grants.identity) must be a non-empty string, "
            f"got {_show(identity)}"
        )
    data_sync = grants.get("data_sync")
    if data_sync is None:
        raise TokenGrantsError(
            "Access token has no Sync grant (grants.data_sync); add a SyncGrant when minting it"
        )
    if not isinstance(data_sync, dict):
        raise TokenGrantsError(
            f"Access token Sync grant (grants.data_sync) must be an object, got {_show(data_sync)}"
        )
    service_sid = data_sync.get("service_sid")
    if service_sid is None:
        raise TokenGrantsError(
            "Access token Sync grant has no service SID (grants.data_sync.service_sid)"
        )
    if not isinstance(service_sid, str) or not service_sid:
        raise TokenGrantsError(
            "Access token Sync grant service SID (grants.data_sync.service_sid) must be a "
            f"non-empty string, got {_show(service_sid)}"
        )
    if not _SERVICE_SID.fullmatch(service_sid):
        # A unique name would resolve to the service only by luck; Twilio requires the SID.
        raise TokenGrantsError(
            "Access token Sync grant service SID (grants.data_sync.service_sid) must be a "
            f"service SID (IS and 32 hex digits), not a name: got {_show(service_sid)}"
        )

    return TokenClaims(
        identity=identity,
        account_sid=sub,
        api_key_sid=iss,
        service_sid=service_sid,
        expires_at=exp,
        issued_at=_issued_at(payload, iss, current),
    )


# -- helpers ----------------------------------------------------------------------------


def _split(token: object) -> tuple[str, str, str]:
    if not isinstance(token, str):
        raise InvalidTokenError(f"{_MALFORMED}: expected a string, got {type(token).__name__}")
    token = token.strip()
    if not token:
        raise InvalidTokenError("Access token is empty")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError(
            f"{_MALFORMED}: expected 3 dot-separated base64url segments, got {len(parts)}"
        )
    names = ("header", "payload", "signature")
    for name, part in zip(names, parts, strict=True):
        if not _SEGMENT_RE.fullmatch(part):
            hint = ""
            if name == "header" and part.lower().startswith("bearer"):
                hint = " (remove the 'Bearer ' prefix)"
            raise InvalidTokenError(f"{_MALFORMED}: the {name} segment is not base64url{hint}")
        if not part and name != "signature":
            raise InvalidTokenError(f"{_MALFORMED}: the {name} segment is empty")
        if len(part) % 4 == 1:
            raise InvalidTokenError(
                f"{_MALFORMED}: the {name} segment is not valid base64url (bad length)"
            )
    return parts[0], parts[1], parts[2]


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - prevented by _split
        raise InvalidTokenError(f"{_MALFORMED}: invalid base64url ({exc})") from None


def _decode_json(segment: str, name: str) -> dict[str, Any]:
    raw = _b64decode(segment)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidTokenError(f"{_MALFORMED}: the {name} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidTokenError(
            f"{_MALFORMED}: the {name} must be a JSON object, got {type(value).__name__}"
        )
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _issued_at(payload: Mapping[str, Any], iss: str, fallback: float) -> float:
    """`iat`, else `nbf` (Twilio's helper library sets nbf = minting time and no iat),
    else the time in Twilio's `jti` ("SK…-<time>"), else `fallback`."""
    for claim in ("iat", "nbf"):
        value = _number(payload.get(claim))
        if value is not None:
            return value
    jti = payload.get("jti")
    if isinstance(jti, str) and jti.startswith(f"{iss}-"):
        suffix = jti[len(iss) + 1 :]
        if suffix.isdigit():
            return float(suffix)
    return fallback


def _duration(seconds: float) -> str:
    total = max(0, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _show_sid(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= 80 else _show(value)

"""Zero-trust identity as an alternative to API keys: bearer JWTs from an OIDC issuer or Cloudflare Access.

A token is accepted when its signature verifies against a key the issuer publishes (its JWKS), its
`iss` is the configured issuer, one of its `aud` values is a configured audience and it has not
expired. Its scopes come from one claim (`scope`, `groups`, `email`...) whose values are mapped to
`speak` and `manage`. The issuer's keys are fetched once, kept for an hour, and fetched again early
when a token names a key not seen yet (the issuer rotated), at most once per MIN_REFRESH_S so forged
key ids cannot make the server hammer the issuer. Tokens are secrets: they are never logged, and
error messages never quote them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from .auth import Scope, scopes_for
from .errors import IdentityUnavailable, Unauthorized
from .settings import Settings

log = logging.getLogger("voxclone.oidc")
# Public-key algorithms only, by key type: never `none`, never HMAC (a public key is no secret).
_ALGORITHMS = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
LEEWAY_S = 30  # clock skew allowed between the issuer and this server
JWKS_MAX_AGE_S = 3600.0
MIN_REFRESH_S = 30.0
FETCH_TIMEOUT_S = 5.0
ACCESS_CERTS_PATH = "/cdn-cgi/access/certs"  # Cloudflare Access publishes its keys here, not via discovery


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the first a JSON object (`eyJ`). API keys never are."""
    return token.startswith("eyJ") and token.count(".") == 2


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for: a stable, non-secret id (for rate limits) and its scopes."""

    id: str
    scopes: tuple[Scope, ...]


class TokenVerifier:
    """Verifies bearer JWTs against one issuer and maps them to scopes."""

    def __init__(
        self,
        issuer: str,
        audience: list[str],
        *,
        jwks_url: str | None = None,
        scope_claim: str = "scope",
        speak_values: list[str] | tuple[str, ...] = ("speak",),
        manage_values: list[str] | tuple[str, ...] = ("manage",),
        min_refresh_s: float = MIN_REFRESH_S,
        max_age_s: float = JWKS_MAX_AGE_S,
    ) -> None:
        self.issuer = issuer
        self.audience = list(audience)
        self.jwks_url = jwks_url or _default_jwks_url(issuer)
        self.scope_claim = scope_claim
        self.speak_values = frozenset(speak_values)
        self.manage_values = frozenset(manage_values)
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")  # last successful fetch
        self._attempted_at = -float("inf")  # last fetch tried, successful or not
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier | None:
        """The verifier the settings describe, or None when no issuer is configured."""
        if not settings.oidc_issuer:
            return None
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            scope_claim=settings.oidc_scope_claim,
            speak_values=settings.oidc_speak_values,
            manage_values=settings.oidc_manage_values,
        )

    async def identify(self, token: str) -> Identity:
        """The identity a token proves. Raises Unauthorized (bad token) or IdentityUnavailable (keys unreachable)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Unauthorized("the bearer token is not a well-formed JWT") from e
        key = await self._key(header.get("kid"))  # PyJWT has checked that a kid is a string
        algorithm = header.get("alg")
        if algorithm not in _ALGORITHMS.get(key.key_type or "", ()):
            raise Unauthorized(f"token algorithm {algorithm!r} is not accepted for this issuer's {key.key_type} keys")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized("the token has expired; sign in again") from e
        except jwt.InvalidAudienceError as e:
            raise Unauthorized("the token is for another application (its audience is not accepted here)") from e
        except jwt.InvalidIssuerError as e:
            raise Unauthorized("the token comes from another issuer") from e
        except jwt.PyJWTError as e:
            raise Unauthorized(f"the token is not valid: {type(e).__name__}") from e
        return Identity(self._identity_id(claims), self.scopes(claims))

    def scopes(self, claims: dict[str, Any]) -> tuple[Scope, ...]:
        """Scopes granted by the values of the configured claim."""
        values = _claim_values(claims.get(self.scope_claim))
        if "*" in self.manage_values or values & self.manage_values:
            return scopes_for("manage")
        if "*" in self.speak_values or values & self.speak_values:
            return scopes_for("speak")
        return ()

    @staticmethod
    def _identity_id(claims: dict[str, Any]) -> str:
        # Access service tokens carry `common_name` and an empty `sub`.
        who = claims.get("sub") or claims.get("email") or claims.get("common_name") or ""
        return "jwt:" + hashlib.sha256(f"{claims.get('iss')}\0{who}".encode()).hexdigest()[:16]

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > self.max_age_s
        if (stale or self._find(kid) is None) and now - self._attempted_at >= self.min_refresh_s:
            await self._refresh(self._attempted_at)
        if not self._keys:
            raise IdentityUnavailable(f"the signing keys of {self.issuer} cannot be fetched; see the server log")
        key = self._find(kid)
        if key is None:
            raise Unauthorized("the token is signed with a key this issuer does not publish")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        # An issuer with a single key may leave out the key id, on the token or in its JWKS.
        if len(self._keys) == 1 and (kid is None or None in self._keys):
            return next(iter(self._keys.values()))
        return None

    async def _refresh(self, seen: float) -> None:
        async with self._lock:
            if self._attempted_at != seen:
                return  # another request fetched while this one waited for the lock
            self._attempted_at = time.monotonic()
            try:
                keys = await self._fetch_keys()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as e:
                # Keys already held stay in use; the next attempt waits MIN_REFRESH_S.
                log.warning(
                    "cannot fetch the signing keys of %s from %s: %s", self.issuer, self.jwks_url or "discovery", e
                )
                return
            self._keys = {key.key_id: key for key in keys}
            self._fetched_at = time.monotonic()

    async def _fetch_keys(self) -> list[jwt.PyJWK]:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
            url = self.jwks_url
            if url is None:
                discovery = await _get_json(client, self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if discovery.get("issuer") != self.issuer or not isinstance(discovery.get("jwks_uri"), str):
                    raise ValueError("the discovery document names another issuer or no jwks_uri")
                url = self.jwks_url = discovery["jwks_uri"]
            return jwt.PyJWKSet.from_dict(await _get_json(client, url)).keys


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return body


def _claim_values(value: Any) -> set[str]:
    """A claim's values: a space-separated string (OAuth `scope`) or a list (`groups`, `roles`)."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


def _default_jwks_url(issuer: str) -> str | None:
    """Cloudflare Access's certs URL for an Access team domain; None means OpenID discovery."""
    host = urlsplit(issuer).hostname or ""
    return issuer.rstrip("/") + ACCESS_CERTS_PATH if host.endswith(".cloudflareaccess.com") else None

"""Zero-trust identity: bearer JWTs (OIDC) and Cloudflare Access assertions, verified against an issuer's
keys served over HTTP on loopback, as an alternative to API keys.
"""

from __future__ import annotations

import logging

import jwt
import pytest
from issuer import AUDIENCE, LoopbackIssuer, rsa_key
from reverse_proxy import free_port

from voxclone.errors import Unauthorized
from voxclone.oidc import TokenVerifier


@pytest.fixture
def issuer():
    with LoopbackIssuer() as running:
        yield running


@pytest.fixture
def oidc(settings, make_client, issuer):
    """A server that accepts the issuer's tokens (no API keys): `scope` speak/manage, as by default."""
    return make_client(settings.model_copy(update={"oidc_issuer": issuer.url, "oidc_audience": [AUDIENCE]}))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_from_the_issuer_is_accepted_and_its_scope_decides(oidc, issuer):
    speak = issuer.token(scope="openid speak")
    assert oidc.get("/v1/voices", headers=_bearer(speak)).status_code == 200
    denied = oidc.delete("/v1/voices/jf_alpha", headers=_bearer(speak))
    assert denied.status_code == 403 and "manage" in denied.json()["detail"]["message"]
    manage = issuer.token(scope="manage", sub="admin")
    assert oidc.delete("/v1/voices/jf_alpha", headers=_bearer(manage)).status_code == 200


def test_tokens_turn_authentication_on(oidc):
    refused = oidc.get("/v1/voices")
    assert refused.status_code == 401
    assert "token from" in refused.json()["detail"]["message"]
    assert oidc.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"ttl": -120}, "expired"),  # beyond the 30 s allowed for clock skew
        ({"aud": "another-application"}, "audience"),
        ({"iss": "https://someone-else.example"}, "another issuer"),
    ],
)
def test_expired_wrong_audience_or_wrong_issuer_tokens_are_refused(oidc, issuer, claims, reason):
    token = issuer.token(scope="speak", **claims)
    response = oidc.get("/v1/voices", headers=_bearer(token))
    assert response.status_code == 401
    assert reason in response.json()["detail"]["message"]
    assert token not in response.text


def test_forged_tokens_are_refused(oidc, issuer):
    impostor = issuer.token(scope="manage", key=rsa_key())  # right kid, wrong private key
    assert oidc.get("/v1/voices", headers=_bearer(impostor)).status_code == 401
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "exp": 2_000_000_000, "scope": "manage"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "key-1"})
    assert oidc.get("/v1/voices", headers=_bearer(unsigned)).status_code == 401
    public_pem = issuer.jwks()["keys"][0]["n"]  # an HMAC "signed" with public material
    hmac = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": "key-1"})
    assert oidc.get("/v1/voices", headers=_bearer(hmac)).status_code == 401
    assert oidc.get("/v1/voices", headers=_bearer("eyJ.not.a-token")).status_code == 401


def test_a_cloudflare_access_assertion_is_accepted_with_a_scope_mapping(settings, make_client, issuer):
    # Access tokens carry the user's email, an `aud` list and no scope: map emails (or `*`) to scopes.
    client = make_client(
        settings.model_copy(
            update={
                "oidc_issuer": issuer.url,
                "oidc_audience": [AUDIENCE],
                "oidc_scope_claim": "email",
                "oidc_speak_values": ["*"],
                "oidc_manage_values": ["owner@example.org"],
            }
        )
    )
    visitor = issuer.token(aud=[AUDIENCE], email="visitor@example.org", sub="v")
    owner = issuer.token(aud=[AUDIENCE], email="owner@example.org", sub="o")
    assert client.get("/v1/voices", headers={"Cf-Access-Jwt-Assertion": visitor}).status_code == 200
    assert client.delete("/v1/voices/jf_alpha", headers={"Cf-Access-Jwt-Assertion": visitor}).status_code == 403
    assert client.delete("/v1/voices/jf_alpha", headers={"Cf-Access-Jwt-Assertion": owner}).status_code == 200


def test_a_token_granting_no_scope_is_forbidden(oidc, issuer):
    response = oidc.get("/v1/voices", headers=_bearer(issuer.token(scope="openid profile")))
    assert response.status_code == 403


def test_api_keys_keep_working_beside_tokens(settings, make_client, issuer):
    client = make_client(
        settings.model_copy(update={"oidc_issuer": issuer.url, "oidc_audience": [AUDIENCE], "api_keys": ["side-key"]})
    )
    assert client.get("/v1/voices", headers=_bearer("side-key")).status_code == 200
    assert client.get("/v1/voices", headers=_bearer("not-a-key")).status_code == 401


def test_an_unreachable_issuer_is_a_503_that_says_so(settings, make_client):
    issuer_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = make_client(settings.model_copy(update={"oidc_issuer": issuer_url, "oidc_audience": [AUDIENCE]}))
    fake = jwt.encode(
        {"iss": issuer_url, "aud": AUDIENCE, "exp": 2_000_000_000}, rsa_key(), algorithm="RS256", headers={"kid": "k"}
    )
    response = client.get("/v1/voices", headers=_bearer(fake))
    assert response.status_code == 503
    assert "signing keys" in response.json()["detail"]["message"]


async def test_keys_are_cached_and_fetched_again_when_the_issuer_rotates(issuer):
    verifier = TokenVerifier(issuer.url, [AUDIENCE], min_refresh_s=0)
    for _ in range(3):
        assert (await verifier.identify(issuer.token(scope="speak"))).scopes == ("speak",)
    assert issuer.jwks_fetches == 1  # cached
    new_kid = issuer.rotate()
    identity = await verifier.identify(issuer.token(kid=new_kid, scope="manage"))
    assert identity.scopes == ("speak", "manage")
    assert issuer.jwks_fetches == 2


async def test_unknown_key_ids_cannot_make_the_server_hammer_the_issuer(issuer):
    verifier = TokenVerifier(issuer.url, [AUDIENCE])  # fetches early for an unknown kid at most every 30 s
    await verifier.identify(issuer.token(scope="speak"))
    impostor = rsa_key()
    for n in range(20):
        claims = {"iss": issuer.url, "aud": AUDIENCE, "exp": 2_000_000_000}
        forged = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": f"made-up-{n}"})
        with pytest.raises(Unauthorized, match="does not publish"):
            await verifier.identify(forged)
    assert issuer.jwks_fetches == 1


def test_tokens_never_reach_the_log(oidc, issuer, caplog):
    tokens = [issuer.token(scope="speak"), issuer.token(scope="speak", ttl=-600), issuer.token(scope="speak", aud="x")]
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            oidc.get("/v1/voices", headers=_bearer(token))
            oidc.get("/v1/voices", headers={"Cf-Access-Jwt-Assertion": token})
    for token in tokens:
        assert token not in caplog.text
        assert token.split(".")[2] not in caplog.text  # not even the signature


def test_a_cloudflare_access_issuer_gets_its_keys_from_the_access_certs_url():
    verifier = TokenVerifier("https://team.cloudflareaccess.com", ["aud-tag"])
    assert verifier.jwks_url == "https://team.cloudflareaccess.com/cdn-cgi/access/certs"
    assert TokenVerifier("https://login.example.org/", ["client"]).jwks_url is None  # OpenID discovery


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"oidc_issuer": "https://login.example.org"}, "oidc_audience is required"),
        ({"oidc_audience": "client"}, "need oidc_issuer"),
        ({"oidc_issuer": "http://login.example.org", "oidc_audience": "client"}, "must be an https:// URL"),
        ({"trusted_proxies": "10.0.0.0/8, nginx.internal"}, "not an address or CIDR"),
        ({"root_path": "voice"}, "must look like /voice"),
    ],
)
def test_bad_identity_and_proxy_settings_stop_the_server_at_start_up(tmp_path, settings_, message):
    from voxclone.settings import Settings

    with pytest.raises(ValueError, match=message):
        Settings(data_dir=tmp_path, **settings_)

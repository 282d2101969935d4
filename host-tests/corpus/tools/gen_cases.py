#!/usr/bin/env python3
"""Writes host-tests/corpus/cases/*.json — the source of truth for the corpus cases.

    python3 host-tests/corpus/tools/gen_cases.py

Edit this script and re-run it rather than editing the JSON by hand (the JSON is
overwritten). Python 3 standard library only; needs keys.json (for the RSA public JWK
text used by the HS256/RS256 confusion case).
"""
import copy
import hashlib
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)

NOW = 1800000000
CORP = "https://sts.example.com"
PARTNER = "https://partner.example.com"
HS_ISS = "https://hs.example.com"
RSA_ISS = "https://rsa.example.com"
REMOTE_ISS = "https://remote.example.com"
AUD = "payments-api"
TD = "spiffe://prod.example.com"
ORCH = TD + "/agent/orchestrator"
BILLING = TD + "/agent/billing"
READER = TD + "/agent/reader"
ROGUE = TD + "/agent/rogue"
UNLISTED = TD + "/agent/unlisted"
ACR_OK = "urn:example:acr:approved"

STATUS = {
    "token_missing": 401, "token_malformed": 401, "token_too_large": 401,
    "type_not_allowed": 401, "alg_not_allowed": 401, "kid_unknown": 401,
    "signature_invalid": 401, "issuer_unknown": 401, "audience_mismatch": 401,
    "token_expired": 401, "token_not_yet_valid": 401, "lifetime_too_long": 401,
    "claim_invalid": 401, "token_revoked": 401, "binding_required": 401,
    "binding_mismatch": 401, "stepup_required": 401,
    "scope_insufficient": 403, "actor_scope_exceeded": 403, "actor_not_allowed": 403,
    "trust_domain_mismatch": 403, "chain_too_deep": 403, "actor_cycle": 403,
    "may_act_violation": 403, "human_subject_required": 403,
    "delegation_required": 403, "delegation_forbidden": 403, "claim_mismatch": 403,
    "peer_mismatch": 403, "route_denied": 403, "jwks_unavailable": 503,
    "dpop_required": 401, "dpop_invalid": 401, "dpop_replayed": 401,
    "mcp_body_too_large": 413, "mcp_malformed": 400, "mcp_header_mismatch": 400,
    "argument_denied": 403,
}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Client certificates are stood in for by their SHA-256 digests (what Envoy exposes).
CERT_A = hashlib.sha256(b"actwarden corpus client certificate A").digest()
CERT_B = hashlib.sha256(b"actwarden corpus client certificate B").digest()
# A PEM block whose DER is these bytes (not a real certificate: only its hash matters).
PEM_DER = b"actwarden corpus client certificate C (DER stand-in)"
PEM_TEXT = ("-----BEGIN CERTIFICATE-----\n" + base64.b64encode(PEM_DER).decode()
            + "\n-----END CERTIFICATE-----\n")
CERT_C = hashlib.sha256(PEM_DER).digest()


def rsa_public_jwk_text():
    with open(os.path.join(CORPUS, "keys.json")) as f:
        keys = json.load(f)
    pub = {k: v for k, v in keys["rsa-a"].items()
           if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
    return json.dumps(pub, separators=(",", ":"), sort_keys=True)


# ------------------------------------------------------------------------------------
# Builders.

def merged(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


BASE_CLAIMS = {
    "iss": CORP, "sub": "user:alice", "sub_profile": "user", "aud": AUD,
    "iat": NOW - 60, "exp": NOW + 600, "jti": "jti-1", "scope": "invoices:read",
}


def claims(**over):
    return merged(BASE_CLAIMS, over)


def pay_claims(**over):
    base = claims(scope="payments:write invoices:read", act={"sub": ORCH},
                  acr=ACR_OK, auth_time=NOW - 60)
    return merged(base, over)


def tok(key="es256-a", **kw):
    """A token recipe; `claims` defaults to BASE_CLAIMS."""
    t = {"key": key} if key is not None else {}
    if "claims" not in kw and "claims_json" not in kw and "payload_b64" not in kw \
            and "raw" not in kw:
        kw["claims"] = claims()
    t.update(kw)
    return t


def req(method="GET", path="/v1/profile", headers=None, peer=None, authority="api.example.com"):
    r = {"method": method, "path": path, "authority": authority}
    if headers is not None:
        r["headers"] = headers
    if peer is not None:
        r["peer"] = peer
    return r


def peer(uri=None, digest=None, pem=None):
    p = {}
    if uri is not None:
        p["uri_san"] = uri
    if digest is not None:
        p["sha256_digest_hex"] = digest.hex()
    if pem is not None:
        p["certificate_pem"] = pem
    return p


def ids(sub="user:alice", profile="user", chain=(), scopes="invoices:read", iss=CORP,
        rule="profile"):
    """The exact identity headers of an allow."""
    h = {"x-agent-subject": sub}
    if profile is not None:
        h["x-agent-subject-profile"] = profile
    if chain:
        h["x-agent-actor"] = chain[0]
        h["x-agent-chain"] = ",".join(chain)
    h["x-agent-scopes"] = scopes
    h["x-agent-issuer"] = iss
    h["x-agent-rule"] = rule
    return h


def allow(headers=None, audit=None, anonymous=False):
    e = {"decision": "allow", "reason": "allowed_anonymous" if anonymous else "allowed",
         "status": None}
    if headers is not None:
        e["headers"] = headers
    if audit is not None:
        e["audit"] = audit
    return e


def deny(reason, audit=None, response_headers=None, response_status=None, headers=True):
    e = {"decision": "deny", "reason": reason, "status": STATUS[reason]}
    if headers:
        e["headers"] = {}  # nothing is forwarded on deny
    if response_headers is not None:
        e["response_headers"] = response_headers
    if response_status is not None:
        e["response_status"] = response_status
    if audit is not None:
        e["audit"] = audit
    return e


def case(name, about, expect, token=None, request=None, config="main", twin=None,
         remote=None, now=NOW, dpop=None, mcp_response=None):
    c = {"name": name, "about": about, "config": config, "now": now}
    if remote is not None:
        c["remote_jwks"] = remote
    c["request"] = request if request is not None else req()
    if mcp_response is not None:
        c["mcp_response"] = mcp_response
    if token is not None:
        c["token"] = token
    if dpop is not None:
        c["dpop"] = dpop
    c["expect"] = expect
    if twin is not None:
        patch, texpect = twin
        if "__claims__" in patch:
            old = token["claims"]
            patch = {"token": {"claims": diff_patch(old, merged(old, patch["__claims__"]))}}
        c["twin"] = {"patch": patch, "expect": texpect}
    return c


def tw(patch, expect):
    return (patch, expect)


def claims_patch(**over):
    """A twin whose claims are this case's claims with `over` applied (None removes a
    claim). `case` turns it into the JSON merge patch that produces exactly those claims
    (a plain merge patch would merge a new `act` into the old one)."""
    return {"__claims__": over}


def diff_patch(old, new):
    """The RFC 7396 merge patch that turns `old` into `new`."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return copy.deepcopy(new)
    patch = {}
    for k in old:
        if k not in new:
            patch[k] = None
    for k, v in new.items():
        if k not in old:
            patch[k] = copy.deepcopy(v)
        elif old[k] != v:
            patch[k] = diff_patch(old[k], v)
    return patch


OK = allow()
INVALID = 'Bearer error="invalid_token", error_description="{}"'


# ------------------------------------------------------------------------------------
# 01: route and token extraction (SPEC §4 steps 1–2).

def route_token():
    big_array = '{"iss":"%s","sub":"user:alice","aud":"%s","exp":%d,"x":%s%s}' % (
        CORP, AUD, NOW + 600, "[" * 5000, "]" * 5000)
    act_bomb = '{"iss":"%s","sub":"user:alice","aud":"%s","exp":%d,"act":%s"x"%s}' % (
        CORP, AUD, NOW + 600, '{"sub":"a","act":' * 600, "}" * 600)
    return [
        case("route-unknown-path", "No rule matches /v1/unknown; on_no_match is deny.",
             deny("route_denied", audit={"rule": None, "path": "/v1/unknown"}),
             tok(), req(path="/v1/unknown"),
             twin=tw({"request": {"path": "/v1/profile"}}, allow(ids()))),
        case("route-method-not-listed", "/v1/payments rules list POST and GET, not DELETE.",
             deny("route_denied"), tok(claims=claims(scope="payments:read")),
             req("DELETE", "/v1/payments"),
             twin=tw({"request": {"method": "GET"}},
                     allow(ids(scopes="payments:read", rule="payments-read")))),
        case("route-dot-dot-to-anonymous", "/healthz/../v1/payments must not ride on the "
             "anonymous health rule.",
             deny("route_denied"), None, req("POST", "/healthz/../v1/payments"),
             twin=tw({"request": {"path": "/healthz"}}, allow({}, anonymous=True))),
        case("route-encoded-dot-dot", "Percent-encoded dot segments are refused too.",
             deny("route_denied"), None, req("GET", "/healthz/%2e%2e/v1/admin"),
             twin=tw({"request": {"path": "/healthz/live"}}, allow({}, anonymous=True))),
        case("route-query-not-matched", "Rules match the path without its query; the "
             "audit path omits the query.",
             allow(ids(), audit={"path": "/v1/profile", "rule": "profile"}),
             tok(), req(path="/v1/profile?debug=1&token=secret")),
        case("route-path-exact", "path_exact /v1/admin does not match /v1/admin/x.",
             deny("route_denied"), tok(), req(path="/v1/admin/x"),
             twin=tw({"request": {"path": "/v1/admin"}}, allow(ids(rule="admin")))),
        case("anonymous-health", "An anonymous route without a token.",
             allow({}, audit={"rule": "health", "sub": None, "token_id": None,
                              "binding": "not_checked"}, anonymous=True),
             None, req(path="/healthz"),
             twin=tw({"request": {"path": "/v1/profile"}},
                     deny("token_missing", response_headers={"www-authenticate": "Bearer"}))),
        case("anonymous-health-bad-token", "A token on an anonymous route is still "
             "verified, and a bad one is still denied.",
             deny("signature_invalid", audit={"rule": "health"}),
             tok(signature="flipped"), req(path="/healthz"),
             twin=tw({"token": {"signature": None}}, allow(ids(rule="health")))),
        case("no-match-allow", "on_no_match allow: an unmatched route is allowed "
             "anonymously.", allow({}, audit={"rule": None}, anonymous=True),
             None, req(path="/public/page"), config="open",
             twin=tw({"request": {"path": "/v1/secure/x"}}, deny("token_missing"))),
        case("no-match-allow-secure-route", "on_no_match allow does not relax a rule that "
             "matches.", allow(ids(rule="secure")), tok(), req(path="/v1/secure/x"),
             config="open",
             twin=tw({"token": {"claims": {"exp": NOW - 600}}}, deny("token_expired"))),
        case("token-missing", "A rule without allow_anonymous needs a token.",
             deny("token_missing", response_headers={"www-authenticate": "Bearer"},
                  audit={"token_id": None, "kid": None, "alg": None}),
             None, req(), twin=tw({"token": tok()}, allow(ids()))),
        case("token-basic-scheme", "A Basic credential is not a bearer token.",
             deny("token_missing"), None,
             req(headers={"authorization": "Basic dXNlcjpwYXNzd29yZA=="}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}},
                      "token": tok()}, allow(ids()))),
        case("token-bearer-without-space", "`Bearer` with nothing after it is an empty "
             "bearer credential: malformed, exactly as `Bearer ` (HTTP trims the trailing "
             "space, so the two are one field value).", deny("token_malformed"), None,
             req(headers={"authorization": "Bearer"}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}},
                      "token": tok()}, allow(ids()))),
        case("token-bearer-empty", "`Bearer ` followed by an empty token is a malformed "
             "token, not a missing one.", deny("token_malformed"), None,
             req(headers={"authorization": "Bearer "}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}},
                      "token": tok()}, allow(ids()))),
        case("token-lowercase-bearer", "The scheme is matched case-insensitively.",
             allow(ids()), tok(), req(headers={"authorization": "bearer {token}"}),
             twin=tw({"request": {"headers": {"authorization": "Basic {token}"}}},
                     deny("token_missing"))),
        case("token-uppercase-bearer", "BEARER is the same scheme.", allow(ids()), tok(),
             req(headers={"authorization": "BEARER {token}"})),
        case("token-repeated-authorization", "Two Authorization headers: a request carries "
             "exactly one identity.", deny("token_malformed"), tok(),
             req(headers={"authorization": ["Bearer {token}", "Bearer {token}"]}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}}},
                     allow(ids()))),
        case("token-repeated-authorization-joined", "Two Authorization headers joined into "
             "one value with a comma, as a proxy may (RFC 9110 §5.3): still two tokens.",
             deny("token_malformed", audit={"token_id": None}), tok(),
             req(headers={"authorization": "Bearer {token},Bearer {token}"}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}}},
                     allow(ids()))),
        case("token-repeated-authorization-mixed-case", "Authorization and authorization "
             "are one header name, so this is a repeated header.", deny("token_malformed"),
             tok(), req(headers={"Authorization": "Bearer {token}",
                                 "authorization": "Bearer {token}"})),
        case("token-in-two-from-headers", "The same token in two configured from_headers "
             "is two tokens.", deny("token_malformed"), tok(),
             req(headers={"x-api-token": "{token}", "authorization": "Token {token}"}),
             config="custom-headers",
             twin=tw({"request": {"headers": {"authorization": None}}},
                     allow(ids(rule="any")))),
        case("custom-header-x-api-token", "from_headers without value_prefix takes the "
             "whole value.", allow(ids(rule="any")), tok(), req(headers={"x-api-token": "{token}"}),
             config="custom-headers",
             twin=tw({"request": {"headers": {"x-api-token": None,
                                              "authorization": "Bearer {token}"}}},
                     deny("token_missing"))),
        case("custom-header-token-prefix", "A custom value_prefix `Token `.",
             allow(ids(rule="any")), tok(), req(headers={"authorization": "Token {token}"}),
             config="custom-headers",
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}}},
                     deny("token_missing"))),
        case("token-too-large", "A token over 16 KiB.",
             deny("token_too_large", audit={"sub": None, "kid": None, "alg": None}),
             tok(pad_claims_to=17000),
             twin=tw({"token": {"pad_claims_to": 10000}}, allow(ids()))),
        case("token-not-compact", "Two parts instead of three.", deny("token_malformed"),
             {"raw": "eyJhbGciOiJFUzI1NiJ9.e30"},
             twin=tw({"token": {"raw": None, "key": "es256-a", "claims": claims()}},
                     allow(ids()))),
        case("token-five-parts", "A JWE-shaped token (five parts) is not a JWS.",
             deny("token_malformed"), {"raw": "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"}),
        case("token-not-base64url", "`+` is not base64url.", deny("token_malformed"),
             {"raw": "eyJhbGciOiJFUzI1NiJ9.e30+.AAAA"}),
        case("token-payload-not-utf8", "A payload of bytes 0xff 0xfe 0xfd.",
             deny("token_malformed"), tok(payload_b64=b64u(b"\xff\xfe\xfd")),
             twin=tw({"token": {"payload_b64": None, "claims": claims()}}, allow(ids()))),
        case("token-payload-not-json", "A payload that is not JSON.",
             deny("token_malformed"), tok(payload_b64=b64u(b"hello")),
             twin=tw({"token": {"payload_b64": None, "claims": claims()}}, allow(ids()))),
        case("token-payload-not-object", "A JSON array payload.", deny("token_malformed"),
             tok(claims_json="[1,2,3]")),
        case("token-header-duplicate-member", "A header with `kid` twice.",
             deny("token_malformed", audit={"kid": None}),
             tok(header_json='{"alg":"ES256","typ":"at+jwt","kid":"es256-a","kid":"es256-b"}'),
             twin=tw({"token": {"header_json": None}}, allow(ids()))),
        case("token-header-duplicate-alg", "A header with `alg` twice (ES256, then none).",
             deny("token_malformed"),
             tok(header_json='{"alg":"ES256","alg":"none","kid":"es256-a"}')),
        case("token-claims-duplicate-member", "Claims with `sub` twice.",
             deny("token_malformed", audit={"sub": None}),
             tok(claims_json='{"iss":"%s","sub":"user:alice","sub":"user:admin","aud":"%s",'
                             '"exp":%d}' % (CORP, AUD, NOW + 600)),
             twin=tw({"token": {"claims_json": None,
                                "claims": claims(sub_profile=None, scope=None, jti=None,
                                                 iat=None)}},
                     allow(ids(profile=None, scopes=""), audit={"jti": None}))),
        case("token-header-too-large", "A header over its 2 KiB budget in a token under "
             "16 KiB.", deny("token_too_large"), tok(header={"x": "a" * 3000}),
             twin=tw({"token": {"header": {"x": "a" * 100}}}, allow(ids()))),
        case("token-alg-missing", "A header without `alg`.", deny("token_malformed"),
             tok(header={"alg": None})),
        case("token-header-crit", "`crit` names an extension actwarden does not know.",
             deny("token_malformed"), tok(header={"crit": ["exp"], "exp": NOW}),
             twin=tw({"token": {"header": None}}, allow(ids()))),
        case("token-typ-not-string", "`typ` must be a string.", deny("token_malformed"),
             tok(header={"typ": 5})),
        case("token-nesting-bomb", "5000 nested `act`s: refused cleanly (the token is far "
             "over 16 KiB), never a stack overflow.", deny("token_too_large"),
             tok(act_depth=5000),
             twin=tw({"token": {"act_depth": 3}}, allow(ids(chain=[
                 TD + "/agent/hop-1", TD + "/agent/hop-2", TD + "/agent/hop-3"])))),
        case("token-nesting-bomb-within-size", "600 nested `act`s that fit in 16 KiB: "
             "refused by the JSON nesting limit.", deny("token_malformed"),
             tok(claims_json=act_bomb)),
        case("token-array-bomb-within-size", "5000 nested arrays in a claim that fit in "
             "16 KiB.", deny("token_malformed"), tok(claims_json=big_array)),
    ]


# ------------------------------------------------------------------------------------
# 02: provider, type, algorithm, key, signature (SPEC §4 step 3).

def verify():
    rsa_pub = rsa_public_jwk_text()
    out = []
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]:
        out.append(case(f"alg-{alg.lower()}", f"{alg} with the unpinned RSA key.",
                        allow(ids(), audit={"alg": alg, "kid": "rsa-a",
                                            "provider": "corp-sts"}),
                        tok("rsa-a", alg=alg)))
    out += [
        case("alg-es256", "ES256 (P-256).", allow(ids(), audit={"alg": "ES256", "kid": "es256-a"}),
             tok("es256-a")),
        case("alg-es256-second-key", "ES256 with the second P-256 key of the set.",
             allow(ids(), audit={"kid": "es256-b"}), tok("es256-b")),
        case("alg-es384", "ES384 (P-384).", allow(ids(), audit={"alg": "ES384"}), tok("es384-a")),
        case("alg-eddsa", "EdDSA (Ed25519).", allow(ids(), audit={"alg": "EdDSA"}), tok("ed-a")),
        case("alg-rs256-pinned-key", "RS256 on the RSA key whose JWK says alg RS256.",
             allow(ids(), audit={"kid": "rsa-pinned"}), tok("rsa-pinned"),
             twin=tw({"token": {"alg": "PS256"}}, deny("alg_not_allowed"))),
        case("alg-hs256", "HS256 with the configured oct key.",
             allow(ids(iss=HS_ISS, rule="any"), audit={"alg": "HS256", "provider": "hs-sts"}),
             tok("hs-a", claims=claims(iss=HS_ISS)), config="hs",
             twin=tw({"token": {"signature": "flipped"}}, deny("signature_invalid"))),
        case("alg-ps256-on-rs256-pinned-key", "PS256 on a key pinned to RS256.",
             deny("alg_not_allowed", audit={"sub": None, "alg": "PS256", "kid": "rsa-pinned"}),
             tok("rsa-pinned", alg="PS256"),
             twin=tw({"token": {"key": "rsa-a"}}, allow(ids()))),
        case("alg-rs384-on-rs256-pinned-key", "RS384 on a key pinned to RS256.",
             deny("alg_not_allowed"), tok("rsa-pinned", alg="RS384")),
        case("alg-none", "alg none with an empty signature.",
             deny("alg_not_allowed", audit={"alg": "none", "sub": None, "iss": None}),
             tok(None, alg="none", signature="empty"),
             twin=tw({"token": {"key": "es256-a", "alg": None, "signature": None}},
                     allow(ids()))),
        case("alg-none-uppercase", "alg NONE.", deny("alg_not_allowed"),
             tok(None, alg="NONE", signature="empty")),
        case("alg-none-capitalized", "alg None, with a kid that exists.",
             deny("alg_not_allowed"), tok("es256-a", alg="None", signature="empty")),
        case("alg-es512", "ES512 is not verifiable here (no P-521) and not allowed.",
             deny("alg_not_allowed", audit={"alg": "ES512"}),
             tok("es256-a", alg="ES512", sign_alg="ES256"),
             twin=tw({"token": {"alg": None, "sign_alg": None}}, allow(ids()))),
        case("alg-unknown-name", "A made-up alg name.", deny("alg_not_allowed"),
             tok("es256-a", alg="ES256K1", sign_alg="ES256")),
        case("alg-case-sensitive", "`es256` is not `ES256`.", deny("alg_not_allowed"),
             tok("es256-a", alg="es256", sign_alg="ES256")),
        case("alg-hs256-on-asymmetric-provider", "HS256 is not in a provider's default "
             "(asymmetric) allowlist.", deny("alg_not_allowed"),
             tok("es256-a", alg="HS256", hmac_secret="x" * 32)),
        case("confusion-hs256-with-rsa-public-key", "HS256 signed with the RSA public JWK "
             "text as the HMAC secret, kid of the RSA key.",
             deny("alg_not_allowed", audit={"sub": None, "iss": None, "alg": "HS256",
                                            "kid": "rsa-a"}),
             tok("rsa-a", alg="HS256", hmac_secret=rsa_pub, claims=claims(iss=RSA_ISS)),
             config="hs",
             twin=tw({"token": {"alg": None, "hmac_secret": None}},
                     allow(ids(iss=RSA_ISS, rule="any")))),
        case("confusion-hs256-rsa-key-at-hmac-provider", "The same forgery aimed at the "
             "HMAC provider, kid of the RSA key: that provider has no such key.",
             deny("kid_unknown"),
             tok("rsa-a", alg="HS256", hmac_secret=rsa_pub, claims=claims(iss=HS_ISS)),
             config="hs",
             twin=tw({"token": {"key": "hs-a", "hmac_secret": None}},
                     allow(ids(iss=HS_ISS, rule="any")))),
        case("confusion-hs256-rsa-public-key-no-kid", "The forgery without a kid: only the "
             "oct key is tried, and it does not verify.", deny("signature_invalid"),
             tok(None, alg="HS256", hmac_secret=rsa_pub, claims=claims(iss=HS_ISS)),
             config="hs"),
        case("confusion-es256-on-rsa-key", "ES256 header with the RSA key's kid, signed by "
             "an EC key.", deny("alg_not_allowed", audit={"kid": "rsa-a", "alg": "ES256"}),
             tok("rsa-a", signer="es256-a", alg="ES256"),
             twin=tw({"token": {"signer": None, "alg": "RS256"}}, allow(ids()))),
        case("confusion-es256-on-p384-key", "ES256 with the P-384 key's kid.",
             deny("alg_not_allowed"), tok("es384-a", signer="es256-a", alg="ES256"),
             twin=tw({"token": {"signer": None, "alg": "ES384"}}, allow(ids()))),
        case("confusion-eddsa-on-ec-key", "EdDSA with a P-256 key's kid.",
             deny("alg_not_allowed"), tok("es256-a", signer="ed-a", alg="EdDSA")),
        case("confusion-rs256-on-ec-key", "RS256 with a P-256 key's kid.",
             deny("alg_not_allowed"), tok("es256-a", signer="rsa-a", alg="RS256")),
        case("kid-absent-es256", "No kid: every key that fits ES256 is tried (es256-b is "
             "the second).", allow(ids(), audit={"kid": None, "alg": "ES256"}),
             tok("es256-b", header={"kid": None}),
             twin=tw({"token": {"key": "evil-es256"}}, deny("signature_invalid"))),
        case("kid-absent-ps256", "No kid, PS256: the key pinned to RS256 is skipped, the "
             "unpinned one verifies.", allow(ids()), tok("rsa-a", alg="PS256", header={"kid": None})),
        case("kid-absent-no-fitting-key", "No kid, EdDSA allowed, but no fetched key fits "
             "EdDSA.", deny("alg_not_allowed"),
             tok("ed-a", header={"kid": None}, claims=claims(iss=REMOTE_ISS)),
             config="remote", remote={"remote-sts": ["es256-a"]},
             twin=tw({"remote_jwks": {"remote-sts": ["es256-a", "ed-a"]}},
                     allow(ids(iss=REMOTE_ISS, rule="any")))),
        case("kid-unknown", "A kid no configured key has.",
             deny("kid_unknown", audit={"kid": "nope", "sub": None}),
             tok("es256-a", header={"kid": "nope"}),
             twin=tw({"token": {"header": None}}, allow(ids()))),
        case("signature-forged", "Signed by an attacker key that claims kid es256-a: no "
             "identity from it reaches the audit record.",
             deny("signature_invalid",
                  audit={"sub": None, "iss": None, "chain": None, "actor": None,
                         "scopes": None, "jti": None, "provider": "corp-sts",
                         "kid": "es256-a", "alg": "ES256"},
                  response_headers={"www-authenticate": INVALID.format("signature_invalid")}),
             tok("evil-es256", claims=claims(sub="user:admin", act={"sub": ORCH})),
             twin=tw({"token": {"key": "es256-a"}},
                     allow(ids(sub="user:admin", chain=[ORCH])))),
        case("signature-flipped", "The last signature byte flipped.",
             deny("signature_invalid"), tok("es256-a", signature="flipped"),
             twin=tw({"token": {"signature": None}}, allow(ids()))),
        case("signature-flipped-rsa", "RS256 signature with its last byte flipped.",
             deny("signature_invalid"), tok("rsa-a", signature="flipped")),
        case("signature-empty", "ES256 with an empty signature.", deny("signature_invalid"),
             tok("es256-a", signature="empty")),
        case("signature-pss-for-pkcs1", "Header RS256, signed with PSS.",
             deny("signature_invalid"), tok("rsa-a", alg="RS256", sign_alg="PS256")),
        case("header-jwk-ignored", "An embedded `jwk` is never used to verify.",
             deny("signature_invalid"),
             tok("evil-es256", header={"jwk": {"kty": "EC", "crv": "P-256",
                                                "x": "AAAA", "y": "AAAA"}})),
        case("header-jku-ignored", "A `jku` is never fetched.", deny("signature_invalid"),
             tok("evil-es256", header={"jku": "https://evil.example.com/jwks.json"})),
        case("issuer-unknown", "No provider has this issuer.",
             deny("issuer_unknown", audit={"iss": None, "provider": None}),
             tok(claims=claims(iss="https://evil.example.com")),
             twin=tw(claims_patch(iss=CORP), allow(ids()))),
        case("issuer-missing", "A token without iss.", deny("issuer_unknown"),
             tok(claims=claims(iss=None)),
             twin=tw(claims_patch(iss=CORP), allow(ids()))),
        case("issuer-not-a-string", "iss: 5.", deny("issuer_unknown"), tok(claims=claims(iss=5))),
        case("issuer-case-differs", "Issuers compare exactly.", deny("issuer_unknown"),
             tok(claims=claims(iss="https://STS.example.com"))),
        case("issuer-not-for-rule", "The pay rule accepts corp-sts only; a partner token "
             "is issuer_unknown there.", deny("issuer_unknown", audit={"rule": "pay"}),
             tok("es256-b", claims=pay_claims(iss=PARTNER)), req("POST", "/v1/payments"),
             twin=tw({"request": {"method": "GET", "path": "/v1/partner"}},
                     allow(ids(iss=PARTNER, chain=[ORCH], rule="partner",
                               scopes="payments:write invoices:read")))),
        case("typ-jwt-uppercase", "typ JWT.", allow(ids()), tok(header={"typ": "JWT"})),
        case("typ-application-at-jwt", "typ application/at+jwt.", allow(ids()),
             tok(header={"typ": "application/at+jwt"})),
        case("typ-absent-jwt-listed", "No typ: accepted because `jwt` is in the default "
             "token_types.", allow(ids()), tok(header={"typ": None})),
        case("typ-secevent", "typ secevent+jwt is a security event, not an access token.",
             deny("type_not_allowed", audit={"provider": "corp-sts", "sub": None}),
             tok(header={"typ": "secevent+jwt"}),
             twin=tw({"token": {"header": {"typ": "at+jwt"}}}, allow(ids()))),
        case("typ-absent-jwt-not-listed", "No typ, token_types [at+jwt].",
             deny("type_not_allowed"), tok(header={"typ": None}), config="types",
             twin=tw({"token": {"header": None}}, allow(ids(rule="any")))),
        case("typ-jwt-not-listed", "typ JWT, token_types [at+jwt].",
             deny("type_not_allowed"), tok(header={"typ": "JWT"}), config="types",
             twin=tw({"token": {"header": {"typ": "AT+JWT"}}}, allow(ids(rule="any")))),
        case("kid-absent-beyond-signature-budget", "No kid, five keys fit ES256 and the signer "
             "is the fifth: only the first four are tried (SPEC §13 signature budget).",
             deny("signature_invalid", audit={"kid": None, "alg": "ES256"}),
             tok("es256-b", header={"kid": None}), config="many-keys",
             twin=tw({"token": {"header": {"kid": "es256-b"}}}, allow(ids(rule="any")))),
        case("kid-absent-within-signature-budget", "No kid, five keys fit ES256 and the "
             "signer's key is among the first four: it verifies.",
             allow(ids(rule="any"), audit={"kid": None, "alg": "ES256"}),
             tok("es256-a", header={"kid": None}), config="many-keys",
             twin=tw({"token": {"header": {"kid": "es256-a"}}}, deny("kid_unknown"))),
        case("remote-keys", "A remote_jwks provider with fetched keys.",
             allow(ids(iss=REMOTE_ISS, rule="any"), audit={"provider": "remote-sts"}),
             tok(claims=claims(iss=REMOTE_ISS)), config="remote",
             remote={"remote-sts": ["es256-a", "ed-a"]}),
        case("remote-keys-unavailable", "A remote_jwks provider never fetched.",
             deny("jwks_unavailable", audit={"sub": None, "provider": "remote-sts"},
                  response_status=503),
             tok(claims=claims(iss=REMOTE_ISS)), config="remote",
             twin=tw({"remote_jwks": {"remote-sts": ["es256-a"]}},
                     allow(ids(iss=REMOTE_ISS, rule="any")))),
        case("remote-keys-rotated", "The fetched set has only the new key; the old kid is "
             "unknown.", deny("kid_unknown"), tok(claims=claims(iss=REMOTE_ISS)),
             config="remote", remote={"remote-sts": ["es256-b"]},
             twin=tw({"remote_jwks": {"remote-sts": ["es256-b", "es256-a"]}},
                     allow(ids(iss=REMOTE_ISS, rule="any")))),
    ]
    return out


# ------------------------------------------------------------------------------------
# 03: claim types, audience and time (SPEC §4 step 4).

def claims_time():
    out = []
    bad = [
        ("exp-string", "exp: \"never\" must not mean no expiry.", {"exp": "never"}, {"exp": NOW + 600}),
        ("exp-missing", "exp is required.", {"exp": None}, {"exp": NOW + 600}),
        ("nbf-string", "nbf: \"0\".", {"nbf": "0"}, {"nbf": NOW - 60}),
        ("iat-string", "iat: \"now\".", {"iat": "now"}, {"iat": NOW - 60}),
        ("sub-number", "sub: 42.", {"sub": 42}, {"sub": "user:42"}),
        ("sub-missing", "sub is required.", {"sub": None}, {"sub": "user:alice"}),
        ("sub-empty", "sub: \"\".", {"sub": ""}, {"sub": "user:alice"}),
        ("scope-array", "scope must be a space-delimited string.", {"scope": ["invoices:read"]},
         {"scope": "invoices:read"}),
        ("aud-number", "aud: 5.", {"aud": 5}, {"aud": AUD}),
        ("aud-array-with-number", "aud: [\"payments-api\", 5].", {"aud": [AUD, 5]}, {"aud": [AUD]}),
        ("act-string", "act: \"x\".", {"act": "x"}, {"act": {"sub": ORCH}}),
        ("act-sub-number", "act: {\"sub\": 5}.", {"act": {"sub": 5}}, {"act": {"sub": ORCH}}),
        ("act-without-sub", "act without sub.", {"act": {"iss": CORP}}, {"act": {"sub": ORCH}}),
        ("act-nested-invalid", "A prior actor that is not an object.",
         {"act": {"sub": ORCH, "act": []}}, {"act": {"sub": ORCH, "act": {"sub": READER}}}),
        ("act-sub-with-comma", "An actor with a comma could forge a hop in x-agent-chain.",
         {"act": {"sub": ORCH + "," + READER}}, {"act": {"sub": ORCH}}),
        ("may-act-string", "may_act: \"x\".", {"may_act": "x", "act": {"sub": ORCH}},
         {"may_act": {"sub": ORCH}}),
        ("cnf-string", "cnf: \"x\".", {"cnf": "x"}, {"cnf": None}),
        ("cnf-thumbprint-number", "cnf: {\"x5t#S256\": 5}.", {"cnf": {"x5t#S256": 5}},
         {"cnf": None}),
        ("cnf-thumbprint-not-a-digest", "cnf.x5t#S256 that is not base64url of 32 bytes.",
         {"cnf": {"x5t#S256": "abc"}}, {"cnf": None}),
        ("jti-number", "jti: 5.", {"jti": 5}, {"jti": "jti-1"}),
        ("sub-profile-number", "sub_profile: 5.", {"sub_profile": 5}, {"sub_profile": "user"}),
        ("auth-time-string", "auth_time: \"yesterday\".", {"auth_time": "yesterday"},
         {"auth_time": NOW - 60}),
        ("may-act-without-sub", "may_act: {} (no sub).", {"may_act": {}, "act": {"sub": ORCH}},
         {"may_act": {"sub": ORCH}}),
        ("sub-control-characters", "A subject that would inject a header line.",
         {"sub": "user:alice\r\nx-agent-subject: user:admin"}, {"sub": "user:alice"}),
        ("sub-profile-control-characters", "sub_profile with a newline.",
         {"sub_profile": "user\n"}, {"sub_profile": "user"}),
        ("scope-and-scp-disagree", "scope and scp both present and different: refused, "
         "not picked.", {"scope": "invoices:read", "scp": ["invoices:read", "payments:write"]},
         {"scp": None}),
    ]
    for name, about, over, fix in bad:
        c = claims(**over)
        twin = tw(claims_patch(**fix), allow())
        out.append(case(f"claim-{name}", about,
                        deny("claim_invalid", audit={"sub": None, "provider": "corp-sts"}),
                        tok(claims=c), twin=twin))
    # exp: null can't be written as a merge patch value; use claims_json.
    out.append(case("claim-exp-null", "exp: null.", deny("claim_invalid"),
                    tok(claims_json=json.dumps(claims(exp=None)).replace("}", ',"exp":null}', 1))))
    out += [
        case("claim-scp-string", "scp as a string is accepted.",
             allow(ids(scopes="invoices:read payments:read", rule="invoices"), audit={"scopes": ["invoices:read", "payments:read"]}),
             tok(claims=claims(scope=None, scp="invoices:read payments:read")),
             req(path="/v1/invoices")),
        case("claim-scp-array", "scp as an array of strings is accepted.",
             allow(ids(scopes="invoices:read", rule="invoices")),
             tok(claims=claims(scope=None, scp=["invoices:read"])), req(path="/v1/invoices"),
             twin=tw(claims_patch(scp=["payments:read"]), deny("scope_insufficient"))),
        case("claim-scp-array-with-number", "scp: [\"invoices:read\", 5].",
             deny("claim_invalid"), tok(claims=claims(scope=None, scp=["invoices:read", 5]))),
        case("claim-scope-and-scp-agree", "scope and scp with the same scopes.",
             allow(ids()), tok(claims=claims(scp=["invoices:read"]))),
        case("claim-exp-fractional", "exp may be a non-integer number.", allow(ids()),
             tok(claims=claims(exp=NOW + 600.5))),
        case("aud-array", "aud as an array containing the audience.", allow(ids()),
             tok(claims=claims(aud=["other-api", AUD]))),
        case("aud-mismatch", "aud names another API.",
             deny("audience_mismatch", audit={"sub": "user:alice", "iss": CORP}),
             tok(claims=claims(aud="other-api")),
             twin=tw(claims_patch(aud=AUD), allow(ids()))),
        case("aud-missing", "No aud.", deny("audience_mismatch"), tok(claims=claims(aud=None)),
             twin=tw(claims_patch(aud=[AUD]), allow(ids()))),
        case("aud-empty-array", "aud: [].", deny("audience_mismatch"), tok(claims=claims(aud=[]))),
        # Time. main: clock_skew_s 60, max_lifetime_s 3600.
        case("time-expired-at-skew-edge", "exp = now - skew: expired (not accepted on or "
             "after exp + skew).",
             deny("token_expired",
                  response_headers={"www-authenticate": INVALID.format("token_expired")}),
             tok(claims=claims(iat=NOW - 600, exp=NOW - 60)),
             twin=tw(claims_patch(exp=NOW - 59), allow(ids()))),
        case("time-expired-long-ago", "exp an hour ago.", deny("token_expired"),
             tok(claims=claims(iat=NOW - 4000, exp=NOW - 3600))),
        case("time-nbf-beyond-skew", "nbf = now + skew + 1.", deny("token_not_yet_valid"),
             tok(claims=claims(nbf=NOW + 61)),
             twin=tw(claims_patch(nbf=NOW + 60), allow(ids()))),
        case("time-iat-beyond-skew", "iat in the future beyond the skew.",
             deny("token_not_yet_valid"), tok(claims=claims(iat=NOW + 61, exp=NOW + 900)),
             twin=tw(claims_patch(iat=NOW + 60), allow(ids()))),
        case("time-lifetime-with-iat", "exp - iat = 3660 > 3600.",
             deny("lifetime_too_long"), tok(claims=claims(iat=NOW - 60, exp=NOW + 3600)),
             twin=tw(claims_patch(exp=NOW + 3540), allow(ids()))),
        case("time-lifetime-without-iat", "No iat: exp - now = 3601 > 3600.",
             deny("lifetime_too_long"), tok(claims=claims(iat=None, exp=NOW + 3601)),
             twin=tw(claims_patch(exp=NOW + 3600), allow(ids()))),
        case("time-lifetime-huge-exp", "exp: 1e300.", deny("lifetime_too_long"),
             tok(claims=claims(exp=1e300))),
        case("time-no-skew-expired", "clock_skew_s 0: exp = now is expired.",
             deny("token_expired"), tok(claims=claims(iat=NOW - 60, exp=NOW)),
             config="strict-time",
             twin=tw(claims_patch(exp=NOW + 1), allow(ids(rule="any")))),
        case("time-no-skew-nbf", "clock_skew_s 0: nbf = now + 1.", deny("token_not_yet_valid"),
             tok(claims=claims(nbf=NOW + 1, exp=NOW + 200)), config="strict-time",
             twin=tw(claims_patch(nbf=NOW), allow(ids(rule="any")))),
        case("time-small-max-lifetime", "max_lifetime_s 300: a 10-minute token is too long.",
             deny("lifetime_too_long"), tok(claims=claims(iat=NOW - 60, exp=NOW + 600)),
             config="strict-time",
             twin=tw(claims_patch(exp=NOW + 240), allow(ids(rule="any")))),
    ]
    return out


# ------------------------------------------------------------------------------------
# 04: the delegation chain and effective scopes (SPEC §3, §4 step 5).

def hops(n):
    return [f"{TD}/agent/hop-{i}" for i in range(1, n + 1)]


def chain_act(*subs):
    act = None
    for s in reversed(subs):
        a = {"sub": s}
        if act is not None:
            a["act"] = act
        act = a
    return act


def chain():
    return [
        case("chain-delegated", "A delegated token: actor and chain headers, audit chain.",
             allow(ids(chain=[ORCH, READER]),
                   audit={"actor": ORCH, "chain": [ORCH, READER], "depth": 2}),
             tok(claims=claims(act=chain_act(ORCH, READER)))),
        case("chain-depth-at-limit", "Four actors (identity.max_chain_depth 4).",
             allow(ids(chain=hops(4)), audit={"depth": 4}), tok(act_depth=4)),
        case("chain-depth-over-limit", "Five actors.",
             deny("chain_too_deep", audit={"depth": 5}), tok(act_depth=5),
             twin=tw({"token": {"act_depth": 4}}, allow(ids(chain=hops(4))))),
        case("chain-depth-ten", "Ten actors: well within parsing budgets, over policy.",
             deny("chain_too_deep"), tok(act_depth=10),
             twin=tw({"token": {"act_depth": 1}}, allow(ids(chain=hops(1))))),
        case("chain-cycle", "An actor appears twice in the chain.",
             deny("actor_cycle"), tok(claims=claims(act=chain_act(ORCH, BILLING, ORCH))),
             twin=tw(claims_patch(act=chain_act(ORCH, BILLING, READER)),
                     allow(ids(chain=[ORCH, BILLING, READER], scopes="invoices:read")))),
        case("chain-actor-is-subject", "The actor is the subject itself.",
             deny("actor_cycle"), tok(claims=claims(sub=READER, sub_profile="service",
                                                   act={"sub": READER})),
             twin=tw(claims_patch(act={"sub": ORCH}),
                     allow(ids(sub=READER, profile="service", chain=[ORCH])))),
        case("chain-actor-other-trust-domain", "An actor from another trust domain.",
             deny("trust_domain_mismatch"),
             tok(claims=claims(act={"sub": "spiffe://evil.example.com/agent/orchestrator"})),
             twin=tw(claims_patch(act={"sub": ORCH}), allow(ids(chain=[ORCH])))),
        case("chain-actor-not-spiffe", "Every actor must be a SPIFFE ID in a trust domain.",
             deny("trust_domain_mismatch"), tok(claims=claims(act={"sub": "agent-7"}))),
        case("chain-prior-actor-other-trust-domain", "A prior actor outside the trust "
             "domains.", deny("trust_domain_mismatch"),
             tok(claims=claims(act=chain_act(ORCH, "spiffe://staging.example.com/agent/x")))),
        case("chain-spiffe-subject-other-trust-domain", "A SPIFFE subject outside the "
             "trust domains.", deny("trust_domain_mismatch"),
             tok(claims=claims(sub="spiffe://other.example.com/workload/batch",
                               sub_profile="service")),
             twin=tw(claims_patch(sub=TD + "/workload/batch"),
                     allow(ids(sub=TD + "/workload/batch", profile="service")))),
        case("chain-spiffe-subject-uppercase-scheme", "SPIFFE://… is still a SPIFFE ID "
             "claim and cannot dodge the trust-domain check.", deny("trust_domain_mismatch"),
             tok(claims=claims(sub="SPIFFE://prod.example.com/workload/batch",
                               sub_profile="service"))),
        case("chain-actor-trust-domain-suffix", "A trust domain is not a suffix match.",
             deny("trust_domain_mismatch"),
             tok(claims=claims(act={"sub": "spiffe://prod.example.com.evil.com/agent/orchestrator"}))),
        case("chain-actor-not-listed", "An actor not in identity.actors.",
             deny("actor_not_allowed"), tok(claims=claims(act={"sub": UNLISTED})),
             twin=tw(claims_patch(act={"sub": READER}), allow(ids(chain=[READER])))),
        case("chain-prior-actor-not-listed", "A prior actor not in identity.actors.",
             deny("actor_not_allowed"), tok(claims=claims(act=chain_act(ORCH, UNLISTED)))),
        case("may-act-satisfied", "may_act names the current actor.",
             allow(ids(chain=[ORCH])),
             tok(claims=claims(act={"sub": ORCH}, may_act={"sub": ORCH}))),
        case("may-act-violation", "may_act names another actor.",
             deny("may_act_violation"),
             tok(claims=claims(act={"sub": BILLING}, may_act={"sub": ORCH})),
             twin=tw(claims_patch(act={"sub": ORCH}), allow(ids(chain=[ORCH])))),
        case("may-act-iss-mismatch", "may_act.iss differs from the actor's issuer (the "
             "token's, since act has no iss).", deny("may_act_violation"),
             tok(claims=claims(act={"sub": ORCH},
                               may_act={"sub": ORCH, "iss": "https://other.example.com"})),
             twin=tw(claims_patch(may_act={"sub": ORCH, "iss": CORP}),
                     allow(ids(chain=[ORCH])))),
        case("may-act-iss-from-act", "act.iss is the actor's issuer.",
             allow(ids(chain=[ORCH])),
             tok(claims=claims(act={"sub": ORCH, "iss": "https://other.example.com"},
                               may_act={"sub": ORCH, "iss": "https://other.example.com"}))),
        case("may-act-not-delegated", "may_act without act constrains nothing.",
             allow(ids()), tok(claims=claims(may_act={"sub": ORCH}))),
        case("scopes-prior-actor-ceiling", "A prior actor's ceiling (billing: "
             "invoices:read) removes payments:write.",
             deny("actor_scope_exceeded",
                  audit={"scopes": ["invoices:read"], "chain": [ORCH, BILLING]},
                  response_headers={"www-authenticate":
                                    'Bearer error="insufficient_scope", error_description='
                                    '"actor_scope_exceeded", scope="payments:write"'}),
             tok(claims=claims(scope="payments:write invoices:read",
                               act=chain_act(ORCH, BILLING))),
             req("POST", "/v1/transfers"),
             twin=tw(claims_patch(act=chain_act(ORCH, READER)),
                     allow(ids(chain=[ORCH, READER], scopes="payments:write invoices:read",
                               rule="transfers"),
                           audit={"scopes": ["payments:write", "invoices:read"]}))),
        case("scopes-current-actor-ceiling", "The current actor's ceiling removes "
             "payments:write.", deny("actor_scope_exceeded"),
             tok(claims=claims(scope="payments:write invoices:read", act={"sub": BILLING})),
             req("POST", "/v1/transfers"),
             twin=tw(claims_patch(act={"sub": ORCH}),
                     allow(ids(chain=[ORCH], scopes="payments:write invoices:read",
                               rule="transfers")))),
        case("scopes-no-ceiling", "reader has no ceiling, and nobody else in the chain: "
             "every token scope is effective.",
             allow(ids(chain=[READER], scopes="payments:write invoices:read admin:all",
                       rule="transfers")),
             tok(claims=claims(scope="payments:write invoices:read admin:all",
                               act={"sub": READER})),
             req("POST", "/v1/transfers")),
        case("scopes-ceiling-filters-headers", "Effective scopes in x-agent-scopes drop what "
             "the ceiling removes even when the route does not need it.",
             allow(ids(chain=[BILLING], scopes="invoices:read")),
             tok(claims=claims(scope="payments:write invoices:read", act={"sub": BILLING}))),
    ]


# ------------------------------------------------------------------------------------
# 05: revocation and binding (SPEC §4 steps 6–7).

# An RFC 7800 `cnf.jwk` (a confirmation method actwarden does not check at the gateway).
CNF_JWK = {"kty": "EC", "crv": "P-256", "x": b64u(CERT_A), "y": b64u(CERT_B)}


def revocation_binding():
    cnf_a = {"x5t#S256": b64u(CERT_A)}
    return [
        case("revoked-jti", "The token's jti is revoked.",
             deny("token_revoked", audit={"jti": "jti-revoked", "sub": "user:alice"}),
             tok(claims=claims(jti="jti-revoked")),
             twin=tw(claims_patch(jti="jti-2"), allow(ids()))),
        case("revoked-subject", "The subject is revoked.", deny("token_revoked"),
             tok(claims=claims(sub="user:mallory")),
             twin=tw(claims_patch(sub="user:bob"), allow(ids(sub="user:bob")))),
        case("revoked-current-actor", "The current actor is revoked.", deny("token_revoked"),
             tok(claims=claims(act={"sub": ROGUE})),
             twin=tw(claims_patch(act={"sub": READER}), allow(ids(chain=[READER])))),
        case("revoked-prior-actor", "A prior actor is revoked.", deny("token_revoked"),
             tok(claims=claims(act=chain_act(ORCH, ROGUE))),
             twin=tw(claims_patch(act=chain_act(ORCH, READER)),
                     allow(ids(chain=[ORCH, READER])))),
        case("binding-ok", "cnf.x5t#S256 matches the peer certificate digest.",
             allow(ids(), audit={"binding": "ok"}),
             tok(claims=claims(cnf=cnf_a)), req(peer=peer(ORCH, CERT_A)),
             twin=tw({"request": {"peer": {"sha256_digest_hex": CERT_B.hex()}}},
                     deny("binding_mismatch"))),
        case("binding-ok-pem", "The peer given as a PEM certificate.",
             allow(ids(), audit={"binding": "ok"}),
             tok(claims=claims(cnf={"x5t#S256": b64u(CERT_C)})), req(peer=peer(pem=PEM_TEXT))),
        case("binding-absent", "No cnf under if_present: binding absent.",
             allow(ids(), audit={"binding": "absent"}), tok(), req(peer=peer(ORCH, CERT_A))),
        case("binding-mismatch", "cnf names another certificate.",
             deny("binding_mismatch", audit={"binding": "mismatch", "sub": "user:alice"}),
             tok(claims=claims(cnf=cnf_a)), req(peer=peer(ORCH, CERT_B)),
             twin=tw({"request": {"peer": {"sha256_digest_hex": CERT_A.hex()}}},
                     allow(ids(), audit={"binding": "ok"}))),
        case("binding-no-peer", "A bound token on a connection without a client "
             "certificate.", deny("binding_mismatch"), tok(claims=claims(cnf=cnf_a)), req(),
             twin=tw({"request": {"peer": peer(digest=CERT_A)}}, allow(ids()))),
        case("binding-peer-without-certificate", "A peer with a URI SAN but no digest.",
             deny("binding_mismatch"), tok(claims=claims(cnf=cnf_a)), req(peer=peer(ORCH))),
        case("binding-unsupported-method", "cnf with only jwk (RFC 7800) cannot be checked "
             "here: refused, not ignored. (cnf.jkt is DPoP: 10-dpop.)", deny("binding_mismatch"),
             tok(claims=claims(cnf={"jwk": CNF_JWK})), req(peer=peer(ORCH, CERT_A)),
             twin=tw(claims_patch(cnf=cnf_a), allow(ids()))),
        case("binding-required-absent", "binding.cnf required and no cnf.",
             deny("binding_required"), tok(), req(peer=peer(ORCH, CERT_A)),
             config="binding-required",
             twin=tw(claims_patch(cnf=cnf_a), allow(ids(), audit={"binding": "ok"}))),
        case("binding-required-mismatch", "binding.cnf required, cnf present, wrong "
             "certificate.", deny("binding_mismatch"), tok(claims=claims(cnf=cnf_a)),
             req(peer=peer(ORCH, CERT_B)), config="binding-required"),
        case("peer-matches-actor", "actor_must_match_peer: the peer is the current actor.",
             allow(ids(chain=[ORCH, READER]), audit={"peer": ORCH}),
             tok(claims=claims(act=chain_act(ORCH, READER))), req(peer=peer(ORCH, CERT_A)),
             config="peer-match",
             twin=tw({"request": {"peer": {"uri_san": READER}}}, deny("peer_mismatch"))),
        case("peer-mismatch-actor", "The peer is another agent.", deny("peer_mismatch"),
             tok(claims=claims(act={"sub": ORCH})), req(peer=peer(BILLING, CERT_A)),
             config="peer-match",
             twin=tw({"request": {"peer": {"uri_san": ORCH}}}, allow(ids(chain=[ORCH])))),
        case("peer-matches-subject", "Not delegated: the peer must be the subject.",
             allow(ids(sub=TD + "/workload/batch", profile="service")),
             tok(claims=claims(sub=TD + "/workload/batch", sub_profile="service")),
             req(peer=peer(TD + "/workload/batch")), config="peer-match",
             twin=tw({"request": {"peer": {"uri_san": ORCH}}}, deny("peer_mismatch"))),
        case("peer-absent", "actor_must_match_peer and no peer at all.",
             deny("peer_mismatch"), tok(claims=claims(act={"sub": ORCH})), req(),
             config="peer-match",
             twin=tw({"request": {"peer": peer(ORCH)}}, allow(ids(chain=[ORCH])))),
    ]


# ------------------------------------------------------------------------------------
# 06: rule requirements (SPEC §4 step 8).

def pay_req(**kw):
    return req("POST", "/v1/payments", **kw)


PAY_IDS = ids(chain=[ORCH], scopes="payments:write invoices:read", rule="pay")


def requirements():
    return [
        case("pay-allowed", "The SPEC's pay rule, everything satisfied: exact identity "
             "headers and audit.",
             allow(PAY_IDS, audit={"rule": "pay", "provider": "corp-sts", "iss": CORP,
                                   "sub": "user:alice", "sub_profile": "user",
                                   "actor": ORCH, "chain": [ORCH], "depth": 1,
                                   "scopes": ["payments:write", "invoices:read"],
                                   "binding": "absent", "kid": "es256-a", "alg": "ES256",
                                   "jti": "jti-1", "method": "POST",
                                   "path": "/v1/payments", "authority": "api.example.com",
                                   "detail": None}),
             tok(claims=pay_claims()), pay_req()),
        case("pay-allowed-two-actors", "Depth 2 is the pay rule's limit.",
             allow(ids(chain=[ORCH, READER], scopes="payments:write invoices:read",
                       rule="pay")),
             tok(claims=pay_claims(act=chain_act(ORCH, READER))), pay_req()),
        case("pay-delegation-required", "delegated: true and no act.",
             deny("delegation_required"), tok(claims=pay_claims(act=None)), pay_req(),
             twin=tw(claims_patch(act={"sub": ORCH}), allow(PAY_IDS))),
        case("transfers-delegation-required", "delegated: true, no act.",
             deny("delegation_required"),
             tok(claims=claims(scope="payments:write")), req("POST", "/v1/transfers"),
             twin=tw(claims_patch(act={"sub": ORCH}),
                     allow(ids(chain=[ORCH], scopes="payments:write", rule="transfers")))),
        case("admin-delegation-forbidden", "delegated: false and an act.",
             deny("delegation_forbidden"), tok(claims=claims(act={"sub": ORCH})),
             req(path="/v1/admin"),
             twin=tw(claims_patch(act=None), allow(ids(rule="admin")))),
        case("admin-human-subject-required", "The subject is an AI agent.",
             deny("human_subject_required"), tok(claims=claims(sub_profile="ai_agent")),
             req(path="/v1/admin"),
             twin=tw(claims_patch(sub_profile="user"), allow(ids(rule="admin")))),
        case("admin-human-subject-no-profile", "No sub_profile: not known to be human.",
             deny("human_subject_required"), tok(claims=claims(sub_profile=None)),
             req(path="/v1/admin")),
        case("admin-human-subject-multi-profile", "sub_profile is space-delimited; every "
             "profile must be human, so `user device` (or `ai_agent user`) is not.",
             deny("human_subject_required"),
             tok(claims=claims(sub_profile="user device")), req(path="/v1/admin"),
             twin=tw(claims_patch(sub_profile="user"),
                     allow(ids(profile="user", rule="admin")))),
        case("pay-human-subject-required", "The pay rule needs a human subject.",
             deny("human_subject_required"), tok(claims=pay_claims(sub_profile="service")),
             pay_req(), twin=tw(claims_patch(sub_profile="user"), allow(PAY_IDS))),
        case("pay-rule-actor-not-allowed", "reader is an allowed agent, but not on the "
             "pay rule.", deny("actor_not_allowed"),
             tok(claims=pay_claims(act={"sub": READER})), pay_req(),
             twin=tw(claims_patch(act={"sub": ORCH}), allow(PAY_IDS))),
        case("pay-rule-chain-too-deep", "The pay rule allows depth 2; this chain has 3.",
             deny("chain_too_deep"),
             tok(claims=pay_claims(act=chain_act(ORCH, READER, BILLING))), pay_req(),
             twin=tw(claims_patch(act=chain_act(ORCH, READER)),
                     allow(ids(chain=[ORCH, READER], scopes="payments:write invoices:read",
                               rule="pay")))),
        case("pay-scope-insufficient", "The token lacks payments:write.",
             deny("scope_insufficient", response_headers={
                 "www-authenticate": 'Bearer error="insufficient_scope", error_description='
                                     '"scope_insufficient", scope="payments:write"'}),
             tok(claims=pay_claims(scope="invoices:read")), pay_req(),
             twin=tw(claims_patch(scope="invoices:read payments:write"),
                     allow(ids(chain=[ORCH], scopes="invoices:read payments:write",
                               rule="pay")))),
        case("invoices-scope-insufficient", "No scope at all.",
             deny("scope_insufficient", audit={"scopes": []}),
             tok(claims=claims(scope=None)), req(path="/v1/invoices/42"),
             twin=tw(claims_patch(scope="invoices:read"), allow(ids(rule="invoices")))),
        case("pay-claim-mismatch", "acr is not the approved one.",
             deny("claim_mismatch"), tok(claims=pay_claims(acr="urn:example:acr:basic")),
             pay_req(), twin=tw(claims_patch(acr=ACR_OK), allow(PAY_IDS))),
        case("pay-claim-missing", "No acr.", deny("claim_mismatch"),
             tok(claims=pay_claims(acr=None)), pay_req()),
        case("pay-claim-array", "acr as an array containing the approved value.",
             allow(PAY_IDS), tok(claims=pay_claims(acr=["urn:example:acr:basic", ACR_OK])),
             pay_req()),
        case("pay-stepup-required", "auth_time 301 s ago; fresh_auth_s 300.",
             deny("stepup_required", response_headers={
                 "www-authenticate": 'Bearer error="insufficient_user_authentication", '
                                     'error_description="stepup_required", max_age="300", '
                                     'acr_values="urn:example:acr:approved"'}),
             tok(claims=pay_claims(auth_time=NOW - 301)), pay_req(),
             twin=tw(claims_patch(auth_time=NOW - 300), allow(PAY_IDS))),
        case("pay-stepup-from-iat", "No auth_time: iat is the authentication time.",
             deny("stepup_required"),
             tok(claims=pay_claims(auth_time=None, iat=NOW - 400, exp=NOW + 600)), pay_req(),
             twin=tw(claims_patch(iat=NOW - 200), allow(PAY_IDS))),
        case("pay-stepup-no-time", "Neither auth_time nor iat.", deny("stepup_required"),
             tok(claims=pay_claims(auth_time=None, iat=None)), pay_req()),
        case("grpc-method-allowed", "A gRPC method is a path.",
             allow(ids(rule="grpc-method")), tok(),
             req("POST", "/pkg.Service/Method", headers={"content-type": "application/grpc"})),
    ]


# ------------------------------------------------------------------------------------
# 07: the order of checks — each case fails two checks; the earlier one is the reason.

def order():
    return [
        case("order-route-before-token", "No rule and no token: route_denied.",
             deny("route_denied"), None, req("DELETE", "/v1/payments"),
             twin=tw({"request": {"method": "POST"}}, deny("token_missing"))),
        case("order-route-before-bad-token", "No rule and a forged token.",
             deny("route_denied", audit={"kid": None, "token_id": None}),
             tok("evil-es256"), req(path="/v2/anything"),
             twin=tw({"request": {"path": "/v1/profile"}}, deny("signature_invalid"))),
        case("order-repeated-before-too-large", "Two tokens, one of them over 16 KiB.",
             deny("token_malformed"), tok(pad_claims_to=17000),
             req(headers={"authorization": ["Bearer {token}", "Bearer x.y.z"]}),
             twin=tw({"request": {"headers": {"authorization": "Bearer {token}"}}},
                     deny("token_too_large"))),
        case("order-too-large-before-malformed", "Over 16 KiB and a header that is not "
             "JSON.", deny("token_too_large"),
             tok(header_json="{not json", pad_claims_to=17000),
             twin=tw({"token": {"pad_claims_to": None}}, deny("token_malformed"))),
        case("order-malformed-before-issuer", "Duplicate header member and an unknown "
             "issuer.", deny("token_malformed"),
             tok(header_json='{"alg":"ES256","alg":"ES256","kid":"es256-a"}',
                 claims=claims(iss="https://evil.example.com")),
             twin=tw({"token": {"header_json": None}}, deny("issuer_unknown"))),
        case("order-issuer-before-alg-none", "Unknown issuer and alg none.",
             deny("issuer_unknown"),
             tok(None, alg="none", signature="empty",
                 claims=claims(iss="https://evil.example.com")),
             twin=tw(claims_patch(iss=CORP), deny("alg_not_allowed"))),
        case("order-issuer-before-type", "Unknown issuer and typ secevent+jwt.",
             deny("issuer_unknown"),
             tok(header={"typ": "secevent+jwt"}, claims=claims(iss="https://evil.example.com")),
             twin=tw(claims_patch(iss=CORP), deny("type_not_allowed"))),
        case("order-type-before-alg", "typ secevent+jwt and alg ES512.",
             deny("type_not_allowed"),
             tok(header={"typ": "secevent+jwt"}, alg="ES512", sign_alg="ES256"),
             twin=tw({"token": {"header": None}}, deny("alg_not_allowed"))),
        case("order-alg-before-jwks", "alg ES512 at a provider without keys.",
             deny("alg_not_allowed"),
             tok(alg="ES512", sign_alg="ES256", claims=claims(iss=REMOTE_ISS)),
             config="remote",
             twin=tw({"token": {"alg": None, "sign_alg": None}}, deny("jwks_unavailable"))),
        case("order-jwks-before-kid", "An unknown kid at a provider without keys.",
             deny("jwks_unavailable"),
             tok(header={"kid": "nope"}, claims=claims(iss=REMOTE_ISS)), config="remote",
             twin=tw({"remote_jwks": {"remote-sts": ["es256-a"]}}, deny("kid_unknown"))),
        case("order-kid-before-signature", "Unknown kid and a flipped signature.",
             deny("kid_unknown"), tok(header={"kid": "nope"}, signature="flipped"),
             twin=tw({"token": {"header": None}}, deny("signature_invalid"))),
        case("order-key-alg-before-signature", "ES256 on the RSA key and a forged "
             "signature.", deny("alg_not_allowed"),
             tok("rsa-a", signer="evil-es256", alg="ES256"),
             twin=tw({"token": {"key": "es256-a"}}, deny("signature_invalid"))),
        case("order-signature-before-claim-type", "Bad signature and exp: \"never\".",
             deny("signature_invalid"), tok(signature="flipped", claims=claims(exp="never")),
             twin=tw({"token": {"signature": None}}, deny("claim_invalid"))),
        case("order-signature-before-expired", "Bad signature and expired.",
             deny("signature_invalid"),
             tok("evil-es256", claims=claims(iat=NOW - 7200, exp=NOW - 3600)),
             twin=tw({"token": {"key": "es256-a"}}, deny("token_expired"))),
        case("order-claim-type-before-audience", "nbf: \"0\" and a wrong audience.",
             deny("claim_invalid"), tok(claims=claims(nbf="0", aud="other-api")),
             twin=tw(claims_patch(nbf=NOW - 60), deny("audience_mismatch"))),
        case("order-audience-before-expired", "Wrong audience and expired.",
             deny("audience_mismatch"),
             tok(claims=claims(aud="other-api", iat=NOW - 7200, exp=NOW - 3600)),
             twin=tw(claims_patch(aud=AUD), deny("token_expired"))),
        case("order-expired-before-not-yet-valid", "Expired and nbf in the future.",
             deny("token_expired"), tok(claims=claims(exp=NOW - 3600, nbf=NOW + 3600)),
             twin=tw(claims_patch(exp=NOW + 3500), deny("token_not_yet_valid"))),
        case("order-not-yet-valid-before-lifetime", "iat in the future and a lifetime "
             "over the limit.", deny("token_not_yet_valid"),
             tok(claims=claims(iat=NOW + 600, exp=NOW + 600 + 7200)),
             twin=tw(claims_patch(iat=NOW), deny("lifetime_too_long"))),
        case("order-lifetime-before-chain", "Lifetime too long and a chain too deep.",
             deny("lifetime_too_long"),
             tok(act_depth=6, claims=claims(iat=NOW - 60, exp=NOW + 7200)),
             twin=tw(claims_patch(exp=NOW + 600), deny("chain_too_deep"))),
        case("order-chain-too-deep-before-cycle", "Six actors with a repeat.",
             deny("chain_too_deep"),
             tok(claims=claims(act=chain_act(ORCH, BILLING, ORCH, READER, ORCH, BILLING))),
             twin=tw(claims_patch(act=chain_act(ORCH, BILLING, ORCH)), deny("actor_cycle"))),
        case("order-cycle-before-trust-domain", "A repeat of an actor outside the trust "
             "domain.", deny("actor_cycle"),
             tok(claims=claims(act=chain_act("spiffe://evil.example.com/a",
                                              "spiffe://evil.example.com/a"))),
             twin=tw(claims_patch(act={"sub": "spiffe://evil.example.com/a"}),
                     deny("trust_domain_mismatch"))),
        case("order-trust-domain-before-actor-allowlist", "An actor outside the trust "
             "domain is also not listed.", deny("trust_domain_mismatch"),
             tok(claims=claims(act={"sub": "spiffe://evil.example.com/agent/x"})),
             twin=tw(claims_patch(act={"sub": UNLISTED}), deny("actor_not_allowed"))),
        case("order-actor-allowlist-before-may-act", "An unlisted actor that may_act does "
             "not name.", deny("actor_not_allowed"),
             tok(claims=claims(act={"sub": UNLISTED}, may_act={"sub": ORCH})),
             twin=tw(claims_patch(act={"sub": BILLING}), deny("may_act_violation"))),
        case("order-may-act-before-revoked", "may_act violated and the jti revoked.",
             deny("may_act_violation"),
             tok(claims=claims(act={"sub": BILLING}, may_act={"sub": ORCH},
                               jti="jti-revoked")),
             twin=tw(claims_patch(may_act=None), deny("token_revoked"))),
        case("order-revoked-before-binding", "Revoked and bound to another certificate.",
             deny("token_revoked"),
             tok(claims=claims(jti="jti-revoked", cnf={"x5t#S256": b64u(CERT_A)})),
             req(peer=peer(ORCH, CERT_B)),
             twin=tw(claims_patch(jti="jti-2"), deny("binding_mismatch"))),
        case("order-binding-required-before-requirements", "No cnf (required) and no "
             "scope.", deny("binding_required"), tok(claims=claims(scope=None)),
             req(path="/v1/invoices"), config="binding-required",
             twin=tw(claims_patch(cnf={"x5t#S256": b64u(CERT_A)}),
                     deny("binding_mismatch"))),
        case("order-binding-before-peer", "Wrong certificate and a wrong peer identity.",
             deny("binding_mismatch"),
             tok(claims=claims(act={"sub": ORCH}, cnf={"x5t#S256": b64u(CERT_A)})),
             req(peer=peer(BILLING, CERT_B)), config="peer-match",
             twin=tw({"request": {"peer": {"sha256_digest_hex": CERT_A.hex()}}},
                     deny("peer_mismatch"))),
        case("order-peer-before-delegation", "Wrong peer and no act on the pay rule.",
             deny("peer_mismatch"), tok(claims=pay_claims(act=None)),
             pay_req(peer=peer(BILLING)), config="peer-match",
             twin=tw({"request": {"peer": {"uri_san": "user:alice"}}},
                     deny("delegation_required"))),
        case("order-delegation-before-human", "No act and not a human subject.",
             deny("delegation_required"),
             tok(claims=pay_claims(act=None, sub_profile="ai_agent")), pay_req(),
             twin=tw(claims_patch(act={"sub": ORCH}), deny("human_subject_required"))),
        case("order-forbidden-before-human", "An act on a delegated:false route and not "
             "human.", deny("delegation_forbidden"),
             tok(claims=claims(act={"sub": ORCH}, sub_profile="ai_agent")),
             req(path="/v1/admin"),
             twin=tw(claims_patch(act=None), deny("human_subject_required"))),
        case("order-human-before-rule-actor", "Not human and the wrong actor.",
             deny("human_subject_required"),
             tok(claims=pay_claims(sub_profile="service", act={"sub": READER})), pay_req(),
             twin=tw(claims_patch(sub_profile="user"), deny("actor_not_allowed"))),
        case("order-rule-actor-before-rule-depth", "Wrong current actor and a chain over "
             "the rule's depth.", deny("actor_not_allowed"),
             tok(claims=pay_claims(act=chain_act(READER, ORCH, BILLING))), pay_req(),
             twin=tw(claims_patch(act=chain_act(ORCH, READER, BILLING)),
                     deny("chain_too_deep"))),
        case("order-rule-depth-before-scope", "A chain over the rule's depth and no "
             "payments:write.", deny("chain_too_deep"),
             tok(claims=pay_claims(act=chain_act(ORCH, READER, BILLING),
                                   scope="invoices:read")), pay_req(),
             twin=tw(claims_patch(act={"sub": ORCH}), deny("scope_insufficient"))),
        case("order-scope-before-actor-scope", "payments:write missing from the token, "
             "and billing's ceiling would remove it anyway.", deny("scope_insufficient"),
             tok(claims=claims(scope="invoices:read", act={"sub": BILLING})),
             req("POST", "/v1/transfers"),
             twin=tw(claims_patch(scope="invoices:read payments:write"),
                     deny("actor_scope_exceeded"))),
        case("order-scope-before-claim", "No payments:write and the wrong acr.",
             deny("scope_insufficient"),
             tok(claims=pay_claims(scope="invoices:read", acr="urn:example:acr:basic")),
             pay_req(), twin=tw(claims_patch(scope="payments:write"), deny("claim_mismatch"))),
        case("order-claim-before-stepup", "The wrong acr and an old authentication.",
             deny("claim_mismatch"),
             tok(claims=pay_claims(acr="urn:example:acr:basic", auth_time=NOW - 3000)),
             pay_req(), twin=tw(claims_patch(acr=ACR_OK), deny("stepup_required"))),
    ]


# ------------------------------------------------------------------------------------
# 08: responses, identity headers and audit (SPEC §4 responses, §5, §6).

def grpc_req(path="/pkg.Service/Method"):
    return req("POST", path, headers={"content-type": "application/grpc+proto"})


def responses():
    return [
        case("response-401-invalid-token", "A 401 names the reason in error_description.",
             deny("kid_unknown", response_status=401, response_headers={
                 "www-authenticate": INVALID.format("kid_unknown"),
                 "content-type": "application/json"}),
             tok(header={"kid": "nope"})),
        case("response-403-no-scope-param", "A 403 that is not about scopes has no scope "
             "parameter.",
             deny("delegation_forbidden", response_status=403, response_headers={
                 "www-authenticate": 'Bearer error="insufficient_scope", '
                                     'error_description="delegation_forbidden"'}),
             tok(claims=claims(act={"sub": ORCH})), req(path="/v1/admin")),
        case("response-503", "jwks_unavailable is a 503.",
             deny("jwks_unavailable", response_status=503),
             tok(claims=claims(iss=REMOTE_ISS)), config="remote"),
        case("grpc-401", "gRPC: HTTP 200, grpc-status 16 (UNAUTHENTICATED).",
             deny("token_missing", response_status=200,
                  response_headers={"grpc-status": "16", "grpc-message": "token_missing"}),
             None, grpc_req(),
             twin=tw({"token": tok()}, allow(ids(rule="grpc-method")))),
        case("grpc-401-expired", "gRPC token_expired.",
             deny("token_expired", response_status=200,
                  response_headers={"grpc-status": "16", "grpc-message": "token_expired"}),
             tok(claims=claims(iat=NOW - 7200, exp=NOW - 3600)), grpc_req()),
        case("grpc-403", "gRPC: grpc-status 7 (PERMISSION_DENIED).",
             deny("scope_insufficient", response_status=200,
                  response_headers={"grpc-status": "7", "grpc-message": "scope_insufficient"}),
             tok(claims=claims(scope="payments:read")), grpc_req(),
             twin=tw(claims_patch(scope="invoices:read"), allow(ids(rule="grpc-method")))),
        case("grpc-503", "gRPC: grpc-status 14 (UNAVAILABLE).",
             deny("jwks_unavailable", response_status=200,
                  response_headers={"grpc-status": "14", "grpc-message": "jwks_unavailable"}),
             tok(claims=claims(iss=REMOTE_ISS)), grpc_req(), config="remote",
             twin=tw({"remote_jwks": {"remote-sts": ["es256-a"]}},
                     allow(ids(iss=REMOTE_ISS, rule="any")))),
        case("grpc-route-denied", "gRPC route_denied.",
             deny("route_denied", response_status=200,
                  response_headers={"grpc-status": "7", "grpc-message": "route_denied"}),
             tok(), grpc_req("/pkg.Service/Other")),
        case("spoofed-identity-headers", "Inbound x-agent-* headers never reach the "
             "forwarded identity.",
             allow(ids(chain=[ORCH])), tok(claims=claims(act={"sub": ORCH})),
             req(headers={"x-agent-subject": "user:admin",
                          "X-Agent-Chain": TD + "/agent/root",
                          "x-agent-scopes": "admin:all"})),
        case("spoofed-identity-headers-deny", "Spoofed identity on a denied request.",
             deny("token_missing", audit={"sub": None, "actor": None}), None,
             req(headers={"x-agent-subject": "user:admin", "X-Agent-Actor": ORCH}),
             twin=tw({"token": tok()}, allow(ids()))),
        case("audit-request-fields", "request_id, trace_id, authority and peer are "
             "recorded.",
             allow(ids(), audit={"request_id": "req-42",
                                 "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                                 "authority": "api.example.com", "peer": READER,
                                 "method": "GET", "path": "/v1/profile",
                                 "decision": "allow", "reason": "allowed",
                                 "status": None}),
             tok(), req(headers={"x-request-id": "req-42",
                                 "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                                "00f067aa0ba902b7-01"},
                        peer=peer(READER))),
        case("audit-deny-fields", "A verified but denied token: identity in the audit, "
             "detail present.",
             deny("actor_scope_exceeded",
                  audit={"decision": "deny", "status": 403, "rule": "transfers",
                         "provider": "corp-sts", "iss": CORP, "sub": "user:alice",
                         "sub_profile": "user", "actor": BILLING, "chain": [BILLING],
                         "depth": 1, "scopes": ["invoices:read"], "jti": "jti-1",
                         "kid": "es256-a", "alg": "ES256", "binding": "absent"}),
             tok(claims=claims(scope="payments:write invoices:read", act={"sub": BILLING})),
             req("POST", "/v1/transfers")),
        case("audit-claim-invalid-has-no-identity", "Identity fields come only from claims "
             "that passed their type checks.",
             deny("claim_invalid", audit={"sub": None, "iss": None, "chain": None,
                                          "provider": "corp-sts", "kid": "es256-a"}),
             tok(claims=claims(exp="never"))),
        case("audit-kid-truncated", "An unverified kid is recorded, bounded to 128 bytes.",
             deny("kid_unknown", audit={"kid": "k" * 128}), tok(header={"kid": "k" * 300})),
        case("audit-depth-not-delegated", "depth 0 and an empty chain without act.",
             allow(ids(), audit={"depth": 0, "chain": [], "actor": None}), tok()),
    ]


# ------------------------------------------------------------------------------------
# 09: shadow mode (SPEC §11): the real decision, `enforced` says whether it was applied.

def shadowed(expect, enforced):
    e = copy.deepcopy(expect)
    e.setdefault("audit", {})["enforced"] = enforced
    return e


SPOOF = {"x-agent-subject": "user:spoofed"}


def shadow():
    return [
        case("shadow-default-enforce", "Without `mode`, a policy enforces: every record says "
             "enforced true.",
             shadowed(deny("token_missing"), True), None, req(),
             twin=tw({"token": tok()}, shadowed(allow(ids()), True))),
        case("shadow-rule-denial-forwarded", "A denial under a shadow rule keeps its real "
             "reason and status but is not enforced; spoofed identity is still stripped and "
             "none is added.",
             shadowed(deny("token_missing"), False), None, req(headers=SPOOF),
             config="shadow-rule",
             twin=tw({"token": tok()}, shadowed(allow(ids()), False))),
        case("shadow-rule-expired", "A bad token under a shadow rule: the real reason, not "
             "enforced.",
             shadowed(deny("token_expired"), False),
             tok(claims=claims(iat=NOW - 7200, exp=NOW - 3600)), config="shadow-rule",
             twin=tw(claims_patch(iat=NOW - 60, exp=NOW + 600), shadowed(allow(ids()), False))),
        case("shadow-rule-others-enforce", "Only the shadow rule is in shadow: another rule "
             "of the same policy enforces.",
             shadowed(deny("scope_insufficient"), True),
             tok(claims=claims(scope="payments:read")), req(path="/v1/invoices"),
             config="shadow-rule",
             twin=tw({"request": {"path": "/v1/profile"}},
                     shadowed(allow(ids(scopes="payments:read")), False))),
        case("shadow-policy-route-denied", "No rule matched: the policy's mode applies.",
             shadowed(deny("route_denied"), False), None, req(path="/v2/unknown"),
             config="shadow-policy",
             twin=tw({"request": {"path": "/v1/profile"}, "token": tok()},
                     shadowed(allow(ids()), False))),
        case("shadow-policy-rule-enforces", "A rule's own `mode: enforce` wins over a shadow "
             "policy.",
             shadowed(deny("token_missing"), True), None, pay_req(), config="shadow-policy",
             twin=tw({"token": tok(claims=pay_claims())},
                     shadowed(allow(PAY_IDS), True))),
    ]


# ------------------------------------------------------------------------------------
# 10: DPoP (SPEC §10), config `dpop`: corp-sts allows it, partner-sts requires it (ES256).

DPOP_ALGS = 'algs="ES256 EdDSA"'


def dpop_challenge(reason, error="invalid_dpop_proof"):
    return {"www-authenticate":
            f'DPoP error="{error}", error_description="{reason}", {DPOP_ALGS}'}


def dp_req(method="GET", path="/v1/profile", headers=None, **kw):
    h = {"authorization": "DPoP {token}"}
    h.update(headers or {})
    return req(method, path, h, **kw)


def bound(key="agent-es256", **over):
    return tok(claims=claims(**over), cnf_jkt_of=key)


def proof(key="agent-es256", **kw):
    p = {"key": key}
    p.update(kw)
    return p


def agent_private_jwk():
    with open(os.path.join(CORPUS, "keys.json")) as f:
        return json.load(f)["agent-es256"]


def dpop():
    D = {"config": "dpop"}
    return [
        case("dpop-ok", "A token bound to the agent's key (cnf.jkt), sent with the DPoP "
             "scheme and a proof signed by that key.",
             allow(ids(), audit={"binding": "dpop"}), bound(), dp_req(), dpop=proof(),
             twin=tw({"dpop": {"key": "agent-ed"}}, deny("dpop_invalid")), **D),
        case("dpop-ed25519", "An Ed25519 proof key.", allow(ids(), audit={"binding": "dpop"}),
             bound("agent-ed"), dp_req(), dpop=proof("agent-ed"),
             twin=tw({"token": {"cnf_jkt_of": "agent-es256"}}, deny("dpop_invalid")), **D),
        case("dpop-bound-token-as-bearer", "A DPoP-bound token copied and sent as a "
             "bearer token, without the agent's key (RFC 9449 §7.1).",
             deny("dpop_required", response_headers=dpop_challenge("dpop_required"),
                  audit={"binding": "not_checked"}),
             bound(), req(),
             twin=tw({"token": {"cnf_jkt_of": None}}, allow(ids(), audit={"binding": "absent"})),
             **D),
        case("dpop-required-bearer", "partner-sts requires DPoP: an unbound bearer token "
             "is refused.",
             deny("dpop_required", response_headers=dpop_challenge("dpop_required")),
             tok("es256-b", claims=claims(iss=PARTNER)), req(path="/v1/partner"),
             twin=tw({"token": {"cnf_jkt_of": "agent-es256"},
                      "request": {"headers": {"authorization": "DPoP {token}"}},
                      "dpop": proof()},
                     allow(ids(iss=PARTNER, rule="partner"), audit={"binding": "dpop"})),
             **D),
        case("dpop-replayed", "The same proof a second time (the host decides the request "
             "once before; in Envoy the window is shared by every worker).",
             deny("dpop_replayed", response_headers=dpop_challenge("dpop_replayed")),
             bound(), dp_req(), dpop=proof(replay=True),
             twin=tw({"dpop": {"replay": None}}, allow(ids())), **D),
        case("dpop-no-proof", "The DPoP scheme without a dpop header.",
             deny("dpop_invalid", response_headers=dpop_challenge("dpop_invalid")),
             bound(), dp_req(),
             twin=tw({"dpop": proof()}, allow(ids())), **D),
        case("dpop-two-proofs", "Two dpop headers: a request carries exactly one proof.",
             deny("dpop_invalid"), bound(), dp_req(headers={"dpop": ["{dpop}", "{dpop}"]}),
             dpop=proof(),
             twin=tw({"request": {"headers": {"dpop": "{dpop}"}}}, allow(ids())), **D),
        case("dpop-htm", "htm POST on a GET.", deny("dpop_invalid"), bound(), dp_req(),
             dpop=proof(htm="POST"), twin=tw({"dpop": {"htm": None}}, allow(ids())), **D),
        case("dpop-htu-normalised", "htu with an upper-case scheme and host, the default "
             "port, a query and a fragment is the request URI.", allow(ids()), bound(),
             dp_req(path="/v1/profile?page=2"),
             dpop=proof(htu="HTTPS://API.Example.COM:443/v1/profile?other#frag"),
             twin=tw({"dpop": {"htu": "https://api.example.com:8443/v1/profile"}},
                     deny("dpop_invalid")), **D),
        case("dpop-scheme-http", "The request view's scheme (Envoy :scheme, REQUEST.json "
             "`scheme`) is compared with htu.", allow(ids()), bound(),
             dict(dp_req(), scheme="http"), dpop=proof(htu="http://api.example.com/v1/profile"),
             twin=tw({"request": {"scheme": "https"}}, deny("dpop_invalid")), **D),
        case("dpop-iat-too-old", "iat more than max_age_s + clock_skew_s (120 s) ago.",
             deny("dpop_invalid"), bound(), dp_req(), dpop=proof(iat_offset_s=-121),
             twin=tw({"dpop": {"iat_offset_s": -120}}, allow(ids())), **D),
        case("dpop-iat-future", "iat more than 120 s ahead.",
             deny("dpop_invalid"), bound(), dp_req(), dpop=proof(iat_offset_s=121),
             twin=tw({"dpop": {"iat_offset_s": 120}}, allow(ids())), **D),
        case("dpop-ath", "ath is not the hash of this token.", deny("dpop_invalid"), bound(),
             dp_req(), dpop=proof(ath=b64u(hashlib.sha256(b"another token").digest())),
             twin=tw({"dpop": {"ath": None}}, allow(ids())), **D),
        case("dpop-no-jti", "A proof without jti.", deny("dpop_invalid"), bound(), dp_req(),
             dpop=proof(claims={"jti": None}), twin=tw({"dpop": {"claims": None}}, allow(ids())),
             **D),
        case("dpop-typ", "typ jwt instead of dpop+jwt.", deny("dpop_invalid"), bound(),
             dp_req(), dpop=proof(header={"typ": "jwt"}),
             twin=tw({"dpop": {"header": {"typ": "application/dpop+jwt"}}}, allow(ids())),
             **D),
        case("dpop-alg-not-allowed", "An ES384 proof: not in the default dpop.algorithms.",
             deny("dpop_invalid"), bound("es384-a"), dp_req(), dpop=proof("es384-a"),
             twin=tw({"token": {"cnf_jkt_of": "agent-es256"}, "dpop": {"key": "agent-es256"}},
                     allow(ids())), **D),
        case("dpop-signed-by-token-key", "The proof names the agent's key but is signed "
             "with the issuer's token key.", deny("dpop_invalid"), bound(), dp_req(),
             dpop=proof(signer="es256-a"), twin=tw({"dpop": {"signer": None}}, allow(ids())),
             **D),
        case("dpop-proof-of-token-key", "A proof made entirely with the issuer's token key: "
             "its thumbprint is not the token's cnf.jkt.", deny("dpop_invalid"), bound(),
             dp_req(), dpop=proof("es256-a"),
             twin=tw({"dpop": {"key": "agent-es256"}}, allow(ids())), **D),
        case("dpop-alg-confusion", "alg RS256 in a proof whose jwk is the agent's EC key "
             "(signed with an RSA key): the jwk must fit the alg.", deny("dpop_invalid"),
             bound(), dp_req(), dpop=proof(signer="rsa-a", alg="RS256"),
             twin=tw({"dpop": {"signer": None, "alg": None}}, allow(ids())), **D),
        case("dpop-private-jwk", "The proof's jwk holds the private key.",
             deny("dpop_invalid"), bound(), dp_req(),
             dpop=proof(header={"jwk": agent_private_jwk()}),
             twin=tw({"dpop": {"header": None}}, allow(ids())), **D),
        case("dpop-flipped-signature", "The proof signature does not verify.",
             deny("dpop_invalid"), bound(), dp_req(), dpop=proof(signature="flipped"),
             twin=tw({"dpop": {"signature": None}}, allow(ids())), **D),
        case("dpop-proof-too-large", "A proof over the 8 KiB budget.", deny("dpop_invalid"),
             bound(), dp_req(), dpop=proof(claims={"pad": "x" * 9000}),
             twin=tw({"dpop": {"claims": None}}, allow(ids())), **D),
        case("dpop-unbound-token", "A valid proof for a token without cnf.jkt: nothing "
             "binds the token to the key.", deny("dpop_invalid"), tok(), dp_req(),
             dpop=proof(), twin=tw({"token": {"cnf_jkt_of": "agent-es256"}}, allow(ids())),
             **D),
        case("dpop-other-401-challenge", "Any 401 on a DPoP request challenges with DPoP.",
             deny("token_expired", response_headers=dpop_challenge("token_expired",
                                                                    "invalid_token")),
             bound(exp=NOW - 3600, iat=NOW - 4000), dp_req(), dpop=proof(),
             twin=tw({"token": {"claims": {"exp": NOW + 600, "iat": NOW - 60}}},
                     allow(ids())), **D),
        case("order-revocation-before-dpop", "A revoked token without its proof: "
             "revocation (step 6) comes before DPoP (start of step 7).",
             deny("token_revoked"), bound(jti="jti-revoked"), dp_req(),
             twin=tw({"token": {"claims": {"jti": "jti-1"}}}, deny("dpop_invalid")), **D),
        case("dpop-jkt-as-bearer-dpop-off", "cnf.jkt as a bearer token where DPoP is off "
             "(config main): still never a bearer token.", deny("dpop_required"),
             bound(), req(peer=peer(ORCH, CERT_A)), config="main",
             twin=tw({"token": {"cnf_jkt_of": None, "claims": {"cnf": {"x5t#S256": b64u(CERT_A)}}}},
                     allow(ids(), audit={"binding": "ok"}))),
        case("order-dpop-before-binding", "A DPoP-bound token sent as bearer under "
             "binding.cnf = required would also fail later checks; dpop_required is first.",
             deny("dpop_required"), bound(), req(), config="binding-required",
             twin=tw({"token": {"cnf_jkt_of": None}}, deny("binding_required"))),
    ]


# ---------------------------------------------------------------------------------------
# 11-mcp: SPEC §9. Config `mcp`: tools/call create_payment (payments:write, delegated,
# amount 1..1000, currency EUR|USD, no debug), invoices.* (invoices:read, customer = sub),
# admin_* (scope admin), everything else on /mcp needs a valid token.

MCP_AUD = "https://api.example.com/mcp"
META_URL = "https://api.example.com/.well-known/oauth-protected-resource/mcp"


def rpc(method, params=None, id=1):
    m = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m, separators=(",", ":"))


def call(name, arguments=None, id=1):
    params = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return rpc("tools/call", params, id)


def mcp_req(body=None, headers=None, body_base64=None, method="POST", path="/mcp"):
    r = req(method, path, headers=headers)
    if body is not None:
        r["body"] = body
    if body_base64 is not None:
        r["body_base64"] = base64.b64encode(body_base64).decode()
    return r


def mcp_tok(**over):
    """The orchestrator acting for alice, audience the MCP resource."""
    return tok(claims=merged(pay_claims(aud=MCP_AUD), over))


PAY = {"amount": 500, "currency": "EUR"}
TOOLS = json.dumps({"jsonrpc": "2.0", "id": 7, "result": {"tools": [
    {"name": "create_payment", "inputSchema": {"type": "object"}},
    {"name": "invoices.get", "inputSchema": {"type": "object"}},
    {"name": "admin_reset", "inputSchema": {"type": "object"}},
    {"name": "ping_tool", "inputSchema": {"type": "object"}},
]}}, separators=(",", ":"))


def mcp_allow(rule, method="tools/call", name=None, scopes="payments:write invoices:read",
              chain=(ORCH,)):
    return allow(headers=ids(rule=rule, scopes=scopes, chain=chain),
                 audit={"mcp_method": method, "mcp_name": name, "rule": rule})


def mcp_deny(reason, method=None, name=None, **kw):
    audit = kw.pop("audit", {})
    audit.update({"mcp_method": method, "mcp_name": name})
    return deny(reason, audit=audit, **kw)


def mcp_case(name, about, expect, body=None, twin=None, token="default", **kw):
    request = kw.pop("request", None) or mcp_req(body)
    return case(name, about, expect, token=mcp_tok() if token == "default" else token,
                request=request, config="mcp", twin=twin, **kw)


def mcp():
    malformed = lambda name, about, body=None, **kw: mcp_case(
        name, about, mcp_deny("mcp_malformed", response_status=400), body=body, **kw)
    fixed = tw({"request": {"body": call("create_payment", PAY), "body_base64": None}},
               mcp_allow("mcp-payments", name="create_payment"))
    return [
        mcp_case("mcp-call-allowed",
                 "A delegated payments tool call within its argument caps passes; the audit names the tool.",
                 mcp_allow("mcp-payments", name="create_payment"),
                 body=call("create_payment", PAY),
                 twin=tw({"request": {"body": call("create_payment", {"amount": 5000, "currency": "EUR"})}},
                         mcp_deny("argument_denied", "tools/call", "create_payment"))),
        mcp_case("mcp-argument-over-cap",
                 "The sub-agent asks for 5000 against a cap of 1000: argument_denied, the value never logged.",
                 mcp_deny("argument_denied", "tools/call", "create_payment",
                          audit={"detail": "tool argument `/amount` fails its `max` condition"}),
                 body=call("create_payment", {"amount": 5000, "currency": "EUR"}),
                 twin=tw({"request": {"body": call("create_payment", {"amount": 1000, "currency": "EUR"})}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-argument-min",
                 "A zero amount fails `min` (the second condition on the same pointer).",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment", {"amount": 0, "currency": "EUR"}),
                 twin=tw({"request": {"body": call("create_payment", {"amount": 1, "currency": "EUR"})}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-argument-wrong-type",
                 "An amount given as a string fails `max`: a value of the wrong type fails every test but absent.",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment", {"amount": "500", "currency": "EUR"}),
                 twin=tw({"request": {"body": call("create_payment", PAY)}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-argument-missing",
                 "No amount at all: a pointer that does not resolve fails `max`.",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment", {"currency": "EUR"})),
        mcp_case("mcp-argument-no-arguments",
                 "A tools/call without `arguments` fails every condition but `absent`.",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment")),
        mcp_case("mcp-argument-one-of",
                 "GBP is not one of EUR and USD.",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment", {"amount": 5, "currency": "GBP"}),
                 twin=tw({"request": {"body": call("create_payment", {"amount": 5, "currency": "USD"})}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-argument-absent",
                 "A `debug` argument the rule says must be absent is present (even as null).",
                 mcp_deny("argument_denied", "tools/call", "create_payment"),
                 body=call("create_payment", {"amount": 5, "currency": "EUR", "debug": None}),
                 twin=tw({"request": {"body": call("create_payment", {"amount": 5, "currency": "EUR"})}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-argument-equals-claim",
                 "invoices.get for another customer than the token's subject: equals_claim fails.",
                 mcp_deny("argument_denied", "tools/call", "invoices.get"),
                 body=call("invoices.get", {"customer": "user:bob"}),
                 twin=tw({"request": {"body": call("invoices.get", {"customer": "user:alice"})}},
                         mcp_allow("mcp-invoices", name="invoices.get"))),
        mcp_case("mcp-name-prefix-rule",
                 "`admin_*` matches admin_reset by prefix; nobody holds `admin`.",
                 mcp_deny("scope_insufficient", "tools/call", "admin_reset",
                          response_headers={"www-authenticate": 'Bearer error="insufficient_scope", error_description="scope_insufficient", scope="admin"'}),
                 body=call("admin_reset", {}),
                 twin=tw({"request": {"body": call("adminreset", {})}},
                         mcp_allow("mcp-session", name="adminreset"))),
        mcp_case("mcp-scope-by-tool",
                 "A token with invoices:read only may list tools but not call create_payment: the body, not the path, picks the rule.",
                 mcp_deny("scope_insufficient", "tools/call", "create_payment"),
                 body=call("create_payment", PAY),
                 token=mcp_tok(scope="invoices:read"),
                 twin=tw({"request": {"body": rpc("tools/list", id=7)}},
                         mcp_allow("mcp-session", method="tools/list", scopes="invoices:read"))),
        mcp_case("mcp-sub-agent-ceiling",
                 "The billing sub-agent holds payments:write in its token, but its ceiling removes it.",
                 mcp_deny("actor_scope_exceeded", "tools/call", "create_payment"),
                 body=call("create_payment", PAY),
                 token=mcp_tok(act={"sub": BILLING, "act": {"sub": ORCH}}),
                 twin=tw({"request": {"body": call("invoices.get", {"customer": "user:alice"})}},
                         mcp_allow("mcp-invoices", name="invoices.get", scopes="invoices:read",
                                   chain=(BILLING, ORCH)))),
        mcp_case("mcp-body-too-large",
                 "A tool call over mcp.max_body_bytes (4096) is refused with 413 before anything else.",
                 mcp_deny("mcp_body_too_large", response_status=413),
                 body=call("create_payment", {"amount": 5, "currency": "EUR", "memo": "x" * 5000}),
                 token=None,
                 twin=tw({"request": {"body": call("create_payment", {"amount": 5, "currency": "EUR", "memo": "x" * 100})}},
                         mcp_deny("token_missing", "tools/call", "create_payment"))),
        mcp_case("mcp-huge-arguments",
                 "Huge `arguments` (an array of 10 000 numbers) hit the body budget: 413, nothing parsed.",
                 mcp_deny("mcp_body_too_large"),
                 body=call("create_payment", {"amount": list(range(10000))})),
        malformed("mcp-not-json", "A body that is not JSON.", body="amount=5000",
                  twin=fixed),
        malformed("mcp-truncated", "A truncated JSON-RPC object.",
                  body=call("create_payment", PAY)[:-7]),
        malformed("mcp-empty-body", "A POST to the endpoint without a body.", body=""),
        mcp_case("mcp-no-body",
                 "No body at all (the request JSON has no `body`): malformed, never forwarded.",
                 mcp_deny("mcp_malformed"), request=mcp_req()),
        mcp_case("mcp-not-utf8",
                 "A body with invalid UTF-8 inside a string.",
                 mcp_deny("mcp_malformed"),
                 request=mcp_req(body_base64=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_payment\xff"}}'),
                 twin=fixed),
        malformed("mcp-batch", "A JSON-RPC batch (removed from MCP) is not one message.",
                  body="[" + call("create_payment", PAY) + "]"),
        malformed("mcp-no-jsonrpc", "No `jsonrpc: 2.0`.",
                  body=json.dumps({"id": 1, "method": "tools/call", "params": {"name": "create_payment"}})),
        malformed("mcp-neither", "Neither method nor result/error.", body='{"jsonrpc":"2.0","id":1}'),
        malformed("mcp-duplicate-name",
                  "Two `name` members: one parser would see invoices.get, another create_payment.",
                  body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"invoices.get","name":"create_payment","arguments":{"customer":"user:alice"}}}',
                  twin=fixed),
        malformed("mcp-duplicate-method", "Two `method` members.",
                  body='{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"create_payment"}}'),
        malformed("mcp-name-control-chars", "A tool name with a control character.",
                  body=call("create_payment\u0007", PAY)),
        malformed("mcp-name-not-string", "A tool name that is a number.",
                  body=rpc("tools/call", {"name": 5})),
        malformed("mcp-arguments-not-object", "`arguments` that is an array.",
                  body=rpc("tools/call", {"name": "create_payment", "arguments": [500]})),
        malformed("mcp-deep-nesting", "Arguments nested 5000 levels deep: refused by the nesting budget, no stack overflow.",
                  body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":' + "[" * 1000 + "]" * 1000 + "}}}"),
        mcp_case("mcp-header-mismatch-method",
                 "`mcp-method: tools/list` on a body that calls a tool: the body decides, the disagreement is refused.",
                 mcp_deny("mcp_header_mismatch", response_status=400),
                 request=mcp_req(call("create_payment", PAY), headers={"mcp-method": "tools/list"}),
                 twin=tw({"request": {"headers": {"mcp-method": "tools/call"}}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-header-mismatch-name",
                 "`mcp-name` naming another tool than the body.",
                 mcp_deny("mcp_header_mismatch"),
                 request=mcp_req(call("create_payment", PAY),
                                 headers={"mcp-method": "tools/call", "mcp-name": "invoices.get"}),
                 twin=tw({"request": {"headers": {"mcp-name": "create_payment"}}},
                         mcp_allow("mcp-payments", name="create_payment"))),
        mcp_case("mcp-header-name-without-name",
                 "`mcp-name` on a message that names nothing.",
                 mcp_deny("mcp_header_mismatch"),
                 request=mcp_req(rpc("tools/list"), headers={"mcp-name": "create_payment"})),
        mcp_case("order-mcp-malformed-before-token",
                 "A malformed body and no token: the MCP checks come before step 1.",
                 mcp_deny("mcp_malformed"), body="{", token=None,
                 twin=tw({"request": {"body": rpc("tools/list")}},
                         mcp_deny("token_missing", "tools/list"))),
        mcp_case("mcp-token-missing-points-to-metadata",
                 "A 401 on the MCP endpoint says where the resource metadata is (RFC 9728).",
                 mcp_deny("token_missing", "initialize",
                          response_headers={"www-authenticate": f'Bearer resource_metadata="{META_URL}"'}),
                 body=rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "t", "version": "1"}}),
                 token=None,
                 twin=tw({"token": mcp_tok()}, mcp_allow("mcp-session", method="initialize"))),
        mcp_case("mcp-invalid-token-points-to-metadata",
                 "Every 401 carries resource_metadata, also invalid_token ones.",
                 mcp_deny("token_expired", "tools/list",
                          response_headers={"www-authenticate": INVALID.format("token_expired") + f', resource_metadata="{META_URL}"'}),
                 body=rpc("tools/list"),
                 token=mcp_tok(exp=NOW - 3600, iat=NOW - 4000, auth_time=NOW - 4000)),
        case("mcp-metadata-get",
             "The RFC 9728 metadata GET is answered by the gateway: 200, no token needed, never forwarded.",
             {"decision": "allow", "reason": "resource_metadata", "status": 200, "headers": {},
              "response_status": 200,
              "response_headers": {"content-type": "application/json"},
              "audit": {"rule": None, "mcp_method": None}},
             request=req("GET", "/.well-known/oauth-protected-resource/mcp"), config="mcp",
             twin=tw({"request": {"path": "/.well-known/oauth-protected-resource/other"}},
                     deny("route_denied"))),
        case("mcp-get-stream-not-a-message",
             "GET /mcp (the SSE stream) is not an MCP message: only rules without `mcp` apply.",
             allow(headers=ids(rule="mcp-session", scopes="payments:write invoices:read", chain=(ORCH,)),
                   audit={"mcp_method": None, "mcp_name": None}),
             token=mcp_tok(), request=req("GET", "/mcp"), config="mcp",
             twin=tw({"token": None}, deny("token_missing"))),
        mcp_case("mcp-response-message",
                 "A JSON-RPC response from the client (no method) matches only rules without `mcp`.",
                 mcp_allow("mcp-session", method=None),
                 body='{"jsonrpc":"2.0","id":"s-1","result":{}}',
                 twin=tw({"request": {"body": '{"jsonrpc":"2.0","id":"s-1"}'}},
                         mcp_deny("mcp_malformed"))),
        mcp_case("mcp-tools-list-filtered",
                 "An allowed tools/list keeps only the tools this caller could call now (arguments aside).",
                 dict(mcp_allow("mcp-session", method="tools/list"),
                      filtered_tools=["create_payment", "invoices.get", "ping_tool"]),
                 body=rpc("tools/list", id=7), mcp_response=TOOLS,
                 twin=tw({"token": None}, mcp_deny("token_missing", "tools/list"))),
        mcp_case("mcp-tools-list-filtered-reader",
                 "A reader (invoices:read) does not see create_payment.",
                 dict(mcp_allow("mcp-session", method="tools/list", scopes="invoices:read"),
                      filtered_tools=["invoices.get", "ping_tool"]),
                 body=rpc("tools/list", id=7), mcp_response=TOOLS,
                 token=mcp_tok(scope="invoices:read")),
        mcp_case("mcp-tools-list-filtered-sub-agent",
                 "The billing sub-agent sees no create_payment: its ceiling removes payments:write.",
                 dict(mcp_allow("mcp-session", method="tools/list", scopes="invoices:read",
                                chain=(BILLING, ORCH)),
                      filtered_tools=["invoices.get", "ping_tool"]),
                 body=rpc("tools/list", id=7), mcp_response="event: message\ndata: " + TOOLS + "\n\n",
                 token=mcp_tok(act={"sub": BILLING, "act": {"sub": ORCH}})),
        mcp_case("mcp-tools-list-unfilterable",
                 "A tools/list response that cannot be read is never passed on: 502.",
                 dict(mcp_allow("mcp-session", method="tools/list"), filtered_tools="unfilterable"),
                 body=rpc("tools/list", id=7), mcp_response=TOOLS[:-3]),
    ]


FILES = {
    "01-route-token.json": route_token,
    "02-verify.json": verify,
    "03-claims-time.json": claims_time,
    "04-chain.json": chain,
    "05-revocation-binding.json": revocation_binding,
    "06-requirements.json": requirements,
    "07-order.json": order,
    "08-responses.json": responses,
    "09-shadow.json": shadow,
    "10-dpop.json": dpop,
    "11-mcp.json": mcp,
}


def main():
    total = 0
    names = set()
    for filename, build in FILES.items():
        cases = build()
        for c in cases:
            if c["name"] in names:
                raise SystemExit("duplicate case name " + c["name"])
            names.add(c["name"])
            total += 1 + ("twin" in c)
        with open(os.path.join(CORPUS, "cases", filename), "w") as f:
            json.dump(cases, f, indent=2, ensure_ascii=False)
            f.write("\n")
    print(f"{len(names)} cases, {total} with twins")


if __name__ == "__main__":
    main()

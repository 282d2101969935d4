"""DPoP cases made with joserfc (an independent JOSE implementation, PyPI), for
tests/dpop_joserfc.rs: keys, RFC 7638 thumbprints, access tokens and proofs, each with
the reason SPEC §10 gives. Prints one JSON document:

  {"config": {...}, "now": N, "thumbprints": [{"jwk", "jkt"}], "cases": [{"name",
   "request": REQUEST.json, "expect": reason}]}

The cases run in order through one replay window (like a policy test file): every proof
has its own `jti` except where a case replays an earlier one.
"""
import base64
import hashlib
import json
import uuid
import warnings

from joserfc import jws, jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

warnings.simplefilter("ignore")  # joserfc warns that EdDSA is deprecated by RFC 9864

NOW = 1800000000
AUTHORITY = "api.example.com"
HTU = "https://api.example.com/v1/pay"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


issuer = ECKey.generate_key("P-256", parameters={"kid": "iss"})
es = ECKey.generate_key("P-256")
ed = OKPKey.generate_key("Ed25519")
rsa = RSAKey.generate_key(2048)
other = ECKey.generate_key("P-256")


def public(key):
    return key.as_dict(private=False)


def token(jkt=None, iss="https://sts.example.com"):
    claims = {"iss": iss, "sub": "user:alice", "aud": "api", "iat": NOW, "exp": NOW + 600}
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "iss"}, claims, issuer,
                      algorithms=["ES256"])


def proof(key, alg, tok, header=None, claims=None, drop=(), jwk=None):
    h = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk if jwk is not None else public(key)}
    h.update(header or {})
    c = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": HTU, "iat": NOW,
         "ath": b64(hashlib.sha256(tok.encode()).digest())}
    c.update(claims or {})
    for name in drop:
        c.pop(name, None)
    return jws.serialize_compact(h, json.dumps(c).encode(), key, algorithms=[alg])


def unsigned(h, c):
    return b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode()) + "."


def request(tok, prf, scheme="DPoP", method="POST"):
    headers = {"authorization": f"{scheme} {tok}"}
    if prf is not None:
        headers["dpop"] = prf
    return {"method": method, "path": "/v1/pay?q=1", "authority": AUTHORITY, "headers": headers}


cases = []


def case(name, req, expect):
    cases.append({"name": name, "request": req, "expect": expect})


t_es = token(es.thumbprint())
t_ed = token(ed.thumbprint())
t_rsa = token(rsa.thumbprint())
t_unbound = token()

first = proof(es, "ES256", t_es)
case("es256 proof and bound token", request(t_es, first), "allowed")
case("the same proof again", request(t_es, first), "dpop_replayed")
case("ed25519 proof", request(t_ed, proof(ed, "EdDSA", t_ed)), "allowed")
case("rsa ps256 proof", request(t_rsa, proof(rsa, "PS256", t_rsa)), "allowed")
case("rsa rs256 proof", request(t_rsa, proof(rsa, "RS256", t_rsa)), "allowed")
case("jwk with kid and use (thumbprint ignores them)",
     request(t_es, proof(es, "ES256", t_es, jwk={**public(es), "kid": "k", "use": "sig"})),
     "allowed")
case("htu with other case, default port, query and fragment",
     request(t_es, proof(es, "ES256", t_es, claims={"htu": "HTTPS://API.Example.COM:443/v1/pay?x#y"})),
     "allowed")
case("iat max_age + skew in the past", request(t_es, proof(es, "ES256", t_es, claims={"iat": NOW - 120})), "allowed")
case("iat max_age + skew in the future", request(t_es, proof(es, "ES256", t_es, claims={"iat": NOW + 120})), "allowed")
case("iat one second too old", request(t_es, proof(es, "ES256", t_es, claims={"iat": NOW - 121})), "dpop_invalid")
case("iat one second too far ahead", request(t_es, proof(es, "ES256", t_es, claims={"iat": NOW + 121})), "dpop_invalid")
case("bound token sent as bearer", request(t_es, None, scheme="Bearer"), "dpop_required")
case("bound token as bearer even with a proof", request(t_es, proof(es, "ES256", t_es), scheme="Bearer"), "dpop_required")
case("required provider, unbound bearer",
     request(token(iss="https://strict.example.com"), None, scheme="Bearer"), "dpop_required")
case("unbound token with a valid proof", request(t_unbound, proof(es, "ES256", t_unbound)), "dpop_invalid")
case("unbound bearer token where dpop is allowed", request(t_unbound, None, scheme="Bearer"), "allowed")
case("no dpop header", request(t_es, None), "dpop_invalid")
case("typ jwt", request(t_es, proof(es, "ES256", t_es, header={"typ": "jwt"})), "dpop_invalid")
case("alg none", request(t_es, unsigned(
    {"typ": "dpop+jwt", "alg": "none", "jwk": public(es)},
    {"jti": str(uuid.uuid4()), "htm": "POST", "htu": HTU, "iat": NOW,
     "ath": b64(hashlib.sha256(t_es.encode()).digest())})), "dpop_invalid")
case("es384 not in dpop.algorithms", request(t_es, proof(ECKey.generate_key("P-384"), "ES384", t_es)), "dpop_invalid")
case("jwk with the private key", request(t_es, proof(es, "ES256", t_es, jwk=es.as_dict(private=True))), "dpop_invalid")
case("htm GET on a POST", request(t_es, proof(es, "ES256", t_es, claims={"htm": "GET"})), "dpop_invalid")
case("htu of another host", request(t_es, proof(es, "ES256", t_es, claims={"htu": "https://evil.example.com/v1/pay"})), "dpop_invalid")
case("htu of another path", request(t_es, proof(es, "ES256", t_es, claims={"htu": "https://api.example.com/v1/other"})), "dpop_invalid")
case("htu over http", request(t_es, proof(es, "ES256", t_es, claims={"htu": "http://api.example.com/v1/pay"})), "dpop_invalid")
case("no iat", request(t_es, proof(es, "ES256", t_es, drop=["iat"])), "dpop_invalid")
case("no jti", request(t_es, proof(es, "ES256", t_es, drop=["jti"])), "dpop_invalid")
case("no ath", request(t_es, proof(es, "ES256", t_es, drop=["ath"])), "dpop_invalid")
case("ath of another token", request(t_es, proof(es, "ES256", t_es, claims={"ath": b64(hashlib.sha256(t_ed.encode()).digest())})), "dpop_invalid")
case("proof by another key than cnf.jkt", request(t_es, proof(other, "ES256", t_es)), "dpop_invalid")
case("proof signed with the token issuer's own key", request(t_es, proof(issuer, "ES256", t_es)), "dpop_invalid")
case("alg ES256 with an RSA jwk (signed by the EC key)",
     request(t_es, proof(es, "ES256", t_es, jwk=public(rsa))), "dpop_invalid")
case("alg RS256 with an EC jwk (signed by the RSA key)",
     request(t_rsa, proof(rsa, "RS256", t_rsa, jwk=public(es))), "dpop_invalid")
big_n = b64(b"\xff" * 1023 + b"\x01")  # 8192 bits: refused before any RSA arithmetic
case("jwk with an 8192-bit modulus",
     request(t_rsa, proof(rsa, "RS256", t_rsa, jwk={"kty": "RSA", "n": big_n, "e": "AQAB"})), "dpop_invalid")
case("proof over the size budget", request(t_es, proof(es, "ES256", t_es, claims={"pad": "x" * 9000})), "dpop_invalid")
two = request(t_es, proof(es, "ES256", t_es))
two["headers"]["dpop"] = [two["headers"]["dpop"], proof(es, "ES256", t_es)]
case("two dpop headers", two, "dpop_invalid")
# The first, replayed proof fails later checks first: the replay window only sees proofs
# that passed every dpop_invalid test, and a proof refused as invalid is not recorded.
case("a refused proof is not recorded", request(t_es, proof(es, "ES256", t_es, claims={"jti": "fixed-jti", "htm": "GET"})), "dpop_invalid")
case("so the same jti passes once valid", request(t_es, proof(es, "ES256", t_es, claims={"jti": "fixed-jti"})), "allowed")
case("and is then a replay", request(t_es, proof(es, "ES256", t_es, claims={"jti": "fixed-jti"})), "dpop_replayed")

config = {
    "providers": {
        "sts": {
            "issuer": "https://sts.example.com", "audiences": ["api"],
            "local_jwks": {"inline_string": json.dumps({"keys": [public(issuer) | {"kid": "iss"}]})},
            "algorithms": ["ES256"],
            "dpop": {"mode": "allowed", "algorithms": ["ES256", "EdDSA", "PS256", "RS256"]},
        },
        "strict": {
            "issuer": "https://strict.example.com", "audiences": ["api"],
            "local_jwks": {"inline_string": json.dumps({"keys": [public(issuer) | {"kid": "iss"}]})},
            "algorithms": ["ES256"],
            "dpop": {"mode": "required"},
        },
    },
    "rules": [{"id": "api", "match": {"path_prefix": "/v1"}}],
}
thumbprints = [{"jwk": public(k), "jkt": k.thumbprint()} for k in (es, ed, rsa, issuer)]
print(json.dumps({"config": config, "now": NOW, "thumbprints": thumbprints, "cases": cases}))

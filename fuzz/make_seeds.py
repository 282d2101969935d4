#!/usr/bin/env python3
"""Writes the small seed corpora in fuzz/seeds/<target>/ from the decision corpus
(host-tests/corpus): configurations, their inline JWKS, case requests, and HS256 tokens
minted here with the corpus's `hs-a` secret (stdlib only). Structured targets (`decide`,
`token_verify`) are seeded with a few byte strings that `arbitrary` reads as varied inputs.
Run from the repository root; idempotent. Keep each folder a few KB."""
import base64, hashlib, hmac, json, os, shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "host-tests", "corpus")
OUT = os.path.join(ROOT, "fuzz", "seeds")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    configs = json.load(open(os.path.join(CORPUS, "configs.json")))
    keys = json.load(open(os.path.join(CORPUS, "keys.json")))
    secret = base64.urlsafe_b64decode(keys["hs-a"]["k"] + "==")

    def hs256(claims, header=None):
        h = {"alg": "HS256", "typ": "at+jwt", "kid": "hs-a"}
        h.update(header or {})
        si = b64(json.dumps(h, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(secret, si.encode(), hashlib.sha256).digest()
        return si + "." + b64(sig)

    claims = {"iss": "https://sts.example.com", "sub": "user:alice", "sub_profile": "user",
              "aud": "payments-api", "iat": 1799999940, "exp": 1800000600, "jti": "jti-1",
              "scope": "invoices:read payments:write",
              "act": {"sub": "spiffe://prod.example.com/agent/orchestrator",
                      "act": {"sub": "spiffe://prod.example.com/agent/billing"}}}
    tokens = [hs256(claims), hs256({"exp": "never"}, {"typ": None}), "a.b.c", "e30.e30.", "..",
              hs256(claims, {"alg": "none"})]
    for i, t in enumerate(tokens):
        write("token_parse", f"token-{i}", t)
        write("token_verify", f"raw-{i}", b"\x01" + t.encode())
    # Configurations: small ones whole, and each provider's JWKS for the jwks target.
    for name in ["main", "hs", "remote", "open", "custom-headers", "shadow-rule"]:
        text = json.dumps(configs[name], separators=(",", ":"))
        if len(text) < 6000 or name == "main":
            write("config", name, text)
        for pname, p in configs[name]["providers"].items():
            inline = p.get("local_jwks", {}).get("inline_string")
            if inline and len(inline) < 4000:
                write("jwks", f"{name}-{pname}", inline)
    write("jwks", "garbage", '{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}')
    # Requests of the cases (a token in some).
    n = 0
    for fname in sorted(os.listdir(os.path.join(CORPUS, "cases"))):
        for case in json.load(open(os.path.join(CORPUS, "cases", fname)))[:2]:
            req = dict(case["request"])
            if n % 2 == 0:
                req.setdefault("headers", {})["authorization"] = "Bearer " + tokens[0]
            write("request_json", f"{fname[:2]}-{n}", json.dumps(req))
            n += 1
    # MCP bodies (a flag byte first: bit 0 a token, bits 1-2 mcp-method / mcp-name headers)
    # from the MCP cases, distinct and small.
    seen = set()
    for case in json.load(open(os.path.join(CORPUS, "cases", "11-mcp.json"))):
        req = case["request"]
        body = req.get("body")
        if body is None and req.get("body_base64"):
            body = base64.b64decode(req["body_base64"]).decode("utf-8", "replace")
        if not body or len(body) > 600 or body in seen:
            continue
        seen.add(body)
        write("mcp_message", f"case-{len(seen):02d}", bytes([len(seen) % 8]) + body.encode())
    write("mcp_message", "list", b"\x07" + b'{"jsonrpc":"2.0","id":"a","method":"tools/list"}')
    write("mcp_message", "response", b"\x01" + b'{"jsonrpc":"2.0","id":2,"result":{}}')
    # Structured targets: bytes that `arbitrary` turns into varied inputs.
    for i in range(6):
        write("tools_list", f"blob-{i}", hashlib.sha256(f"tools-list-{i}".encode()).digest() * (2 + 4 * i))
        write("dpop", f"blob-{i}", hashlib.sha256(f"dpop-{i}".encode()).digest() * (2 + 3 * i))
    for i in range(6):
        blob = hashlib.sha256(f"decide-{i}".encode()).digest() * (4 + 8 * i)
        write("decide", f"blob-{i}", blob)
        write("token_verify", f"blob-{i}", hashlib.sha256(f"verify-{i}".encode()).digest() * 4)


if __name__ == "__main__":
    main()

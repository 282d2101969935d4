#!/usr/bin/env python3
"""Writes host-tests/corpus/configs.json from keys.json.

    cargo build --features cli
    python3 host-tests/corpus/tools/gen_configs.py

Public JWKS are produced by `actwarden jwks` and inlined literally
(`local_jwks.inline_string`), so every host reads the same bytes. Each configuration is
linted with `actwarden lint`; the script fails if one does not load.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CORPUS))
CLI = os.path.join(ROOT, "target", "debug", "actwarden")

ORCH = "spiffe://prod.example.com/agent/orchestrator"
BILLING = "spiffe://prod.example.com/agent/billing"
READER = "spiffe://prod.example.com/agent/reader"
ROGUE = "spiffe://prod.example.com/agent/rogue"
HOPS = [f"spiffe://prod.example.com/agent/hop-{i}" for i in range(1, 5)]


def jwks(keys, names):
    with tempfile.TemporaryDirectory() as d:
        files = []
        for n in names:
            p = os.path.join(d, n + ".json")
            with open(p, "w") as f:
                json.dump(keys[n], f)
            files.append(p)
        out = subprocess.run([CLI, "jwks", *files], check=True, capture_output=True,
                             text=True).stdout.strip()
    json.loads(out)
    return out


def lint(name, config):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        path = f.name
    try:
        r = subprocess.run([CLI, "lint", "--config", path], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"config `{name}` does not load: {r.stderr.strip()}")
    finally:
        os.unlink(path)


def main():
    with open(os.path.join(CORPUS, "keys.json")) as f:
        keys = json.load(f)
    main_jwks = jwks(keys, ["es256-a", "es256-b", "es384-a", "ed-a", "rsa-a", "rsa-pinned"])

    actors = {
        ORCH: {"max_scopes": ["invoices:read", "payments:write"]},
        BILLING: {"max_scopes": ["invoices:read"]},
        READER: {},
        ROGUE: {},
    }
    for hop in HOPS:
        actors[hop] = {}

    main = {
        "providers": {
            "corp-sts": {
                "issuer": "https://sts.example.com",
                "audiences": ["payments-api"],
                "local_jwks": {"inline_string": main_jwks},
                "clock_skew_s": 60,
                "max_lifetime_s": 3600,
            },
            "partner-sts": {
                "issuer": "https://partner.example.com",
                "audiences": ["payments-api"],
                "local_jwks": {"inline_string": jwks(keys, ["es256-b"])},
                "algorithms": ["ES256"],
            },
        },
        "identity": {
            "trust_domains": ["prod.example.com"],
            "human_profiles": ["user"],
            "max_chain_depth": 4,
            "actors": actors,
        },
        "binding": {"cnf": "if_present", "actor_must_match_peer": False},
        "revoked": {
            "jti": ["jti-revoked"],
            "subjects": ["user:mallory"],
            "actors": [ROGUE],
        },
        "rules": [
            {"id": "health", "match": {"path_prefix": "/healthz"}, "allow_anonymous": True},
            {"id": "pay", "match": {"path_prefix": "/v1/payments", "methods": ["POST"]},
             "providers": ["corp-sts"],
             "require": {"scopes": ["payments:write"], "human_subject": True,
                         "delegated": True, "actors": [ORCH], "max_chain_depth": 2,
                         "fresh_auth_s": 300,
                         "claims": {"acr": ["urn:example:acr:approved"]}}},
            {"id": "payments-read",
             "match": {"path_prefix": "/v1/payments", "methods": ["GET"]},
             "require": {"scopes": ["payments:read"]}},
            {"id": "transfers", "match": {"path_exact": "/v1/transfers", "methods": ["POST"]},
             "require": {"scopes": ["payments:write"], "delegated": True}},
            {"id": "admin", "match": {"path_exact": "/v1/admin"},
             "require": {"delegated": False, "human_subject": True}},
            {"id": "grpc-method", "match": {"path_exact": "/pkg.Service/Method"},
             "require": {"scopes": ["invoices:read"]}},
            {"id": "invoices", "match": {"path_prefix": "/v1/invoices"},
             "require": {"scopes": ["invoices:read"]}},
            {"id": "profile", "match": {"path_prefix": "/v1/profile"}},
            {"id": "partner", "match": {"path_prefix": "/v1/partner"},
             "providers": ["partner-sts"]},
        ],
        "on_no_match": "deny",
    }

    configs = {"main": main}

    c = copy.deepcopy(main)
    c["binding"] = {"cnf": "required"}
    configs["binding-required"] = c

    c = copy.deepcopy(main)
    c["binding"] = {"cnf": "if_present", "actor_must_match_peer": True}
    configs["peer-match"] = c

    configs["hs"] = {
        "providers": {
            "hs-sts": {
                "issuer": "https://hs.example.com",
                "audiences": ["payments-api"],
                "local_jwks": {"inline_string": jwks(keys, ["hs-a"])},
                "algorithms": ["HS256"],
            },
            "rsa-sts": {
                "issuer": "https://rsa.example.com",
                "audiences": ["payments-api"],
                "local_jwks": {"inline_string": jwks(keys, ["rsa-a"])},
            },
            # A provider mixing an `oct` key with RSA keys (the classic HS256/RS256
            # confusion target) is refused at load time, so the confusion is tried
            # against an RSA-only provider and against the HMAC provider.
        },
        "rules": [{"id": "any", "match": {"path_prefix": "/"}}],
    }

    configs["remote"] = {
        "providers": {
            "remote-sts": {
                "issuer": "https://remote.example.com",
                "audiences": ["payments-api"],
                "remote_jwks": {
                    "http_uri": {"uri": "http://sts.internal/jwks", "cluster": "sts",
                                 "timeout_ms": 2000},
                    "cache_duration_s": 300,
                    "max_stale_s": 86400,
                },
                "algorithms": ["ES256", "EdDSA"],
            },
        },
        "rules": [{"id": "any", "match": {"path_prefix": "/"}}],
    }

    configs["open"] = {
        "providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
        "rules": [{"id": "secure", "match": {"path_prefix": "/v1/secure"}}],
        "on_no_match": "allow",
    }

    c = {"providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
         "rules": [{"id": "any", "match": {"path_prefix": "/"}}]}
    c["providers"]["corp-sts"]["from_headers"] = [
        {"name": "x-api-token"},
        {"name": "authorization", "value_prefix": "Token "},
    ]
    configs["custom-headers"] = c

    c = {"providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
         "rules": [{"id": "any", "match": {"path_prefix": "/"}}]}
    c["providers"]["corp-sts"]["token_types"] = ["at+jwt"]
    configs["types"] = c

    c = {"providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
         "rules": [{"id": "any", "match": {"path_prefix": "/"}}]}
    c["providers"]["corp-sts"]["clock_skew_s"] = 0
    c["providers"]["corp-sts"]["max_lifetime_s"] = 300
    configs["strict-time"] = c

    # Shadow mode (SPEC §11): one rule in shadow under an enforcing policy, and a shadow
    # policy with one rule that enforces.
    c = copy.deepcopy(main)
    for rule in c["rules"]:
        if rule["id"] == "profile":
            rule["mode"] = "shadow"
    configs["shadow-rule"] = c
    c = copy.deepcopy(main)
    c["mode"] = "shadow"
    for rule in c["rules"]:
        if rule["id"] == "pay":
            rule["mode"] = "enforce"
    configs["shadow-policy"] = c
    # SPEC §13's signature budget: five keys fit ES256, and a token without `kid` is tried
    # against the first four only. The first four are es256-a's public key under four
    # kids (keys.json has two P-256 keys a config may publish; four copies fit ES256 just
    # as four distinct keys would), the fifth is es256-b.
    many = {f"many-{i}": dict(keys["es256-a"], kid=f"many-{i}") for i in range(1, 5)}
    many["es256-b"] = keys["es256-b"]
    c = {"providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
         "rules": [{"id": "any", "match": {"path_prefix": "/"}}]}
    c["providers"]["corp-sts"]["local_jwks"] = {"inline_string": jwks(many, list(many))}
    c["providers"]["corp-sts"]["algorithms"] = ["ES256"]
    configs["many-keys"] = c
    # DPoP (SPEC §10): corp-sts allows it (and accepts bearer tokens without cnf.jkt),
    # partner-sts requires it. Proof keys are the agents' own (agent-es256, agent-ed).
    c = copy.deepcopy(main)
    c["providers"]["corp-sts"]["dpop"] = {"mode": "allowed"}
    c["providers"]["partner-sts"]["dpop"] = {"mode": "required", "algorithms": ["ES256"]}
    configs["dpop"] = c
    # SPEC §9: an MCP server behind the gateway. Tools are told apart by the JSON-RPC
    # body: payments need payments:write and a delegated call, with argument caps;
    # invoices need invoices:read and may only be read for the caller; admin tools need a
    # scope nobody holds; every other message on the endpoint needs a valid token.
    c = {"providers": copy.deepcopy({"corp-sts": main["providers"]["corp-sts"]}),
         "identity": copy.deepcopy(main["identity"]),
         "revoked": copy.deepcopy(main["revoked"])}
    c["providers"]["corp-sts"]["audiences"] = ["payments-api", "https://api.example.com/mcp"]
    c["mcp"] = {
        "endpoints": ["/mcp"],
        "max_body_bytes": 4096,
        "resource": "https://api.example.com/mcp",
        "resource_name": "Payments MCP",
        "max_response_bytes": 65536,
    }
    c["rules"] = [
        {"id": "mcp-payments",
         "match": {"mcp": {"methods": ["tools/call"], "names": ["create_payment"]}},
         "require": {"scopes": ["payments:write"], "delegated": True,
                     "arguments": [{"pointer": "/amount", "max": 1000},
                                   {"pointer": "/amount", "min": 1},
                                   {"pointer": "/currency", "one_of": ["EUR", "USD"]},
                                   {"pointer": "/debug", "absent": True}]}},
        {"id": "mcp-invoices",
         "match": {"mcp": {"methods": ["tools/call"], "names": ["invoices.*"]}},
         "require": {"scopes": ["invoices:read"],
                     "arguments": [{"pointer": "/customer", "equals_claim": "sub"}]}},
        {"id": "mcp-admin",
         "match": {"path_exact": "/mcp", "mcp": {"methods": ["tools/call"],
                                                 "names": ["admin_*"]}},
         "require": {"scopes": ["admin"]}},
        {"id": "mcp-session", "match": {"path_exact": "/mcp"}},
    ]
    configs["mcp"] = c

    for name, config in configs.items():
        lint(name, config)
    with open(os.path.join(CORPUS, "configs.json"), "w") as f:
        json.dump(configs, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()

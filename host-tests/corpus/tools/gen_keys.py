#!/usr/bin/env python3
"""Writes host-tests/corpus/keys.json: the private JWKs the corpus signs with.

Run once (keys are random; regenerating them is harmless because configs.json is rebuilt
from keys.json by gen_configs.py and cases name keys, never key material):

    cargo build --features cli
    python3 host-tests/corpus/tools/gen_keys.py [--wycheproof PATH]

EC, EdDSA and HMAC keys come from `actwarden keygen`. ring cannot generate RSA keys, so
the RSA key is the `kid-rsa-sign` private JWK of Wycheproof's json_web_signature_test.json
(Apache-2.0, https://github.com/C2SP/wycheproof), re-labelled.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CORPUS))
CLI = os.path.join(ROOT, "target", "debug", "actwarden")


def keygen(alg, kid):
    out = subprocess.run([CLI, "keygen", "--alg", alg, "--kid", kid],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def wycheproof_rsa(path):
    with open(path) as f:
        doc = json.load(f)
    for group in doc["testGroups"]:
        priv = group.get("private", {})
        if group.get("comment") == "rs256" and priv.get("kid") == "kid-rsa-sign":
            return dict(priv)
    sys.exit("no rs256 kid-rsa-sign group in " + path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wycheproof", default=os.path.join(
        ROOT, "tests", "vectors", "wycheproof", "json_web_signature_test.json"))
    args = ap.parse_args()
    keys = {
        "es256-a": keygen("ES256", "es256-a"),
        "es256-b": keygen("ES256", "es256-b"),
        "es384-a": keygen("ES384", "es384-a"),
        "ed-a": keygen("EdDSA", "ed-a"),
        "hs-a": keygen("HS256", "hs-a"),
        # The attacker's key: in no configured JWKS, but with a kid that is.
        "evil-es256": keygen("ES256", "es256-a"),
        # Agents' DPoP keys (SPEC §10): in no JWKS; tokens name them in `cnf.jkt`.
        "agent-es256": keygen("ES256", "agent-es256"),
        "agent-ed": keygen("EdDSA", "agent-ed"),
    }
    rsa = wycheproof_rsa(args.wycheproof)
    rsa_a = {k: v for k, v in rsa.items() if k != "alg"}  # any RS*/PS* algorithm
    rsa_a["kid"] = "rsa-a"
    rsa_pinned = dict(rsa)
    rsa_pinned["alg"] = "RS256"  # pinned: PS256 must be refused
    rsa_pinned["kid"] = "rsa-pinned"
    keys["rsa-a"] = rsa_a
    keys["rsa-pinned"] = rsa_pinned
    with open(os.path.join(CORPUS, "keys.json"), "w") as f:
        json.dump(keys, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

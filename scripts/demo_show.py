#!/usr/bin/env python3
"""Pretty-prints one `actwarden check` decision for `make demo` (standard library only).

usage: demo_show.py TITLE REQUEST.json OUTPUT.json EXIT_CODE EXPECTED_REASON

Prints the request on one line, then the decision, reason, status and the audit fields
that matter. Exits 1 when the reason is not the expected one (or the exit code does not
fit the decision), so `make demo` fails loudly if the story stops being true.

The token is decoded here only to describe the request line; nothing is verified by this
script — the decision is actwarden's.
"""

import base64
import json
import os
import sys

TTY = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def paint(code, text):
    return f"\033[{code}m{text}\033[0m" if TTY else text


def bold(text):
    return paint("1", text)


def short(identity):
    """`spiffe://prod.example.com/agent/billing` → `billing` (for the one-line view)."""
    if identity is None:
        return "-"
    if identity.startswith("spiffe://"):
        td, _, path = identity[len("spiffe://"):].partition("/")
        name = path.rsplit("/", 1)[-1]
        return name if td == "prod.example.com" else f"{name}@{td}"
    return identity.split("@", 1)[0]


def b64url_json(part):
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def describe_token(authorization):
    scheme, _, token = (authorization or "").partition(" ")
    if scheme not in ("Bearer", "DPoP") or not token:
        return "no token"
    if scheme == "DPoP":
        scheme_text = "DPoP "
    else:
        scheme_text = ""
    try:
        header_b64, claims_b64, _ = token.split(".")
        header, claims = b64url_json(header_b64), b64url_json(claims_b64)
    except (ValueError, json.JSONDecodeError):
        return f"token ({len(token)} bytes, unreadable)"
    chain = []
    act = claims.get("act")
    while isinstance(act, dict):
        chain.append(act.get("sub"))
        act = act.get("act")
    # `act` lists the current actor first; the delegation ran the other way.
    path = " → ".join([short(claims.get("sub"))] + [short(a) for a in reversed(chain)])
    cnf = claims.get("cnf", {})
    bound = "".join(
        f" cnf={name}:{cnf[name][:8]}…" for name in ("x5t#S256", "jkt") if name in cnf
    )
    return (
        f"{scheme_text}token[{header.get('alg')} kid={header.get('kid')}] {path}"
        f' scope="{claims.get("scope", "")}"{bound}'
    )


def main():
    title, request_path, output_path, rc, expected = sys.argv[1:6]
    rc = int(rc)
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    print()
    print(bold(title))
    peer = request.get("peer") or {}
    digest = peer.get("sha256_digest_hex")
    peer_text = f"peer={short(peer.get('uri_san'))}" if peer else "peer=none"
    if digest:
        peer_text += f" cert-sha256={digest[:8]}…"
    line = (
        f"{request['method']} {request.get('authority', '')}{request['path']}  "
        f"{describe_token(request.get('headers', {}).get('authorization'))}  {peer_text}"
    )
    print(f"  request   {line}")

    try:
        with open(output_path, encoding="utf-8") as f:
            out = json.load(f)
    except (OSError, json.JSONDecodeError):
        print(paint("31", f"  actwarden check failed (exit {rc}); no decision printed"))
        return 1

    allowed = out["decision"] == "allow"
    verdict = paint("32;1", "ALLOW") if allowed else paint("31;1", "DENY")
    status = "— (forwarded upstream)" if out["status"] is None else out["status"]
    print(f"  decision  {verdict}  reason={bold(out['reason'])}  status={status}  exit={rc}")
    if out.get("detail"):
        print(f"  detail    {out['detail']}")
    chain = out.get("chain") or []
    print(
        f"  audit     rule={out['rule']}  provider={out['provider']}  "
        f"sub={out['sub']} ({out['sub_profile']})  depth={out['depth']}  binding={out['binding']}"
    )
    if chain:
        print(f"            chain (current actor first): {', '.join(chain)}")
    scopes = out.get("scopes")
    if scopes is not None:
        print(f"            effective scopes: {' '.join(scopes) or '(none)'}")
    print(
        f"            jti={out['jti']}  token_id={out['token_id']}  kid={out['kid']}  "
        f"alg={out['alg']}  request_id={out['request_id']}  trace_id={out['trace_id']}"
    )
    if allowed:
        for name, value in out.get("headers", {}).items():
            print(f"  forwards  {name}: {value}")
    else:
        response = out.get("response") or {}
        print(f"  response  HTTP {response.get('status')}")
        for name, value in (response.get("headers") or {}).items():
            print(f"            {name}: {value}")
        if response.get("body"):
            print(f"            {response['body']}")

    exit_ok = rc == (0 if allowed else 1)
    if out["reason"] != expected or not exit_ok:
        print(paint("31;1", f"  UNEXPECTED: the story expects `{expected}`"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

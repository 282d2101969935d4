#!/usr/bin/env bash
# `make demo-cli`: a short story told with the actwarden CLI against gateway-configs/example/
# (`make demo` tells it through Envoy).
#
# Alice (a human) lets an orchestrator agent pay an invoice for her; the orchestrator
# hands work to a billing sub-agent; a staging agent and a replayed token try their luck.
# Tokens are minted fresh (valid 5 minutes) with the committed DEMO-ONLY key, written to
# target/demo/, and each request is decided by `actwarden check`. The script fails if any
# decision differs from the one the story expects.
set -euo pipefail
cd "$(dirname "$0")/.."

AG=${ACTWARDEN:-target/debug/actwarden}
EX=gateway-configs/example
DEMO=$EX/demo
OUT=target/demo
KEY=$DEMO/keys/DEMO-ONLY-corp-sts.private.jwk.json
CONFIG=$EX/actwarden.json

if [ ! -x "$AG" ]; then
    echo "demo: $AG not found; run \`make demo-cli\` (it builds the CLI first)" >&2
    exit 2
fi
mkdir -p "$OUT"

echo "actwarden demo — configuration: $CONFIG"
echo "  \$ actwarden lint --config $CONFIG"
printf '  '
"$AG" lint --config "$CONFIG"
echo "  rule \`pay\`: POST /v1/payments needs scope payments:write, a human subject, a delegated"
echo "  token (chain depth <= 2) and acr=urn:example:acr:approved. Actor ceilings:"
echo "  orchestrator may hold invoices:read payments:write; billing only invoices:read."
echo

# mint NAME CLAIMS: a token valid for 300 s, signed with the demo key.
mint() {
    "$AG" mint --key "$KEY" --claims "$DEMO/claims/$2.json" --ttl 300 >"$OUT/$1.jwt"
}
mint a alice-via-orchestrator
mint b alice-via-orchestrator-via-billing
mint c alice-via-staging-orchestrator
# (e): the orchestrator runs outside the mesh (no client certificate): its token is bound to
# its own DPoP key (cnf.jkt), and each request carries a proof signed with that key.
AGENT_KEY=$DEMO/keys/DEMO-ONLY-agent-dpop.private.jwk.json
"$AG" mint --key "$KEY" --claims "$DEMO/claims/alice-via-dpop-agent.json" --ttl 300 \
    --cnf-jkt-of "$AGENT_KEY" >"$OUT/e.jwt"
"$AG" dpop-proof --key "$AGENT_KEY" --htm POST --htu https://api.example.com/v1/payments \
    --token "$(cat "$OUT/e.jwt")" >"$OUT/e.proof"
echo "minted 4 tokens into $OUT/ (actwarden mint --key $KEY --claims ... --ttl 300; e with"
echo "  --cnf-jkt-of $AGENT_KEY) and a DPoP proof (actwarden dpop-proof --key $AGENT_KEY ...)"

failures=0
# step LETTER TOKEN REQUEST EXPECTED_REASON TITLE
step() {
    local letter=$1 token=$2 request=$3 expected=$4 title=$5 rc=0
    local proof=""
    [ -f "$OUT/$token.proof" ] && proof=$(cat "$OUT/$token.proof")
    sed -e "s/@TOKEN@/$(cat "$OUT/$token.jwt")/" -e "s/@PROOF@/$proof/" \
        "$DEMO/requests/$request.json" >"$OUT/$request.json"
    "$AG" check --config "$CONFIG" --request "$OUT/$request.json" >"$OUT/$request.out.json" || rc=$?
    python3 scripts/demo_show.py "($letter) $title" "$OUT/$request.json" "$OUT/$request.out.json" \
        "$rc" "$expected" || failures=$((failures + 1))
}

step a a a-orchestrator-pays allowed \
    "alice → orchestrator pays an invoice (token bound to the orchestrator's certificate)"
step b b b-billing-pays actor_scope_exceeded \
    "alice → orchestrator → billing: the billing sub-agent tries to pay"
step c c c-staging-agent-pays trust_domain_mismatch \
    "alice → a staging orchestrator (spiffe://staging.example.com/...) calls production"
step d a d-replayed-from-billing binding_mismatch \
    "the token of (a), stolen and replayed from billing's mTLS connection"
step e e e-dpop-agent-pays allowed \
    "the orchestrator, outside the mesh, pays with a DPoP-bound token and a proof of its key"
step f e f-copied-dpop-token dpop_required \
    "the DPoP-bound token of (e), copied and sent as a bearer token without the agent's key"

echo
echo "Raw output of (b), exactly as \`actwarden check\` prints it (one JSON line, pretty-printed here):"
python3 -m json.tool "$OUT/b-billing-pays.out.json"
echo
echo "Try it yourself:"
echo "  $AG check --config $CONFIG --request $OUT/a-orchestrator-pays.json"
echo "  $AG decode \$(cat $OUT/b.jwt)"
if [ "$failures" -ne 0 ]; then
    echo "demo: $failures decision(s) differed from the story" >&2
    exit 1
fi
echo "demo: all 6 decisions as expected"

#!/usr/bin/env bash
# DEMO ONLY. Regenerates the demo PKI for gateway-configs/envoy/envoy.yaml:
#
#   ca.pem                                  demo CA (trust anchor for BOTH listeners' peers)
#   server.pem / server.DEMO-ONLY.key.pem   the mTLS listener's certificate (DNS localhost, IP 127.0.0.1)
#   orchestrator.pem / orchestrator.DEMO-ONLY.key.pem
#                                           client cert, URI SAN spiffe://prod.example.com/agent/orchestrator
#   billing.pem / billing.DEMO-ONLY.key.pem client cert, URI SAN spiffe://prod.example.com/agent/billing
#   ca.DEMO-ONLY.key.pem                    the CA's key (kept so that more client certs can be issued)
#
# Every private key here is PUBLISHED in the repository: anyone can impersonate these
# identities. Never trust ca.pem outside a local demo.
#
# All keys are EC P-256; certificates are valid for 25 years from generation.
# Usage: bash gateway-configs/envoy/certs/gen.sh   (overwrites the files in this directory)
set -euo pipefail
cd "$(dirname "$0")"
command -v openssl >/dev/null || { echo "gen.sh: openssl not found" >&2; exit 1; }

DAYS=9131   # 25 years
ORG="actwarden demo (DEMO ONLY)"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- CA -------------------------------------------------------------------------------
key ca.DEMO-ONLY.key.pem
cat >"$tmp/ca.ext" <<EXT
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
openssl req -new -x509 -sha256 -days "$DAYS" -key ca.DEMO-ONLY.key.pem \
    -subj "/O=$ORG/CN=actwarden demo CA (DEMO ONLY)" \
    -extensions v3_ca -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n'; cat "$tmp/ca.ext") \
    -out ca.pem

# issue NAME CN EXTENSIONS: NAME.DEMO-ONLY.key.pem + NAME.pem signed by the CA
issue() {
    local name=$1 cn=$2 ext=$3
    key "$name.DEMO-ONLY.key.pem"
    openssl req -new -sha256 -key "$name.DEMO-ONLY.key.pem" -subj "/O=$ORG/CN=$cn" -out "$tmp/$name.csr"
    printf '%s\n' "$ext" >"$tmp/$name.ext"
    openssl x509 -req -sha256 -days "$DAYS" -in "$tmp/$name.csr" \
        -CA ca.pem -CAkey ca.DEMO-ONLY.key.pem -CAcreateserial -CAserial "$tmp/ca.srl" \
        -extfile "$tmp/$name.ext" -out "$name.pem" 2>/dev/null
}

issue server "localhost" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid"

for agent in orchestrator billing; do
    issue "$agent" "$agent agent (DEMO ONLY)" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://prod.example.com/agent/$agent
authorityKeyIdentifier = keyid"
done

for f in orchestrator billing; do
    printf '%-13s sha256 %s  x5t#S256 %s\n' "$f.pem" \
        "$(openssl x509 -in "$f.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)" \
        "$(openssl x509 -in "$f.pem" -outform DER | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=')"
done
openssl verify -CAfile ca.pem server.pem orchestrator.pem billing.pem

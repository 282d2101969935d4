//! Every budget the core enforces on untrusted input, in one place, each with where its
//! number comes from. Exceeding a budget is a decision (a reason code) or a load-time
//! error, never a panic.

/// Largest token accepted, in bytes (SPEC §4 `token_too_large`). Envoy's default
/// request-header limit is 60 KiB; real access tokens with a delegation chain stay well
/// under 4 KiB, so 16 KiB leaves room for long chains without inviting abuse.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Largest JOSE header after base64url decoding. A header holds `alg`, `typ`, `kid` and
/// perhaps `x5t`; 2 KiB is ten times what any issuer we know of emits.
pub(crate) const MAX_HEADER_BYTES: usize = 2 * 1024;

/// Largest claims set after base64url decoding: the token budget, since the payload is
/// most of the token and base64url only shrinks it.
pub(crate) const MAX_CLAIMS_BYTES: usize = MAX_TOKEN_BYTES;

/// JSON nesting allowed in a token's header or claims. serde_json refuses deeper input
/// with an error (its recursion limit is 128), so this is the depth at which a nesting
/// bomb becomes `token_malformed` instead of a stack overflow; a chain within it that is
/// still too deep for the policy is `chain_too_deep`.
#[allow(dead_code)] // documents serde_json's limit, which enforces it
pub(crate) const MAX_JSON_DEPTH: usize = 128;

/// Longest identity (`sub`, `act.sub`) copied into headers and the audit record. SPIFFE
/// IDs are limited to 2048 bytes by the SPIFFE ID specification (§2.3).
pub(crate) const MAX_IDENTITY_BYTES: usize = 2048;

/// Most scopes taken from one token. OAuth servers we know of cap scope strings far
/// lower; the bound keeps effective-scope computation linear and headers small.
pub(crate) const MAX_SCOPES: usize = 256;

/// Largest `kid` or `alg` value written to the audit record (both come from an unverified
/// header and must not let a caller write large blobs into logs).
pub(crate) const MAX_AUDIT_HEADER_VALUE: usize = 128;

/// Longest `method`, `path` or `authority` copied into the audit record. These come from
/// the caller; 2 KiB keeps every real path (browsers cap URLs near 2 KiB for the same
/// reason) and stops a caller from writing megabytes into logs.
pub(crate) const MAX_AUDIT_REQUEST_FIELD: usize = 2048;

/// Most keys in one JWKS. Identity providers publish a handful (current, next, previous);
/// 64 leaves room for multi-tenant issuers while bounding the per-token key search.
pub(crate) const MAX_JWKS_KEYS: usize = 64;

/// Signature verifications one request may cost (SPEC §13): a token without `kid` is
/// tried against at most this many keys that fit its `alg`, then `signature_invalid`.
/// Issuers publish a current, a next and a previous key (rotation overlap), so 4 covers
/// every kid-less issuer we know of while capping the work an unsigned guess can cause
/// (an RS512-8192 or ES384 verification costs milliseconds in wasm).
pub(crate) const MAX_SIGNATURE_VERIFICATIONS: usize = 4;

/// Largest JWKS document, in bytes: 64 RSA-8192 keys fit comfortably.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Deepest `max_chain_depth` a configuration may ask for. RFC 8693 sets no bound; a chain
/// deeper than 32 hops is not a delegation anyone can audit.
pub(crate) const MAX_CONFIGURABLE_CHAIN_DEPTH: u32 = 32;

/// Verified tokens one cache (one Envoy worker's copy of one policy) remembers. A token
/// entry is its claims plus ~100 bytes, typically under 2 KiB: 4096 entries stay below
/// ~8 MiB per worker while covering the distinct tokens of thousands of active agents
/// within a token lifetime.
pub(crate) const MAX_CACHED_TOKENS: usize = 4096;

/// Failed signatures remembered. Smaller than the verified cache: its job is to make a
/// replayed forgery cheap, not to hold every garbage token an attacker can invent (those
/// still cost a verification each, the same as without a cache).
pub(crate) const MAX_CACHED_TOKEN_FAILURES: usize = 1024;

/// DPoP proof headers one cache remembers (`TokenCache`): one per agent key in use. An
/// entry is the header text and its parsed key, under 2 KiB even for a 4096-bit RSA key,
/// so at most ~1 MiB per worker; a header not remembered is checked in full, as without
/// the cache.
pub(crate) const MAX_CACHED_PROOF_HEADERS: usize = 512;

/// How long a failed signature is remembered, in seconds. Short, because the failure is
/// about keys that may be replaced (a refetch brings a new key for the same `kid`).
pub(crate) const TOKEN_FAILURE_TTL_S: u64 = 60;

/// Slots of the verified-token table shared by the worker VMs of one Envoy (SPEC §8): a
/// direct-mapped table, one shared-data entry of `shared::ENTRY_BYTES` (82 bytes) per slot,
/// so at most ~4096 × 150 bytes with Envoy's key overhead: bounded for the life of the
/// process (proxy-wasm shared data cannot be deleted, so the table never grows past its
/// slots). As many slots as one worker's cache holds tokens.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
pub(crate) const SHARED_TOKEN_SLOTS: u32 = 4096;

/// Shortest interval between two refetches of a provider's JWKS caused by an unknown `kid`
/// (SPEC §8: "at most one refetch per provider per 30 s"). Without it, tokens with random
/// `kid`s would turn the gateway into an amplifier against the identity provider.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const KID_REFETCH_INTERVAL_S: u64 = 30;

/// Longest wait before retrying a failed JWKS fetch, in seconds (it is also never longer
/// than `cache_duration_s`). Short enough that a JWKS that was down at start recovers
/// quickly; long enough not to hammer an identity provider that is struggling.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const JWKS_RETRY_MAX_S: u64 = 10;

/// Requests one worker keeps paused while an unknown-`kid` refetch runs. Each holds its
/// headers (a few KiB), so 1024 stay in the low MiB; past it, an unknown `kid` is decided
/// at once (`kid_unknown`), so a flood of made-up `kid`s cannot pile up paused requests.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const MAX_WAITING_REQUESTS: usize = 1024;

/// Largest DPoP proof (SPEC §10), in bytes. A proof is a header with the client's public
/// key, a few claims and a signature: an ES256 proof is ~500 bytes, an RSA-4096 one
/// ~1.5 KiB. 8 KiB leaves room without letting a proof cost more than a token to parse.
pub(crate) const MAX_DPOP_PROOF_BYTES: usize = 8 * 1024;

/// Largest decoded DPoP proof header: an RSA-4096 `jwk` (683 base64url characters of
/// modulus) plus `typ`, `alg` fits in 1 KiB; 4 KiB is generous.
pub(crate) const MAX_DPOP_HEADER_BYTES: usize = 4 * 1024;

/// Largest decoded DPoP proof claims set: `jti`, `htm`, `htu`, `iat`, `ath` (and `nonce`)
/// are a few hundred bytes, bounded mostly by `htu` (URLs are capped near 2 KiB, see
/// `MAX_AUDIT_REQUEST_FIELD`).
pub(crate) const MAX_DPOP_CLAIMS_BYTES: usize = 4 * 1024;

/// Largest RSA modulus accepted in a proof's `jwk`, in bits. A proof key comes from any
/// caller on every request, and RSA verification grows with the square of the modulus:
/// 4096 bits is what clients use (RFC 9449 examples use ES256), while 8192 (allowed for
/// an issuer's configured keys) would let a caller buy 4× the work per request.
pub(crate) const MAX_DPOP_RSA_BITS: usize = 4096;

/// Longest proof `jti` accepted. RFC 9449 §4.2 asks for enough randomness (≥ 96 bits);
/// UUIDs are 36 characters. The window stores a digest, so this only bounds hashing.
pub(crate) const MAX_DPOP_JTI_BYTES: usize = 256;

/// Largest `dpop.max_age_s`: an hour. A proof is meant to be used at once (RFC 9449 §11.1);
/// a longer age only makes the replay window larger.
pub(crate) const MAX_DPOP_MAX_AGE_S: u64 = 3600;

/// Largest `dpop.replay_window_entries`: 2^20 entries of 24 bytes (`dpop::replay`) is
/// 24 MiB of shared data in Envoy, the most one provider's window should hold.
pub(crate) const MAX_DPOP_REPLAY_WINDOW_ENTRIES: usize = 1 << 20;

/// Entries in one shard of a shared replay window (Envoy shared data): each DPoP request
/// copies one shard out of the host, scans it and writes it back with compare-and-swap,
/// so its cost grows with the shard (128 × 24 bytes = 3 KiB when full); the window is
/// split into as many shards as it needs.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const DPOP_REPLAY_SHARD_ENTRIES: usize = 128;

/// Shards of one shared replay window at most: 8192 × 128 is the largest window
/// (`MAX_DPOP_REPLAY_WINDOW_ENTRIES`), so every window keeps shards of at most 128 entries
/// and a proof's cost does not grow with the window (the default 65 536 entries is 512
/// shards). Each is one shared-data key that every worker checks once when configured.
/// (With at most 1024 shards, a full 2^20-entry window had shards of 1024 entries: 24 KiB
/// copied out of the host, scanned and written back per proof.)
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const MAX_DPOP_REPLAY_SHARDS: usize = 8192;

/// Compare-and-swap attempts on one replay shard before the proof is refused
/// (`dpop_replayed`, fail closed). Each retry re-reads the shard; contention among a few
/// worker threads settles within a handful of attempts.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) const DPOP_REPLAY_CAS_ATTEMPTS: usize = 16;

/// Longest piece of user input (a rule id, a member name, a JSON path) a configuration or
/// JWKS error repeats, in bytes. Enough to recognise it; short enough that a hostile
/// configuration cannot write megabytes into Envoy's log through one error line.
pub(crate) const MAX_ERROR_INPUT: usize = 512;

/// `text` cut to `MAX_ERROR_INPUT` bytes (at a character boundary), saying how long it was.
pub(crate) fn clip_for_error(text: String) -> String {
    if text.len() <= MAX_ERROR_INPUT {
        return text;
    }
    let mut end = MAX_ERROR_INPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes in all)",
        text.get(..end).unwrap_or_default(),
        text.len()
    )
}

// ---------------------------------------------------------------------------------------
// MCP (SPEC §9).

/// `mcp.max_body_bytes` when absent: 64 KiB, the SPEC's example. A JSON-RPC tool call with
/// its arguments is a few KiB; the budget is what the gateway buffers per request.
pub(crate) const DEFAULT_MCP_MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest `mcp.max_body_bytes` a configuration may set: 1 MiB, Envoy's default
/// `per_connection_buffer_limit_bytes`, past which Envoy itself refuses to buffer a body.
pub(crate) const MAX_MCP_BODY_BYTES: usize = 1024 * 1024;

/// `mcp.max_response_bytes` when absent (SPEC §9 example): a `tools/list` of hundreds of
/// tools with schemas stays well below 1 MiB.
pub(crate) const DEFAULT_MCP_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Largest `mcp.max_response_bytes` a configuration may set: 16 MiB per buffered response
/// per request is the most a worker should hold for a tool list.
pub(crate) const MAX_MCP_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// JSON nesting allowed in an MCP message or a `tools/list` response. Tool arguments and
/// input schemas nest a few levels; 64 is generous and stays far below serde_json's
/// recursion limit (`MAX_JSON_DEPTH`), so a nesting bomb is `mcp_malformed`, never a crash.
pub(crate) const MAX_MCP_JSON_DEPTH: usize = 64;

/// Longest JSON-RPC `method` accepted. MCP's method names are under 40 bytes
/// (`notifications/resources/list_changed`); the bound keeps audit records small.
pub(crate) const MAX_MCP_METHOD_BYTES: usize = 128;

/// Longest `name` (tool or prompt name, resource URI) accepted: MCP tool names are at most
/// 128 characters (SEP-986); resource URIs get the audit budget for request fields.
pub(crate) const MAX_MCP_NAME_BYTES: usize = MAX_AUDIT_REQUEST_FIELD;

/// Most conditions in one rule's `require.arguments`: each costs a pointer walk per
/// request; 64 is more than any tool has parameters worth constraining.
pub(crate) const MAX_ARGUMENT_CONDITIONS: usize = 64;

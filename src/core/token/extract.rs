//! Step 2 of SPEC §4: finding the token(s) in the request.

use crate::core::config::Policy;
use crate::core::request::Request;

/// A token found in the request, and which source (`Policy::token_sources`) read it.
pub(crate) struct Found<'r> {
    pub token: &'r str,
    pub source: usize,
}

/// Reads tokens from every provider's sources — not only the matched rule's — so that a
/// second credential can never ride along unverified, and a token of a provider the rule
/// does not accept is `issuer_unknown`, not silently "missing".
pub(crate) fn find_tokens<'r>(policy: &Policy, request: &'r Request) -> Vec<Found<'r>> {
    let mut found = Vec::new();
    for (name, value) in &request.headers {
        let hit = policy
            .token_sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.eq_ignore_ascii_case(name))
            .find_map(|(i, s)| s.read(value).map(|token| (i, token)));
        if let Some((source, token)) = hit {
            // A proxy may join a repeated header into one value with commas (RFC 9110
            // §5.3; Envoy does). A compact JWS never contains a comma, so each part is a
            // token of its own: two tokens are refused whichever way they arrive.
            found.extend(token.split(',').map(|t| Found {
                token: t.trim(),
                source,
            }));
        }
    }
    found
}

//! SPIFFE IDs (SPIFFE ID specification §2): `spiffe://<trust domain>/<path>`, parsed
//! strictly — lower-case scheme and trust domain, path segments of `[A-Za-z0-9._-]`, no
//! empty, `.` or `..` segments — so that two spellings can never name one workload.

use crate::core::limits::MAX_IDENTITY_BYTES;

const SCHEME: &str = "spiffe://";

pub(crate) fn is_trust_domain(td: &str) -> bool {
    !td.is_empty()
        && td.len() <= 255
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Whether `id` looks like it means to be a SPIFFE ID (any letter case of the scheme), so
/// that `SPIFFE://Prod.example.com/x` cannot escape trust-domain checks by being "not one".
pub(crate) fn claims_to_be_spiffe(id: &str) -> bool {
    id.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// The trust domain of a well-formed SPIFFE ID.
pub(crate) fn trust_domain(id: &str) -> Option<&str> {
    if id.len() > MAX_IDENTITY_BYTES {
        return None;
    }
    let rest = id.strip_prefix(SCHEME)?;
    // A workload ID has a path: `spiffe://prod.example.com` alone names the trust domain,
    // not an agent, and is refused wherever an identity is expected.
    let (td, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => return None,
    };
    if !is_trust_domain(td) || path.len() < 2 {
        return None;
    }
    {
        let segments = path.get(1..)?.split('/');
        for seg in segments {
            let ok = !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return None;
            }
        }
    }
    Some(td)
}

pub(crate) fn in_trust_domains(id: &str, trust_domains: &[String]) -> bool {
    trust_domain(id).is_some_and(|td| trust_domains.iter().any(|t| t == td))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        assert_eq!(
            trust_domain("spiffe://prod.example.com/agent/billing"),
            Some("prod.example.com")
        );
        assert_eq!(trust_domain("spiffe://prod.example.com"), None);
        assert_eq!(trust_domain("spiffe://prod.example.com/"), None);
        for bad in [
            "spiffe://Prod.example.com/a",
            "SPIFFE://prod.example.com/a",
            "spiffe://prod.example.com/a/",
            "spiffe://prod.example.com//a",
            "spiffe://prod.example.com/a/../b",
            "spiffe://prod.example.com/a%2fb",
            "spiffe:///a",
            "spiffe://user@prod.example.com/a",
            "spiffe://prod.example.com:443/a",
        ] {
            assert_eq!(trust_domain(bad), None, "{bad}");
        }
        assert!(claims_to_be_spiffe("SPIFFE://x/y"));
        assert!(!claims_to_be_spiffe("alice@example.com"));
    }

    #[test]
    fn trust_domain_is_not_a_suffix_match() {
        let tds = vec!["prod.example.com".to_owned()];
        assert!(in_trust_domains("spiffe://prod.example.com/a", &tds));
        assert!(!in_trust_domains("spiffe://evilprod.example.com/a", &tds));
        assert!(!in_trust_domains("spiffe://prod.example.com.evil/a", &tds));
    }
}

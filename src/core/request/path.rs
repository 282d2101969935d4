//! Request paths as rules see them. A path that an upstream could resolve to another path
//! than the one rules matched is refused (`route_denied`), so `/healthz/../v1/payments`
//! cannot ride on an anonymous health rule. Envoy's `normalize_path` and `merge_slashes`
//! make such paths rare; this is the core's own guard, the same in every host.

use crate::core::token::b64::hex_digit;

/// Whether `path` (without query or fragment) is in the one form rules match against:
/// origin-form, no `.`/`..`/empty segments, no backslash, no `;` path parameters (Tomcat
/// and Jetty drop them before resolving `..;`), and percent-escapes only where needed.
pub(crate) fn is_normalized(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // One pass (this runs on every request): each segment is checked as it ends; only a
    // path with escapes is decoded.
    let mut escaped = false;
    let mut segment_start = 1;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b'\\' | b';' => return false,
            b'%' => escaped = true,
            b'/' => {
                if !segment_allowed(bytes.get(segment_start..i), false) {
                    return false;
                }
                segment_start = i + 1;
            }
            _ => {}
        }
    }
    segment_allowed(bytes.get(segment_start..), true)
        && (!escaped || percent_encoding_is_canonical(path))
}

/// Not `.` or `..`, and not empty unless it is the last (`/a/` is a directory, `/a//b`
/// is not normalized).
fn segment_allowed(segment: Option<&[u8]>, last: bool) -> bool {
    match segment {
        Some(b"." | b"..") | None => false,
        Some(b"") => last,
        Some(_) => true,
    }
}

/// RFC 3986 §6.2.2: a percent-encoded unreserved character (`%61` for `a`, `%2E` for `.`)
/// has a canonical unencoded form, and an upstream that decodes it would see another path
/// than the rules matched; an encoded `/`, `\` or `;` would change segments; encoded
/// control characters and escapes that do not decode to UTF-8 (overlong `%c0%ae` is a dot
/// to some decoders) are refused too, as are broken escapes.
fn percent_encoding_is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let byte = match (
                bytes.get(i + 1).and_then(|c| hex_digit(*c)),
                bytes.get(i + 2).and_then(|c| hex_digit(*c)),
            ) {
                (Some(h), Some(l)) => (h << 4) | l,
                _ => return false,
            };
            if byte.is_ascii_alphanumeric()
                || b"-._~/\\;".contains(&byte)
                || byte.is_ascii_control()
            {
                return false;
            }
            decoded.push(byte);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules as first written, one check at a time: the one-pass version must agree.
    fn reference(path: &str) -> bool {
        if !path.starts_with('/') || path.contains(['\\', ';']) || path.contains("//") {
            return false;
        }
        if !percent_encoding_is_canonical(path) {
            return false;
        }
        let segments: Vec<&str> = path[1..].split('/').collect();
        let last = segments.len() - 1;
        segments
            .iter()
            .enumerate()
            .all(|(i, seg)| *seg != "." && *seg != ".." && (!seg.is_empty() || i == last))
    }

    #[test]
    fn one_pass_agrees_with_the_rules_on_every_short_path() {
        const ALPHABET: [char; 8] = ['/', '.', '%', '2', 'e', 'a', ';', '\\'];
        let mut paths = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = paths
                .iter()
                .filter(|p| p.len() == paths.last().map_or(0, String::len))
                .flat_map(|p| ALPHABET.iter().map(move |c| format!("{p}{c}")))
                .collect();
            paths.extend(longer);
        }
        assert_eq!(paths.len(), (0..=6).map(|n| 8usize.pow(n)).sum::<usize>());
        for path in &paths {
            assert_eq!(is_normalized(path), reference(path), "{path:?}");
        }
    }

    #[test]
    fn normalized_paths() {
        for ok in [
            "/",
            "/v1/payments",
            "/v1/payments/",
            "/a.b/c-d",
            "/a%20b",
            "/caf%C3%A9",
            "/pkg.Service/Method",
        ] {
            assert!(is_normalized(ok), "{ok}");
        }
    }

    #[test]
    fn paths_an_upstream_could_read_differently() {
        for bad in [
            "",
            "v1",
            "*",
            "http://h/v1",
            "/a/../b",
            "/a/./b",
            "/a//b",
            "//a",
            "/a/%2e%2e/b",
            "/a%2Fb",
            "/a\\b",
            "/..",
            "/.",
            "/v1/p%61yments",
            "/a%5cb",
            "/a%zz",
            "/a%2",
            "/healthz/..;/v1/payments",
            "/healthz/.;/v1",
            "/v1;x=y/payments",
            "/a%3bb",
            "/healthz/%c0%ae%c0%ae/v1",
            "/a%00b",
            "/a%0d%0ab",
        ] {
            assert!(!is_normalized(bad), "{bad}");
        }
    }
}

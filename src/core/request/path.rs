//! Request paths as rules see them. A path that an upstream could resolve to another path
//! than the one rules matched is refused (`route_denied`), so `/healthz/../v1/payments`
//! cannot ride on an anonymous health rule. Envoy's `normalize_path` and `merge_slashes`
//! make such paths rare; this is the core's own guard, the same in every host.

use crate::core::token::b64::hex_digit;

/// Whether `path` (without query or fragment) is in the one form rules match against:
/// origin-form, no `.`/`..`/empty segments, no backslash, no `;` path parameters (Tomcat
/// and Jetty drop them before resolving `..;`), and percent-escapes only where needed.
pub(crate) fn is_normalized(path: &str) -> bool {
    if !path.starts_with('/') || path.contains(['\\', ';']) || path.contains("//") {
        return false;
    }
    // Only a path with escapes is decoded (this runs on every request).
    if path.contains('%') && !percent_encoding_is_canonical(path) {
        return false;
    }
    // No empty segment but the last one: `//` was refused above, and the first `/` is
    // the path's own.
    path.get(1..)
        .unwrap_or_default()
        .split('/')
        .all(|seg| seg != "." && seg != "..")
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

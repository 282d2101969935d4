//! `htu` comparison (RFC 9449 §4.3 step 9, SPEC §10): the proof's URI and the request's
//! URI, each as `scheme://authority/path` with the scheme and host in lower case, the
//! default port dropped, an empty path as `/`, and no query or fragment.

/// The comparison form of an absolute http(s) URI, or `None` when it is not one actwarden
/// can compare (another scheme, userinfo, a bad port, control characters).
pub fn normalize(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = rest.get(..end)?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (rest.get(..slash)?, rest.get(slash..)?),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    // Built by hand, not `format!`: this runs twice per DPoP request.
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme);
    out.push_str("://");
    push_authority(&mut out, authority, default_port)?;
    out.push_str(path);
    Some(out)
}

/// The URI a request was sent to: `scheme://authority` and the path without its query.
pub fn request_uri(scheme: &str, authority: &str, path_only: &str) -> Option<String> {
    let mut uri = String::with_capacity(scheme.len() + 3 + authority.len() + path_only.len());
    for part in [scheme, "://", authority, path_only] {
        uri.push_str(part);
    }
    normalize(&uri)
}

/// Appends the host in lower case, and the port only when it is not the scheme's default.
/// Userinfo is refused: it never belongs in an `htu` (RFC 9110 §4.2.4 deprecates it in
/// http URIs).
fn push_authority(out: &mut String, authority: &str, default_port: u16) -> Option<()> {
    if authority.is_empty()
        || authority.contains('@')
        || authority
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let (host, port) = split_port(authority)?;
    if host.is_empty() {
        return None;
    }
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(p) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(&p.to_string());
    }
    Some(())
}

/// `host[:port]` or `[v6][:port]`; an empty port (`host:`) is the default (RFC 3986 §6.2.3).
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = authority.get(..=close)?;
        match authority.get(close + 1..)? {
            "" => return Some((host, None)),
            rest => (host, rest.strip_prefix(':')?),
        }
    } else {
        match authority.rsplit_once(':') {
            None => return Some((authority, None)),
            // A host name has no colon (RFC 3986 §3.2.2): `a:443:` is no `a` with an empty
            // port, and reading it as host `a:443` would not be idempotent.
            Some((host, _)) if host.contains(':') => return None,
            Some((host, port)) => (host, port),
        }
    };
    if port.is_empty() {
        return Some((host, None));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, Some(port.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_host_case_default_port_query_and_fragment_do_not_matter() {
        let base = normalize("https://api.example.com/v1/payments");
        assert_eq!(base.as_deref(), Some("https://api.example.com/v1/payments"));
        for same in [
            "HTTPS://API.Example.COM/v1/payments",
            "https://api.example.com:443/v1/payments",
            "https://api.example.com:/v1/payments",
            "https://api.example.com/v1/payments?x=1",
            "https://api.example.com/v1/payments#frag",
            "https://api.example.com:0443/v1/payments?a#b",
        ] {
            assert_eq!(normalize(same), base, "{same}");
        }
        for other in [
            "https://api.example.com/V1/payments",
            "http://api.example.com/v1/payments",
            "https://api.example.com:8443/v1/payments",
            "https://api.example.com/v1/payments/",
            "https://api.example.org/v1/payments",
        ] {
            assert_ne!(normalize(other), base, "{other}");
        }
    }

    #[test]
    fn empty_path_is_slash_and_ports_are_per_scheme() {
        assert_eq!(
            normalize("https://a.example").as_deref(),
            Some("https://a.example/")
        );
        assert_eq!(normalize("http://a:80/x").as_deref(), Some("http://a/x"));
        assert_eq!(
            normalize("http://a:443/x").as_deref(),
            Some("http://a:443/x")
        );
        assert_eq!(
            normalize("https://[::1]:443/x").as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(
            normalize("https://[::1]:8/x").as_deref(),
            Some("https://[::1]:8/x")
        );
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "ftp://a/x",
            "https:/a/x",
            "https://user@a/x",
            "https://a:99999/x",
            "https://a:8x/x",
            "https:///x",
            "https://a/x y",
            "https://[::1/x",
            "https://a:443:/x",
            "https://a:b:8/x",
            "/relative",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_uri_ignores_the_query() {
        assert_eq!(
            request_uri("https", "API.example.com:443", "/v1/payments").as_deref(),
            Some("https://api.example.com/v1/payments")
        );
    }
}

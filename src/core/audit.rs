//! The audit record of SPEC §6: one JSON line per decision, never the raw token, never a
//! signature. Identity fields are filled only from a verified token (`AuditFacts::identity`).

use crate::core::config::{ProviderName, RuleId};
use crate::core::decision::{Decision, Verdict};
use crate::core::limits::{MAX_AUDIT_HEADER_VALUE, MAX_AUDIT_REQUEST_FIELD};
use crate::core::reasons::Reason;
use crate::core::request::Request;
use crate::core::standing::Standing;
use crate::core::time::UnixTime;
use crate::core::verification::cache::Verified;
use serde::Serialize;
use std::rc::Rc;

/// Whether a binding was checked, and how it went (audit `binding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingOutcome {
    Ok,
    Absent,
    Mismatch,
    NotChecked,
    /// A DPoP proof (SPEC §10) bound the token to the caller's key.
    Dpop,
}

/// One audit record (SPEC §6). Unknown fields are `null`. Identity fields are filled only
/// from a verified token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub ts: String,
    pub decision: &'static str,
    pub reason: Reason,
    pub status: Option<u16>,
    /// SPEC §11: `false` when the decision was made under `mode: "shadow"` (a denial was
    /// forwarded anyway); `true` otherwise.
    pub enforced: bool,
    pub rule: Option<String>,
    pub provider: Option<ProviderName>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub sub_profile: Option<String>,
    pub actor: Option<String>,
    pub chain: Option<Vec<String>>,
    pub depth: Option<usize>,
    pub scopes: Option<Vec<String>>,
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub jti: Option<String>,
    pub token_id: Option<String>,
    pub method: String,
    pub path: String,
    /// SPEC §9: the MCP message's method and name; `null` when not MCP. (Arguments never.)
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    pub authority: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub peer: Option<String>,
    pub binding: BindingOutcome,
    /// Measured by the host around the call (the core has no clock); `null` until then.
    pub eval_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Room for a typical record without growing the buffer (records are ~600–900 bytes;
/// each field is bounded by `limits`, so a long one just grows the buffer).
const AUDIT_LINE_CAPACITY: usize = 1024;

impl AuditRecord {
    /// One line of JSON, as Envoy logs it after `actwarden.audit `.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(AUDIT_LINE_CAPACITY);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
    }

    /// Appends the record as one line of JSON to `out` (hosts that prefix it, like the
    /// Envoy filter's `actwarden.audit `, build the whole line in one buffer).
    ///
    /// Written by hand, member by member, rather than through serde: this runs for every
    /// request in Envoy, where serde_json's generic writer cost several µs per record in
    /// V8. The output is byte for byte what `serde_json::to_string` gives for the derived
    /// `Serialize` (tested: `audit_json_equals_serde`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = JsonObject::new(out);
        w.str("ts", Some(&self.ts));
        w.str("decision", Some(self.decision));
        w.str("reason", Some(self.reason.code()));
        w.num("status", self.status.map(u64::from));
        w.bool("enforced", self.enforced);
        w.str("rule", self.rule.as_deref());
        w.str("provider", self.provider.as_deref());
        w.str("iss", self.iss.as_deref());
        w.str("sub", self.sub.as_deref());
        w.str("sub_profile", self.sub_profile.as_deref());
        w.str("actor", self.actor.as_deref());
        w.list("chain", self.chain.as_deref());
        w.num("depth", self.depth.map(|d| d as u64));
        w.list("scopes", self.scopes.as_deref());
        w.str("kid", self.kid.as_deref());
        w.str("alg", self.alg.as_deref());
        w.str("jti", self.jti.as_deref());
        w.str("token_id", self.token_id.as_deref());
        w.str("method", Some(&self.method));
        w.str("path", Some(&self.path));
        w.str("mcp_method", self.mcp_method.as_deref());
        w.str("mcp_name", self.mcp_name.as_deref());
        w.str("authority", self.authority.as_deref());
        w.str("request_id", self.request_id.as_deref());
        w.str("trace_id", self.trace_id.as_deref());
        w.str("peer", self.peer.as_deref());
        w.str("binding", Some(self.binding.code()));
        w.num("eval_us", self.eval_us);
        if let Some(detail) = &self.detail {
            w.str("detail", Some(detail));
        }
        w.close();
    }
}

impl BindingOutcome {
    /// The audit value (`serde` name).
    pub fn code(self) -> &'static str {
        match self {
            BindingOutcome::Ok => "ok",
            BindingOutcome::Absent => "absent",
            BindingOutcome::Mismatch => "mismatch",
            BindingOutcome::NotChecked => "not_checked",
            BindingOutcome::Dpop => "dpop",
        }
    }
}

/// A JSON object written member by member into a byte buffer, escaping as serde_json
/// does (`"`, `\\`, and control characters; everything else verbatim, UTF-8 included).
struct JsonObject<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> JsonObject<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => write_json_string(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => {
                let mut digits = [0u8; 20];
                let mut at = digits.len();
                let mut n = n;
                loop {
                    at -= 1;
                    if let Some(d) = digits.get_mut(at) {
                        *d = b'0' + (n % 10) as u8;
                    }
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                self.out
                    .extend_from_slice(digits.get(at..).unwrap_or_default());
            }
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.out.extend_from_slice(text);
    }

    fn list(&mut self, key: &str, values: Option<&[String]>) {
        self.key(key);
        let Some(values) = values else {
            self.out.extend_from_slice(b"null");
            return;
        };
        self.out.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_json_string(self.out, v);
        }
        self.out.push(b']');
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// `value` as a JSON string: runs that need no escape are copied in one piece.
fn write_json_string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
            out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// What a decision learned that its audit record reports, kept as it was found: shared
/// names from the policy and the cache's own entry, not copies. The record is built from
/// these, the verdict and the request only when a host writes or returns it
/// (`Decision::audit_record`), so an allowed request whose record is not logged copies
/// no field.
#[derive(Debug, Clone)]
pub(crate) struct AuditFacts {
    pub now: UnixTime,
    pub rule: Option<RuleId>,
    pub provider: Option<ProviderName>,
    pub token: Option<TokenSeen>,
    /// Set only once the token's signature verified: the identity fields come from here.
    pub identity: Option<Identity>,
    pub binding: BindingOutcome,
    /// A denial's detail (also in its response body).
    pub detail: Option<String>,
}

impl AuditFacts {
    pub(crate) fn new(now: UnixTime) -> Self {
        AuditFacts {
            now,
            rule: None,
            provider: None,
            token: None,
            identity: None,
            binding: BindingOutcome::NotChecked,
            detail: None,
        }
    }
}

/// The token a decision saw, as a record identifies it (`token_id`, `kid`, `alg`), whether
/// or not it verified.
#[derive(Debug, Clone)]
pub(crate) enum TokenSeen {
    /// A cache hit: the entry holds all three.
    Cached(Rc<Verified>),
    /// Read from the token now: its `token_id`, then, once it parsed, the header's `kid`
    /// and `alg` (bounded).
    Read {
        token_id: String,
        kid: Option<String>,
        alg: Option<String>,
    },
}

impl TokenSeen {
    /// A token read now, before its header is.
    pub(crate) fn read(token_id: String) -> Self {
        TokenSeen::Read {
            token_id,
            kid: None,
            alg: None,
        }
    }
}

/// A token whose signature verified, and its standing under the policy (its effective
/// scopes, SPEC §3, among the rest).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub token: Rc<Verified>,
    pub standing: Rc<Standing>,
}

/// The audit record of `decision`, made of `request` (SPEC §6).
pub(crate) fn record(decision: &Decision, request: &Request) -> AuditRecord {
    let facts = &decision.audit;
    let verdict = &decision.verdict;
    let (token_id, kid, alg) = token_fields(facts.token.as_ref());
    let claims = facts.identity.as_ref().map(|i| &i.token.claims);
    // SPEC §9: the MCP method and name, unless the gateway answered the request itself.
    let mcp = decision
        .mcp
        .as_ref()
        .filter(|_| !matches!(verdict, Verdict::Answer { .. }));
    AuditRecord {
        ts: facts.now.rfc3339(),
        decision: if decision.is_allowed() {
            "allow"
        } else {
            "deny"
        },
        reason: verdict.reason(),
        status: match verdict {
            Verdict::Answer { response } => Some(response.http_status),
            _ => verdict.reason().status(),
        },
        enforced: decision.enforced,
        rule: facts.rule.as_deref().map(str::to_owned),
        provider: facts.provider.clone(),
        iss: claims.map(|c| c.iss.clone()),
        sub: claims.map(|c| c.sub.clone()),
        sub_profile: claims.and_then(|c| c.sub_profile.clone()),
        actor: claims.and_then(|c| c.chain.first()).map(|a| a.sub.clone()),
        chain: claims.map(|c| c.chain.iter().map(|a| a.sub.clone()).collect()),
        depth: claims.map(|c| c.chain.len()),
        scopes: decision.effective_scopes().map(<[String]>::to_vec),
        kid,
        alg,
        jti: claims.and_then(|c| c.jti.clone()),
        token_id,
        method: truncate(&request.method, MAX_AUDIT_REQUEST_FIELD),
        path: truncate(request.path_only(), MAX_AUDIT_REQUEST_FIELD),
        mcp_method: mcp.and_then(|f| f.method.clone()),
        mcp_name: mcp
            .and_then(|f| f.name.as_deref())
            .map(|n| truncate(n, MAX_AUDIT_REQUEST_FIELD)),
        authority: request
            .authority
            .as_deref()
            .map(|a| truncate(a, MAX_AUDIT_REQUEST_FIELD)),
        request_id: request
            .single_header("x-request-id")
            .map(|v| truncate(v, MAX_AUDIT_HEADER_VALUE)),
        trace_id: request.single_header("traceparent").and_then(trace_id),
        peer: request.peer.as_ref().and_then(|p| p.uri_san.clone()),
        binding: facts.binding,
        eval_us: None,
        detail: facts.detail.clone(),
    }
}

/// `token_id`, `kid` and `alg` (the latter two as the token's header says, bounded).
fn token_fields(token: Option<&TokenSeen>) -> (Option<String>, Option<String>, Option<String>) {
    match token {
        None => (None, None, None),
        Some(TokenSeen::Cached(entry)) => (
            Some(entry.token_id.clone()),
            entry
                .header
                .kid
                .as_deref()
                .map(|k| truncate(k, MAX_AUDIT_HEADER_VALUE)),
            Some(truncate(&entry.header.alg, MAX_AUDIT_HEADER_VALUE)),
        ),
        Some(TokenSeen::Read { token_id, kid, alg }) => {
            (Some(token_id.clone()), kid.clone(), alg.clone())
        }
    }
}

/// `value` cut to at most `max` bytes at a character boundary (caller-controlled audit
/// fields are bounded, see `limits`).
pub(crate) fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default().to_owned()
}

/// W3C Trace Context `traceparent` → trace id (32 lower-case hex digits, not all zero).
pub(crate) fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace, _span, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = trace.len() == 32
        && trace
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && trace.bytes().any(|b| b != b'0');
    ok.then(|| trace.to_owned())
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn traceparent() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("garbage"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str, full: bool) -> AuditRecord {
        let some = |s: &str| full.then(|| s.to_owned());
        AuditRecord {
            ts: "2026-11-23T12:00:00.123Z".into(),
            decision: if full { "allow" } else { "deny" },
            reason: if full {
                Reason::Allowed
            } else {
                Reason::ActorScopeExceeded
            },
            status: (!full).then_some(403),
            enforced: full,
            rule: some(text),
            provider: full.then(|| ProviderName::from("p")),
            iss: some(text),
            sub: some(text),
            sub_profile: some("user"),
            actor: some(text),
            chain: full.then(|| vec![text.to_owned(), "b".into()]),
            depth: full.then_some(2),
            scopes: full.then(Vec::new),
            kid: some(text),
            alg: some("ES256"),
            jti: some(text),
            token_id: some("0123456789abcdef"),
            method: text.into(),
            path: text.into(),
            mcp_method: some("tools/call"),
            mcp_name: some(text),
            authority: some(text),
            request_id: some(text),
            trace_id: some("4bf92f3577b34da6a3ce929d0e0e4736"),
            peer: some(text),
            binding: if full {
                BindingOutcome::Ok
            } else {
                BindingOutcome::NotChecked
            },
            eval_us: full.then_some(u64::MAX),
            detail: (!full).then(|| text.to_owned()),
        }
    }

    #[test]
    fn audit_json_equals_serde() {
        let nasty = [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
            "unicode é ✓ 😀 \u{2028}\u{2029}",
            "</script><!--",
        ];
        for text in nasty {
            for full in [true, false] {
                let r = record(text, full);
                let ours = r.to_json_line();
                let serde = serde_json::to_string(&r).unwrap();
                assert_eq!(ours, serde, "{text:?} full={full}");
            }
        }
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut r = record("x", true);
            r.eval_us = Some(n);
            assert_eq!(r.to_json_line(), serde_json::to_string(&r).unwrap());
        }
    }
}

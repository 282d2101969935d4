//! What a decision produces: the verdict, the deny response (SPEC §4), the identity
//! headers (SPEC §5) and the audit record (SPEC §6). Hosts only copy these out.

use crate::core::audit::AuditFacts;
pub use crate::core::audit::{AuditRecord, BindingOutcome};
use crate::core::config::RuleId;
use crate::core::reasons::{Denial, Reason};
use crate::core::request::Request;
use crate::core::trace::Trace;
use std::rc::Rc;

/// Header names actwarden sets on allow. Inbound headers with this prefix are removed.
pub(crate) const IDENTITY_HEADER_PREFIX: &str = "x-agent-";

/// Whether a request field (header or trailer) is an identity field that callers may not
/// send (SPEC §5): `x-agent-…` in any letter case, and `x_agent_…` too — CGI, WSGI, PHP and
/// Rack map `_` and `-` to the same variable, and Envoy passes underscores through by
/// default.
pub(crate) fn is_identity_header(name: &str) -> bool {
    name.get(..IDENTITY_HEADER_PREFIX.len()).is_some_and(|p| {
        p.bytes()
            .map(|b| {
                if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                }
            })
            .eq(IDENTITY_HEADER_PREFIX.bytes())
    })
}

/// The local reply for a denied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyResponse {
    /// HTTP status to send: the reason's status, or 200 for gRPC (status in `grpc-status`).
    pub http_status: u16,
    pub headers: Vec<(String, String)>,
    /// JSON `{"error", "detail"}`; empty for gRPC.
    pub body: String,
}

/// Allow or deny, with exactly what each needs: an allow never carries a deny response, a
/// deny never carries identity headers, and only a verified token yields identity headers.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A verified token passed every check (`allowed`): forward with these identity
    /// headers (SPEC §5) set.
    Allow { identity_headers: IdentityHeaders },
    /// No token, and the rule (or `on_no_match`) allows that (`allowed_anonymous`): forward
    /// with no identity.
    AllowAnonymous,
    /// Refused: the facts of the first failing check, and the local reply to send.
    Deny {
        denial: Denial,
        response: DenyResponse,
    },
    /// Answered by the gateway itself, never forwarded: the RFC 9728 metadata `GET`
    /// (SPEC §9, `resource_metadata`, 200). Not a denial.
    Answer { response: DenyResponse },
}

/// The identity headers of an allow (SPEC §5): the token's, shared with its cache entry
/// (`Standing`), then `x-agent-rule`. Names are fixed by the SPEC; values are built once per
/// verified token, not per request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityHeaders {
    pub(crate) token: Rc<[(&'static str, String)]>,
    pub(crate) rule: RuleId,
}

impl IdentityHeaders {
    /// Name and value of each header, in the order SPEC §5 lists them.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.token
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .chain(std::iter::once(("x-agent-rule", &*self.rule)))
    }
}

impl Verdict {
    pub fn reason(&self) -> Reason {
        match self {
            Verdict::Allow { .. } => Reason::Allowed,
            Verdict::AllowAnonymous => Reason::AllowedAnonymous,
            Verdict::Deny { denial, .. } => denial.reason(),
            Verdict::Answer { .. } => Reason::ResourceMetadata,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    /// Inbound header names (as received) starting with `x-agent-`: always removed.
    pub strip_headers: Vec<String>,
    /// SPEC §11: `false` under shadow mode, where a denied request is forwarded anyway
    /// (still stripped of `x-agent-*`, with no identity headers added). The verdict stays
    /// the real one; hosts send a deny response only when `enforced`.
    pub enforced: bool,
    /// What the audit record reports; the record is built only when asked for
    /// (`audit_record`).
    pub(crate) audit: AuditFacts,
    /// The checks run, in order; only when asked for (`decide_traced`), for explanations.
    pub trace: Option<Trace>,
    /// What the MCP message said (SPEC §9), arguments dropped; `None` when the request is
    /// not one (or was refused before its body was read).
    pub mcp: Option<crate::core::mcp::McpFacts>,
}

impl Decision {
    /// The reply a host must send instead of forwarding: a denial's response, unless the
    /// denial is in shadow mode (SPEC §11), or the gateway's own answer (SPEC §9), which is
    /// never forwarded whatever the mode.
    pub fn enforced_response(&self) -> Option<&DenyResponse> {
        match &self.verdict {
            Verdict::Answer { response } => Some(response),
            _ => self.response().filter(|_| self.enforced),
        }
    }

    pub fn is_allowed(&self) -> bool {
        !matches!(self.verdict, Verdict::Deny { .. })
    }

    pub fn reason(&self) -> Reason {
        self.verdict.reason()
    }

    /// The HTTP status of a denial (SPEC §4); `None` on allow.
    pub fn status(&self) -> Option<u16> {
        self.reason().status()
    }

    pub fn denial(&self) -> Option<&Denial> {
        match &self.verdict {
            Verdict::Deny { denial, .. } => Some(denial),
            _ => None,
        }
    }

    /// The local reply: for a denied request, or the gateway's own answer
    /// (`Verdict::Answer`); `None` when the request is forwarded.
    pub fn response(&self) -> Option<&DenyResponse> {
        match &self.verdict {
            Verdict::Deny { response, .. } | Verdict::Answer { response } => Some(response),
            _ => None,
        }
    }

    /// Whether the host must filter the response (SPEC §9): an allowed `tools/list` with
    /// `mcp.filter_tools_list` on.
    pub fn filters_tools_list(&self, policy: &crate::core::config::Policy) -> bool {
        let filtering = policy.mcp.as_ref().is_some_and(|m| m.filter_tools_list);
        let list = self
            .mcp
            .as_ref()
            .is_some_and(|f| f.method.as_deref() == Some("tools/list"));
        filtering
            && list
            && matches!(
                self.verdict,
                Verdict::Allow { .. } | Verdict::AllowAnonymous
            )
    }

    /// Identity headers to set on the forwarded request (none unless `allowed`).
    pub fn identity_headers(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        let headers = match &self.verdict {
            Verdict::Allow { identity_headers } => Some(identity_headers),
            _ => None,
        };
        headers.into_iter().flat_map(IdentityHeaders::iter)
    }

    /// The token's scopes after every actor's ceiling (SPEC §3), computed once by the
    /// pipeline; `None` unless the signature verified.
    pub fn effective_scopes(&self) -> Option<&[String]> {
        self.audit
            .identity
            .as_ref()
            .map(|i| i.standing.scopes.as_slice())
    }

    /// Whether the request's token verified (its identity is known: audit `sub` and the
    /// other identity fields are filled).
    pub fn verified(&self) -> bool {
        self.audit.identity.is_some()
    }

    /// Whether a binding was checked, and how it went (audit `binding`).
    pub fn binding(&self) -> BindingOutcome {
        self.audit.binding
    }

    /// The audit record of this decision (SPEC §6), for `request`, the request it decided.
    /// Built on each call, from what the decision kept: hosts build it only for a record
    /// they write or return (an allowed request under `audit.log: "denials"` builds
    /// none). `eval_us` is `None`: the host measures it.
    pub fn audit_record(&self, request: &Request) -> AuditRecord {
        crate::core::audit::record(self, request)
    }
}

/// gRPC status for an HTTP denial status (SPEC §4).
pub(crate) fn grpc_status(http: u16) -> u16 {
    match http {
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        503 => 14, // UNAVAILABLE
        _ => 2,    // UNKNOWN
    }
}

/// Escapes a value for a quoted-string auth-param (RFC 9110 §5.6.4).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// The `WWW-Authenticate` challenge for a denial, if it has one (RFC 6750 §3, RFC 9470).
pub(crate) fn www_authenticate(
    denial: &Denial,
    required_scopes: &[String],
    acr_values: Option<&[String]>,
) -> Option<String> {
    let reason = denial.reason();
    match (reason, reason.status()) {
        (Reason::TokenMissing, _) => Some("Bearer".to_owned()),
        (Reason::StepupRequired, _) => {
            let mut v = format!(
                "Bearer error=\"insufficient_user_authentication\", error_description={}",
                quoted(reason.code())
            );
            if let Denial::StepUpRequired { max, .. } = denial {
                v.push_str(&format!(", max_age={}", quoted(&max.to_string())));
            }
            if let Some(acr) = acr_values.filter(|a| !a.is_empty()) {
                v.push_str(&format!(", acr_values={}", quoted(&acr.join(" "))));
            }
            Some(v)
        }
        (_, Some(401)) => Some(format!(
            "Bearer error=\"invalid_token\", error_description={}",
            quoted(reason.code())
        )),
        (_, Some(403)) => {
            let mut v = format!(
                "Bearer error=\"insufficient_scope\", error_description={}",
                quoted(reason.code())
            );
            if matches!(
                reason,
                Reason::ScopeInsufficient | Reason::ActorScopeExceeded
            ) && !required_scopes.is_empty()
            {
                v.push_str(&format!(", scope={}", quoted(&required_scopes.join(" "))));
            }
            Some(v)
        }
        _ => None,
    }
}

pub(crate) fn deny_response(
    denial: &Denial,
    detail: &str,
    grpc: bool,
    required_scopes: &[String],
    acr_values: Option<&[String]>,
) -> DenyResponse {
    let reason = denial.reason();
    let status = reason.status().unwrap_or(403);
    let mut headers = Vec::new();
    if let Some(challenge) = www_authenticate(denial, required_scopes, acr_values) {
        headers.push(("www-authenticate".to_owned(), challenge));
    }
    if grpc {
        headers.push(("content-type".to_owned(), "application/grpc".to_owned()));
        headers.push(("grpc-status".to_owned(), grpc_status(status).to_string()));
        headers.push(("grpc-message".to_owned(), reason.code().to_owned()));
        DenyResponse {
            http_status: 200,
            headers,
            body: String::new(),
        }
    } else {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        let body = serde_json::json!({ "error": reason.code(), "detail": detail }).to_string();
        DenyResponse {
            http_status: status,
            headers,
            body,
        }
    }
}

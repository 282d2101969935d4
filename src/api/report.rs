//! The JSON a host prints for a decision (SPEC §7): the audit record plus `headers` (the
//! identity headers that would be forwarded) and, extending the SPEC, `response` (what a
//! denied caller receives). The CLI and the playground print exactly this.

use crate::core::decision::{AuditRecord, Decision};
use serde_json::{Map, Value};

/// `audit` is the decision's record (`Decision::audit_record`), with the host's `eval_us`.
pub fn decision_json(decision: &Decision, audit: &AuditRecord) -> Value {
    let mut out = match serde_json::to_value(audit) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let headers: Map<String, Value> = decision
        .identity_headers()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    out.insert("headers".into(), Value::Object(headers));
    let response = match decision.response() {
        None => Value::Null,
        Some(r) => {
            let headers: Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            serde_json::json!({ "status": r.http_status, "headers": headers, "body": r.body })
        }
    };
    out.insert("response".into(), response);
    // Extension: inbound `x-agent-*` headers removed before anything else (spoofing shows).
    out.insert(
        "stripped_headers".into(),
        Value::Array(
            decision
                .strip_headers
                .iter()
                .map(|h| Value::String(h.clone()))
                .collect(),
        ),
    );
    Value::Object(out)
}

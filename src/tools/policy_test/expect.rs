//! What a case expects, and how it is compared with the decision report (the JSON
//! `actwarden check` prints): `reason` always; `decision` and `status` when given;
//! `headers` and `audit` as subsets (each member given must be equal; `null` = absent or
//! null).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub reason: String,
    /// `allow` or `deny`.
    #[serde(default)]
    pub decision: Option<String>,
    /// The reason's status; `null` expects an allow's `null`.
    #[serde(default, deserialize_with = "present")]
    pub status: Option<Value>,
    /// Identity headers forwarded (subset).
    #[serde(default)]
    pub headers: Option<Map<String, Value>>,
    /// Audit record fields (subset).
    #[serde(default)]
    pub audit: Option<Map<String, Value>>,
}

/// A member that, when written, counts even as `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One way a case differed: where, what was expected, what came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// `reason`, `status`, `headers.x-agent-rule`, `audit.enforced`, …
    pub what: String,
    pub expected: Value,
    pub got: Value,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.what, self.expected, self.got
        )
    }
}

pub(crate) fn compare(expect: &Expectation, report: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut check = |what: String, expected: &Value, got: Option<&Value>| {
        let got = got.cloned().unwrap_or(Value::Null);
        if &got != expected {
            out.push(Mismatch {
                what,
                expected: expected.clone(),
                got,
            });
        }
    };
    check(
        "reason".into(),
        &Value::String(expect.reason.clone()),
        report.get("reason"),
    );
    if let Some(decision) = &expect.decision {
        check(
            "decision".into(),
            &Value::String(decision.clone()),
            report.get("decision"),
        );
    }
    if let Some(status) = &expect.status {
        check("status".into(), status, report.get("status"));
    }
    for (name, value) in expect.headers.iter().flatten() {
        let got = report.get("headers").and_then(|h| h.get(name));
        check(format!("headers.{name}"), value, got);
    }
    for (name, value) in expect.audit.iter().flatten() {
        check(format!("audit.{name}"), value, report.get(name));
    }
    out
}

//! Dangerous: looking inside a token WITHOUT verifying it (for `actwarden decode` and the
//! playground). Nothing here may feed a decision; the output says `"verified": false`.

use crate::core::token::{self, TokenProblem};
use serde_json::{json, Value};

/// Header, claims and actor chain of a token, **unverified**.
pub fn decode_unverified(token: &str) -> Value {
    match token::split(token.trim()) {
        Err(problem) => json!({ "verified": false, "error": describe(&problem) }),
        Ok(jws) => {
            let header = crate::core::token::json::parse_strict(
                jws.signing_input
                    .split('.')
                    .next()
                    .and_then(crate::core::token::b64::decode)
                    .unwrap_or_default()
                    .as_slice(),
            )
            .unwrap_or(Value::Null);
            let claims =
                crate::core::token::json::parse_strict(&jws.payload).unwrap_or(Value::Null);
            let mut chain = Vec::new();
            let mut next = claims.get("act");
            while let Some(act) = next {
                chain.push(act.get("sub").cloned().unwrap_or(Value::Null));
                next = act.get("act");
            }
            json!({ "verified": false, "header": header, "claims": claims, "subject": claims.get("sub"), "chain": chain })
        }
    }
}

fn describe(problem: &TokenProblem) -> String {
    problem.describe()
}

//! `require.arguments` (SPEC §9): conditions on a message's `arguments`, each an RFC 6901
//! pointer and one test. A pointer that does not resolve, or a value of the wrong type,
//! fails every test but `absent`. The last check of step 8 (`argument_denied`).
//!
//! Denials name the pointer and the test, never the value: argument values never enter a
//! record or a log line.

use super::config::{ArgumentCondition, ArgumentTest};
use crate::core::claims::Claims;
use crate::core::reasons::Denial;
use crate::core::token::json::Object;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// A parsed RFC 6901 pointer: its reference tokens, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer(Vec<String>);

impl Pointer {
    /// `""` (the whole document) or `/`-separated tokens with `~0` / `~1` escapes only.
    pub(crate) fn parse(text: &str) -> Option<Pointer> {
        if text.is_empty() {
            return Some(Pointer(Vec::new()));
        }
        let rest = text.strip_prefix('/')?;
        rest.split('/')
            .map(unescape)
            .collect::<Option<_>>()
            .map(Pointer)
    }

    /// The value this pointer names inside `arguments` (the document root).
    fn resolve<'v>(&self, arguments: &'v Object) -> Option<&'v Value> {
        let mut tokens = self.0.iter();
        let mut current = match tokens.next() {
            None => return None, // "" names the object itself, which no test accepts
            Some(first) => arguments.get(first)?,
        };
        for token in tokens {
            current = match current {
                Value::Object(map) => map.get(token)?,
                Value::Array(items) => items.get(array_index(token)?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// RFC 6901 §4: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// Every condition, in order; the first that fails is the denial.
pub(crate) fn check(
    conditions: &[ArgumentCondition],
    arguments: Option<&Object>,
    claims: &Claims,
) -> Result<(), Denial> {
    let empty = Object::default();
    let arguments = arguments.unwrap_or(&empty);
    for c in conditions {
        if !passes(c, arguments, claims) {
            return Err(Denial::ArgumentDenied {
                pointer: c.pointer.clone(),
                test: c.test.name(),
            });
        }
    }
    Ok(())
}

fn passes(c: &ArgumentCondition, arguments: &Object, claims: &Claims) -> bool {
    let value = c.tokens.resolve(arguments);
    match (&c.test, value) {
        (ArgumentTest::Absent, v) => v.is_none(),
        (_, None) => false,
        (ArgumentTest::Max(max), Some(Value::Number(n))) => {
            compare(n, max).is_some_and(Ordering::is_le)
        }
        (ArgumentTest::Min(min), Some(Value::Number(n))) => {
            compare(n, min).is_some_and(Ordering::is_ge)
        }
        (ArgumentTest::OneOf(allowed), Some(v)) => allowed.iter().any(|a| json_eq(a, v)),
        (ArgumentTest::EqualsClaim(claim), Some(Value::String(s))) => {
            matches!(claims.raw.get(claim), Some(Value::String(c)) if c == s)
        }
        _ => false,
    }
}

/// Numbers by value: integers exactly (`u64`/`i64` through `i128`), anything else as
/// `f64`, so `1` and `1.0` are equal and a 19-digit integer is not rounded.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality (RFC 8259 values; numbers by value, objects regardless of member order).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(pointer: &str, test: ArgumentTest) -> ArgumentCondition {
        ArgumentCondition {
            pointer: pointer.into(),
            tokens: Pointer::parse(pointer).unwrap(),
            test,
        }
    }

    fn claims() -> Claims {
        crate::core::claims::read(
            json!({"iss":"i","sub":"user:alice","exp":1,"acct":"A-1"})
                .as_object()
                .unwrap()
                .clone()
                .into(),
        )
        .unwrap()
    }

    fn ok(c: ArgumentCondition, args: Value) -> bool {
        let args = args.as_object().map(|a| Object::from(a.clone()));
        check(&[c], args.as_ref(), &claims()).is_ok()
    }

    #[test]
    fn pointers() {
        assert!(Pointer::parse("amount").is_none());
        assert!(Pointer::parse("/a~2").is_none());
        let p = Pointer::parse("/a~1b/~0c/1").unwrap();
        let args = json!({"a/b": {"~c": [0, 42]}});
        assert_eq!(
            p.resolve(&Object::from(args.as_object().unwrap().clone())),
            Some(&json!(42))
        );
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-"), None);
    }

    #[test]
    fn tests_and_types() {
        let max = || cond("/amount", ArgumentTest::Max(Number::from(1000)));
        assert!(ok(max(), json!({"amount": 999.5})));
        assert!(ok(max(), json!({"amount": 1000})));
        assert!(!ok(max(), json!({"amount": 1000.01})));
        assert!(!ok(max(), json!({"amount": "5"})), "wrong type fails");
        assert!(!ok(max(), json!({})), "absent fails");
        let min = cond("/amount", ArgumentTest::Min(Number::from(1)));
        assert!(!ok(min, json!({"amount": 0})));
        let one_of = || cond("/cur", ArgumentTest::OneOf(vec![json!("EUR"), json!(1)]));
        assert!(ok(one_of(), json!({"cur": "EUR"})));
        assert!(ok(one_of(), json!({"cur": 1.0})));
        assert!(!ok(one_of(), json!({"cur": "USD"})));
        let owner = || cond("/owner", ArgumentTest::EqualsClaim("sub".into()));
        assert!(ok(owner(), json!({"owner": "user:alice"})));
        assert!(!ok(owner(), json!({"owner": "user:bob"})));
        let absent = || cond("/debug", ArgumentTest::Absent);
        assert!(ok(absent(), json!({})));
        assert!(!ok(absent(), json!({"debug": null})));
        assert!(ok(absent(), Value::Null), "no arguments at all");
    }
}

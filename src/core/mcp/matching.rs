//! `match.mcp` (SPEC §9): a rule with it matches only MCP messages whose `method` is in
//! `methods` (absent: any message with a method) and, with `names`, whose name equals an
//! entry or starts with the text before an entry's final `*`.

use super::config::McpMatch;
use super::message::McpFacts;

/// Whether a rule's `match.mcp` (if any) fits this request's MCP facts (if any). A rule
/// without `mcp` is not about MCP and fits every request; one with it fits MCP messages only.
pub(crate) fn fits(rule: Option<&McpMatch>, facts: Option<&McpFacts>) -> bool {
    let Some(m) = rule else { return true };
    let Some(method) = facts.and_then(|f| f.method.as_deref()) else {
        return false;
    };
    let method_ok = m
        .methods
        .as_ref()
        .is_none_or(|ms| ms.iter().any(|x| x == method));
    let name = facts.and_then(|f| f.name.as_deref());
    let name_ok = match &m.names {
        None => true,
        Some(names) => name.is_some_and(|n| names.iter().any(|p| name_fits(p, n))),
    };
    method_ok && name_ok
}

/// `pattern` is a name, or a prefix followed by one `*`.
pub(crate) fn name_fits(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts(method: Option<&str>, name: Option<&str>) -> McpFacts {
        McpFacts {
            method: method.map(Into::into),
            name: name.map(Into::into),
            arguments: None,
            id: None,
        }
    }

    #[test]
    fn methods_and_names() {
        let m = McpMatch {
            methods: Some(vec!["tools/call".into()]),
            names: Some(vec!["create_payment".into(), "invoices.*".into()]),
        };
        let call = |n| facts(Some("tools/call"), Some(n));
        assert!(fits(Some(&m), Some(&call("create_payment"))));
        assert!(fits(Some(&m), Some(&call("invoices.list"))));
        assert!(!fits(Some(&m), Some(&call("create_payment2"))));
        assert!(!fits(Some(&m), Some(&call("invoices"))));
        assert!(!fits(Some(&m), Some(&facts(Some("tools/list"), None))));
        assert!(!fits(Some(&m), None), "not an MCP message");
        let any = McpMatch::default();
        assert!(fits(Some(&any), Some(&facts(Some("ping"), None))));
        assert!(
            !fits(Some(&any), Some(&facts(None, None))),
            "a response has no method"
        );
        assert!(fits(None, None));
    }
}

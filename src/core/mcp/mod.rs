//! MCP (Model Context Protocol over Streamable HTTP, SPEC §9): agents call tools through
//! one endpoint, the operation in a JSON-RPC body, so path rules cannot tell
//! `tools/call create_payment` from `tools/list`. This module reads that body and lets
//! rules, requirements, discovery and `tools/list` responses see it.
//!
//! - `config`: the `mcp` block, `match.mcp` and `require.arguments` (raw and checked).
//! - `message`: the facts of one MCP message (method, name, arguments), read strictly,
//!   and the `mcp-method` / `mcp-name` header check — the checks before step 1 of SPEC §4.
//! - `matching`: whether a rule's `match.mcp` fits a message.
//! - `arguments`: `require.arguments` (RFC 6901 pointers), the last check of step 8.
//! - `metadata`: RFC 9728 protected-resource metadata and the `resource_metadata`
//!   challenge parameter.
//! - `tools_list`: filtering a `tools/list` response (JSON or SSE) to what the caller may
//!   call: a pure function over the response bytes.

pub(crate) mod arguments;
pub(crate) mod config;
pub(crate) mod matching;
pub(crate) mod message;
pub(crate) mod metadata;
pub(crate) mod tools_list;

pub use config::{ArgumentCondition, ArgumentTest, McpConfig, McpConfigProblem, McpMatch};
pub use message::{McpFacts, McpProblem};
pub use tools_list::{FilteredResponse, Unfilterable};

use crate::core::config::OnNoMatch;
use crate::core::pipeline::{find_rule, passes_rule, Context};
use crate::core::request::Request;
use crate::core::time::UnixTime;
pub use tools_list::{BodyKind, UNFILTERABLE_BODY, UNFILTERABLE_STATUS};

/// Filters the response to an allowed `tools/list` (`request`, whose MCP facts are
/// `facts`): a tool stays when a `tools/call` of that name, with this request's token,
/// peer and time, would pass every check except `require.arguments` (SPEC §9).
///
/// The rule a tool falls under is found per tool; the checks run once per distinct rule
/// (they do not depend on the name once the rule is known), so a list of hundreds of tools
/// under a few rules costs a few decisions, not hundreds.
pub fn filter_tools_list(
    ctx: Context<'_>,
    request: &Request,
    facts: &McpFacts,
    now: UnixTime,
    content_type: &str,
    body: &[u8],
) -> Result<FilteredResponse, Unfilterable> {
    let max = ctx.policy.mcp.as_ref().map_or(0, |m| m.max_response_bytes);
    if body.len() > max {
        return Err(Unfilterable::TooLarge);
    }
    let kind = BodyKind::of(content_type).ok_or(Unfilterable::ContentType)?;
    let path = request.path_only();
    let mut by_rule: Vec<(*const crate::core::config::Rule, bool)> = Vec::new();
    let mut keep = |name: &str| {
        let call = McpFacts {
            method: Some("tools/call".to_owned()),
            name: Some(name.to_owned()),
            arguments: None,
            id: None,
        };
        let Some(rule) = find_rule(ctx.policy, "POST", path, Some(&call)) else {
            return ctx.policy.on_no_match == OnNoMatch::Allow;
        };
        let key: *const crate::core::config::Rule = rule;
        if let Some((_, pass)) = by_rule.iter().find(|(k, _)| *k == key) {
            return *pass;
        }
        let pass = passes_rule(ctx, request, rule, now);
        by_rule.push((key, pass));
        pass
    };
    tools_list::filter(body, kind, facts.id.as_ref(), max, &mut keep)
}

//! The auth matrix (SPEC §12): a policy as a table people can review — per rule, what it
//! matches, which credential it accepts, who may call, what is required, the mode, the
//! revocation lists and keys it depends on, and what happens when anything fails.
//!
//! Built from the checked `Policy` (not the raw JSON), so it shows what the gateway will
//! do, defaults included. `matrix` gives the data (serialized as the JSON format);
//! `to_markdown` renders the same data, so the two formats never disagree.

use crate::core::config::{
    CnfMode, DpopMode, Identity, KeyConfig, OnNoMatch, PathMatch, Policy, Provider, Revoked, Rule,
};
use serde::Serialize;

/// The whole matrix: one row per rule, in evaluation order, and what happens to the rest.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// The policy's top-level mode (`enforce` | `shadow`).
    pub mode: &'static str,
    pub rules: Vec<RuleRow>,
    pub on_no_match: NoMatchRow,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub matches: MatchCell,
    /// This rule's mode: its own, else the policy's.
    pub mode: &'static str,
    /// No token needed (a token that is present is still verified).
    pub anonymous: bool,
    /// Providers are empty for an anonymous rule in a policy without providers.
    pub credential: CredentialCell,
    pub who: WhoCell,
    pub scopes: Vec<String>,
    /// Claim name → accepted values.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// `fresh_auth_s`: the most seconds since `auth_time` (else `iat`); `null` = no limit.
    pub fresh_auth_s: Option<u64>,
    /// `require.arguments` (SPEC §9), as `pointer test` (values of the message never appear).
    pub arguments: Vec<String>,
    pub revocation: RevocationCell,
    pub on_failure: FailureCell,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchCell {
    /// `prefix` or `exact`.
    pub path_kind: &'static str,
    pub path: String,
    /// `null` = any method.
    pub methods: Option<Vec<String>>,
    /// SPEC §9: `null` when the rule is not about MCP messages.
    pub mcp: Option<McpCell>,
}

/// What an MCP rule matches; a rule that lists tool names has one row per name.
#[derive(Debug, Clone, Serialize)]
pub struct McpCell {
    /// `null` = any message with a method.
    pub methods: Option<Vec<String>>,
    /// This row's tool (or prompt/resource) name; `null` = any name.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CredentialCell {
    pub providers: Vec<ProviderCell>,
    /// `binding.cnf`: `if_present` or `required` (certificate-bound tokens, RFC 8705).
    pub cert_binding: &'static str,
    /// `binding.actor_must_match_peer`: the mTLS peer must be the current actor.
    pub peer_is_actor: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderCell {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<&'static str>,
    pub token_types: Vec<String>,
    pub keys: KeysCell,
    /// SPEC §10: `off`, `allowed` or `required`, and the proof algorithms when not `off`.
    pub dpop: DpopCell,
}

#[derive(Debug, Clone, Serialize)]
pub struct DpopCell {
    pub mode: &'static str,
    pub algorithms: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeysCell {
    /// `local` (configured, never refreshed) or `remote` (fetched).
    pub source: &'static str,
    /// Number of keys configured (`null` for remote keys: known only once fetched).
    pub count: Option<usize>,
    pub uri: Option<String>,
    /// Remote: refetched every this many seconds.
    pub refresh_s: Option<u64>,
    /// Remote: the last good keys serve this long after failed refreshes, then 503.
    pub max_stale_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhoCell {
    /// The subject must have a `sub_profile` in `identity.human_profiles`.
    pub human_subject: bool,
    /// `required`, `forbidden` or `optional` (an `act` chain).
    pub delegation: &'static str,
    /// Which actors may be the current actor: from the rule's `actors`, from the identity
    /// allowlist, or `any`.
    pub actors_from: &'static str,
    pub actors: Vec<ActorCell>,
    /// The deepest chain accepted: the rule's `max_chain_depth` and the identity limit.
    pub max_chain_depth: u32,
    /// `null` = no trust-domain pinning.
    pub trust_domains: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorCell {
    pub actor: String,
    /// `null` = no ceiling.
    pub max_scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevocationCell {
    pub jti: usize,
    pub subjects: usize,
    pub actors: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureCell {
    /// `deny` (the reason's status: 401 for credentials, 403 for permissions) or
    /// `forward` (shadow: logged with `"enforced": false`, not blocked).
    pub on_deny: &'static str,
    /// When a provider has no usable keys: always `503 jwks_unavailable`.
    pub keys_unavailable: &'static str,
    /// Never: a failed check is a reason code, never a skip to another rule or provider.
    pub fallback: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoMatchRow {
    /// `deny` (403 `route_denied`) or `allow` (anonymous, `allowed_anonymous`).
    pub action: &'static str,
    pub reason: &'static str,
    pub status: Option<u16>,
    pub mode: &'static str,
}

const KEYS_UNAVAILABLE: &str = "503 jwks_unavailable";

/// The auth matrix of a policy.
pub fn matrix(policy: &Policy) -> Matrix {
    Matrix {
        mode: policy.mode.code(),
        rules: policy
            .rules
            .iter()
            .flat_map(|r| rule_rows(policy, r))
            .collect(),
        on_no_match: no_match_row(policy),
    }
}

/// One row per rule, or per MCP tool name where the rule lists names (SPEC §12).
fn rule_rows(policy: &Policy, rule: &Rule) -> Vec<RuleRow> {
    let row = rule_row(policy, rule);
    let Some(names) = rule.mcp.as_ref().and_then(|m| m.names.as_ref()) else {
        return vec![row];
    };
    names
        .iter()
        .map(|name| {
            let mut r = row.clone();
            if let Some(mcp) = r.matches.mcp.as_mut() {
                mcp.name = Some(name.clone());
            }
            r
        })
        .collect()
}

fn argument_text(c: &crate::core::mcp::ArgumentCondition) -> String {
    use crate::core::mcp::ArgumentTest;
    let test = match &c.test {
        ArgumentTest::Max(n) => format!("max {n}"),
        ArgumentTest::Min(n) => format!("min {n}"),
        ArgumentTest::OneOf(v) => format!("one of {}", serde_json::Value::Array(v.clone())),
        ArgumentTest::EqualsClaim(claim) => format!("equals claim `{claim}`"),
        ArgumentTest::Absent => "absent".to_owned(),
    };
    format!("{} {test}", c.pointer)
}

fn rule_row(policy: &Policy, rule: &Rule) -> RuleRow {
    let req = &rule.require;
    RuleRow {
        rule: rule.id.to_string(),
        matches: match_cell(rule),
        mode: rule.mode.code(),
        anonymous: rule.allow_anonymous,
        credential: credential_cell(policy, rule),
        who: who_cell(&policy.identity, rule),
        scopes: req.scopes.clone(),
        claims: req
            .claims
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::Array(v.clone())))
            .collect(),
        fresh_auth_s: req.fresh_auth_s,
        arguments: req.arguments.iter().map(argument_text).collect(),
        revocation: revocation_cell(&policy.revoked),
        on_failure: FailureCell {
            on_deny: if rule.mode.is_enforced() {
                "deny"
            } else {
                "forward"
            },
            keys_unavailable: KEYS_UNAVAILABLE,
            fallback: false,
        },
    }
}

fn match_cell(rule: &Rule) -> MatchCell {
    let (path_kind, path) = match &rule.path {
        PathMatch::Prefix(p) => ("prefix", p.clone()),
        PathMatch::Exact(p) => ("exact", p.clone()),
    };
    MatchCell {
        path_kind,
        path,
        methods: rule.methods.clone(),
        mcp: rule.mcp.as_ref().map(|m| McpCell {
            methods: m.methods.clone(),
            name: None,
        }),
    }
}

fn credential_cell(policy: &Policy, rule: &Rule) -> CredentialCell {
    CredentialCell {
        providers: rule
            .providers
            .iter()
            .filter_map(|&i| policy.providers.get(i))
            .map(provider_cell)
            .collect(),
        cert_binding: match policy.binding.cnf {
            CnfMode::IfPresent => "if_present",
            CnfMode::Required => "required",
        },
        peer_is_actor: policy.binding.actor_must_match_peer,
    }
}

fn provider_cell(p: &Provider) -> ProviderCell {
    let keys = match &p.keys {
        KeyConfig::Local(set) => KeysCell {
            source: "local",
            count: Some(set.keys.len()),
            uri: None,
            refresh_s: None,
            max_stale_s: None,
        },
        KeyConfig::Remote(r) => KeysCell {
            source: "remote",
            count: None,
            uri: Some(r.uri.clone()),
            refresh_s: Some(r.cache_duration_s),
            max_stale_s: Some(r.max_stale_s),
        },
    };
    ProviderCell {
        name: p.name.to_string(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        algorithms: p.algorithms.iter().map(|a| a.name()).collect(),
        token_types: p.token_types.clone(),
        keys,
        dpop: DpopCell {
            mode: p.dpop.mode.name(),
            algorithms: match p.dpop.mode {
                DpopMode::Off => Vec::new(),
                _ => p.dpop.algorithms.iter().map(|a| a.name()).collect(),
            },
        },
    }
}

fn who_cell(identity: &Identity, rule: &Rule) -> WhoCell {
    let req = &rule.require;
    let ceiling = |actor: &str| -> Option<Vec<String>> {
        identity
            .actors
            .as_ref()
            .and_then(|m| m.get(actor))
            .and_then(|c| c.as_ref())
            .map(|set| set.iter().cloned().collect())
    };
    let actor_cell = |actor: &String| ActorCell {
        actor: actor.clone(),
        max_scopes: ceiling(actor),
    };
    let (actors_from, actors) = match (req.delegated, &req.actors, &identity.actors) {
        (Some(false), _, _) => ("none", Vec::new()),
        (_, Some(list), _) => ("rule", list.iter().map(actor_cell).collect()),
        (_, None, Some(map)) => ("identity", map.keys().map(actor_cell).collect()),
        (_, None, None) => ("any", Vec::new()),
    };
    let max_chain_depth = match (req.delegated, req.max_chain_depth) {
        (Some(false), _) => 0,
        (_, Some(rule_max)) => rule_max.min(identity.max_chain_depth),
        (_, None) => identity.max_chain_depth,
    };
    WhoCell {
        human_subject: req.human_subject,
        delegation: match req.delegated {
            Some(true) => "required",
            Some(false) => "forbidden",
            None => "optional",
        },
        actors_from,
        actors,
        max_chain_depth,
        trust_domains: identity.trust_domains.clone(),
    }
}

fn revocation_cell(revoked: &Revoked) -> RevocationCell {
    RevocationCell {
        jti: revoked.jti.len(),
        subjects: revoked.subjects.len(),
        actors: revoked.actors.len(),
    }
}

fn no_match_row(policy: &Policy) -> NoMatchRow {
    let (action, reason, status) = match policy.on_no_match {
        OnNoMatch::Deny => ("deny", "route_denied", Some(403)),
        OnNoMatch::Allow => ("allow", "allowed_anonymous", None),
    };
    NoMatchRow {
        action,
        reason,
        status,
        mode: policy.mode.code(),
    }
}

// ---------------------------------------------------------------------------------------
// Markdown: the same data, one table row per rule.

const HEADER: &str = "| rule | matches | mode | credential | who may call | scopes | claims | \
freshness | revocation | keys | on failure |\n|---|---|---|---|---|---|---|---|---|---|---|\n";

fn markdown_freshness_and_arguments(row: &RuleRow) -> String {
    let mut lines = vec![row
        .fresh_auth_s
        .map_or("no limit".to_owned(), |s| format!("auth within {s} s"))];
    lines.extend(row.arguments.iter().map(|a| format!("argument {a}")));
    lines.join("\n")
}

/// The matrix as a GitHub-flavoured markdown table (multi-line cells use `<br>`).
pub fn to_markdown(m: &Matrix) -> String {
    let mut out = format!("# Auth matrix\n\nPolicy mode: `{}`\n\n{HEADER}", m.mode);
    for row in &m.rules {
        let cells = [
            format!("`{}`", row.rule),
            markdown_match(&row.matches),
            row.mode.to_owned(),
            markdown_credential(row),
            markdown_who(&row.who, row.anonymous),
            list_or(&row.scopes, "none"),
            markdown_claims(&row.claims),
            markdown_freshness_and_arguments(row),
            format!(
                "jti: {}, subjects: {}, actors: {}",
                row.revocation.jti, row.revocation.subjects, row.revocation.actors
            ),
            markdown_keys(&row.credential.providers),
            markdown_failure(&row.on_failure),
        ];
        out.push_str(&table_row(&cells));
    }
    let n = &m.on_no_match;
    out.push_str(&format!(
        "\nNo rule matches: {} (`{}`{}), mode {}.\n",
        n.action,
        n.reason,
        n.status.map_or(String::new(), |s| format!(", {s}")),
        n.mode
    ));
    out
}

fn table_row(cells: &[String]) -> String {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| c.replace('|', "\\|").replace('\n', "<br>"))
        .collect();
    format!("| {} |\n", escaped.join(" | "))
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn markdown_match(m: &MatchCell) -> String {
    let methods = m
        .methods
        .as_ref()
        .map_or("any method".to_owned(), |ms| ms.join(", "));
    let mut text = format!("{} `{}`\n{methods}", m.path_kind, m.path);
    if let Some(mcp) = &m.mcp {
        let methods = mcp
            .methods
            .as_ref()
            .map_or("any MCP method".to_owned(), |ms| ms.join(", "));
        text.push_str(&format!("\nMCP {methods}"));
        if let Some(name) = &mcp.name {
            text.push_str(&format!(" `{name}`"));
        }
    }
    text
}

fn markdown_credential(row: &RuleRow) -> String {
    let c = &row.credential;
    let mut lines: Vec<String> = Vec::new();
    if row.anonymous {
        lines.push("none needed (a present token is still verified)".to_owned());
    }
    for p in &c.providers {
        lines.push(format!(
            "`{}` ({}) aud {}; alg {}; typ {}",
            p.name,
            p.issuer,
            p.audiences.join(", "),
            p.algorithms.join(", "),
            p.token_types.join(", ")
        ));
        if p.dpop.mode != DpopMode::Off.name() {
            lines.push(format!(
                "`{}` DPoP {} (proof alg {})",
                p.name,
                p.dpop.mode,
                p.dpop.algorithms.join(", ")
            ));
        }
    }
    lines.push(format!("cert binding: {}", c.cert_binding));
    if c.peer_is_actor {
        lines.push("mTLS peer = actor".to_owned());
    }
    lines.join("\n")
}

fn markdown_who(w: &WhoCell, anonymous: bool) -> String {
    if anonymous {
        return "anyone".to_owned();
    }
    let mut lines = vec![
        format!("subject: {}", if w.human_subject { "human" } else { "any" }),
        format!("delegation: {}", w.delegation),
    ];
    let actors: Vec<String> = w
        .actors
        .iter()
        .map(|a| match &a.max_scopes {
            Some(ceiling) => format!("`{}` ≤ {{{}}}", a.actor, ceiling.join(" ")),
            None => format!("`{}`", a.actor),
        })
        .collect();
    match w.actors_from {
        "any" => lines.push("actors: any".to_owned()),
        "none" => {}
        from => lines.push(format!("actors ({from}): {}", actors.join(", "))),
    }
    lines.push(format!("depth ≤ {}", w.max_chain_depth));
    if let Some(tds) = &w.trust_domains {
        lines.push(format!("trust domains: {}", tds.join(", ")));
    }
    lines.join("\n")
}

fn markdown_claims(claims: &serde_json::Map<String, serde_json::Value>) -> String {
    if claims.is_empty() {
        return "none".to_owned();
    }
    claims
        .iter()
        .map(|(k, v)| format!("`{k}` ∈ {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn markdown_keys(providers: &[ProviderCell]) -> String {
    if providers.is_empty() {
        return "—".to_owned();
    }
    providers
        .iter()
        .map(|p| match (p.keys.source, &p.keys.uri) {
            ("remote", Some(uri)) => format!(
                "`{}`: {uri} every {} s, stale ≤ {} s",
                p.name,
                p.keys.refresh_s.unwrap_or_default(),
                p.keys.max_stale_s.unwrap_or_default()
            ),
            _ => format!(
                "`{}`: {} local key(s)",
                p.name,
                p.keys.count.unwrap_or_default()
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn markdown_failure(f: &FailureCell) -> String {
    let on_deny = if f.on_deny == "deny" {
        "deny (401/403)"
    } else {
        "forward, logged (shadow)"
    };
    format!(
        "{on_deny}\nno keys: {}\nnever a fallback",
        f.keys_unavailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "mode": "shadow",
        "providers": { "sts": { "issuer": "https://sts", "audiences": ["api"],
            "remote_jwks": { "http_uri": { "uri": "http://k/jwks", "cluster": "k" },
                             "cache_duration_s": 120, "max_stale_s": 3600 },
            "algorithms": ["ES256"], "dpop": { "mode": "required", "algorithms": ["ES256"] } } },
        "identity": { "trust_domains": ["prod.example.com"], "max_chain_depth": 3,
            "actors": { "spiffe://prod.example.com/a": { "max_scopes": ["x:write", "x:read"] },
                        "spiffe://prod.example.com/b": {} } },
        "binding": { "cnf": "required", "actor_must_match_peer": true },
        "revoked": { "jti": ["j1", "j2"], "actors": ["spiffe://prod.example.com/b"] },
        "rules": [
            { "id": "health", "match": { "path_exact": "/healthz" }, "allow_anonymous": true },
            { "id": "write", "match": { "path_prefix": "/x", "methods": ["POST"] },
              "mode": "enforce",
              "require": { "scopes": ["x:write"], "human_subject": true, "delegated": true,
                           "actors": ["spiffe://prod.example.com/a"], "max_chain_depth": 5,
                           "fresh_auth_s": 300, "claims": { "acr": ["gold"] } } },
            { "id": "direct", "match": { "path_prefix": "/d" },
              "require": { "delegated": false } }
        ]
    }"#;

    fn build() -> Matrix {
        matrix(&Policy::from_json(POLICY).unwrap())
    }

    #[test]
    fn one_row_per_rule_with_what_it_takes() {
        let m = build();
        let ids: Vec<&str> = m.rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(ids, ["health", "write", "direct"]);
        let write = &m.rules[1];
        assert_eq!(write.mode, "enforce");
        assert_eq!(
            write.matches.methods.as_deref(),
            Some(&["POST".to_owned()][..])
        );
        let p = &write.credential.providers[0];
        assert_eq!(
            (p.issuer.as_str(), p.algorithms.as_slice()),
            ("https://sts", &["ES256"][..])
        );
        assert_eq!(p.keys.refresh_s, Some(120));
        assert_eq!(p.keys.max_stale_s, Some(3600));
        assert_eq!(write.credential.cert_binding, "required");
        assert!(write.credential.peer_is_actor);
        assert_eq!(write.who.actors_from, "rule");
        assert_eq!(
            write.who.actors[0].max_scopes.as_deref(),
            Some(&["x:read".to_owned(), "x:write".to_owned()][..])
        );
        // The identity limit (3) is lower than the rule's (5).
        assert_eq!(write.who.max_chain_depth, 3);
        assert_eq!(write.fresh_auth_s, Some(300));
        assert_eq!((write.revocation.jti, write.revocation.actors), (2, 1));
        assert_eq!(write.on_failure.keys_unavailable, "503 jwks_unavailable");
        assert!(!write.on_failure.fallback);
    }

    #[test]
    fn an_mcp_rule_has_one_row_per_tool_name_with_its_argument_conditions() {
        let policy = Policy::from_json(
            r#"{
            "providers": { "sts": { "issuer": "https://sts", "audiences": ["api"],
                "remote_jwks": { "http_uri": { "uri": "http://k/jwks", "cluster": "k" } } } },
            "mcp": { "endpoints": ["/mcp"] },
            "rules": [
                { "id": "pay", "match": { "mcp": { "methods": ["tools/call"],
                                                   "names": ["create_payment", "invoices.*"] } },
                  "require": { "scopes": ["payments:write"],
                               "arguments": [{ "pointer": "/amount", "max": 100 }] } }
            ]
        }"#,
        )
        .unwrap();
        let m = matrix(&policy);
        let names: Vec<_> = m
            .rules
            .iter()
            .map(|r| r.matches.mcp.as_ref().and_then(|c| c.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                Some("create_payment".to_owned()),
                Some("invoices.*".to_owned())
            ]
        );
        assert_eq!(m.rules[0].arguments, ["/amount max 100"]);
        let md = to_markdown(&m);
        assert!(md.contains("MCP tools/call `create_payment`"), "{md}");
        assert!(md.contains("argument /amount max 100"), "{md}");
    }

    #[test]
    fn dpop_mode_and_proof_algorithms_show_per_provider() {
        let m = build();
        let p = &m.rules[1].credential.providers[0];
        assert_eq!(p.dpop.mode, "required");
        assert_eq!(p.dpop.algorithms, ["ES256"]);
        assert!(to_markdown(&m).contains("`sts` DPoP required (proof alg ES256)"));
    }

    #[test]
    fn modes_and_delegation_show_as_configured() {
        let m = build();
        assert_eq!(m.mode, "shadow");
        assert_eq!(m.rules[0].mode, "shadow");
        assert_eq!(m.rules[0].on_failure.on_deny, "forward");
        assert_eq!(m.rules[2].who.delegation, "forbidden");
        assert_eq!(m.rules[2].who.actors_from, "none");
        assert_eq!(m.rules[2].who.max_chain_depth, 0);
        assert_eq!(m.on_no_match.reason, "route_denied");
        assert_eq!(m.on_no_match.mode, "shadow");
    }

    #[test]
    fn markdown_has_a_row_per_rule_and_the_no_match_line() {
        let md = to_markdown(&build());
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), 3, "{md}");
        assert!(rows[1].contains("prefix `/x`<br>POST"), "{md}");
        assert!(
            rows[1].contains("`spiffe://prod.example.com/a` ≤ {x:read x:write}"),
            "{md}"
        );
        assert!(
            rows[1].contains("http://k/jwks every 120 s, stale ≤ 3600 s"),
            "{md}"
        );
        assert!(
            rows[1].contains("no keys: 503 jwks_unavailable<br>never a fallback"),
            "{md}"
        );
        assert!(md.contains("No rule matches: deny (`route_denied`, 403), mode shadow."));
    }
}

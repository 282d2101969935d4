//! Shadow mode (SPEC §11): whether a denial is enforced or only recorded. Written at the
//! top level and per rule; a rule's own `mode` wins, so one rule can be rolled out in
//! shadow under an enforcing policy (or the reverse).

use serde::Deserialize;

/// What the gateway does with a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The default: a denied request gets the deny response.
    #[default]
    Enforce,
    /// A denied request is forwarded anyway (without identity headers); the audit record
    /// says `"enforced": false` next to the real decision.
    Shadow,
}

impl Mode {
    /// The configuration spelling (`enforce` | `shadow`).
    pub fn code(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }

    pub fn is_enforced(self) -> bool {
        self == Mode::Enforce
    }
}

/// `mode` as written; unknown values are refused by serde with the JSON path.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawMode {
    Enforce,
    Shadow,
}

impl From<RawMode> for Mode {
    fn from(raw: RawMode) -> Mode {
        match raw {
            RawMode::Enforce => Mode::Enforce,
            RawMode::Shadow => Mode::Shadow,
        }
    }
}

/// The mode of a rule: its own when written, else the policy's.
pub(crate) fn rule_mode(own: Option<RawMode>, policy: Mode) -> Mode {
    own.map_or(policy, Mode::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{ConfigProblem, Policy};
    use crate::core::keys::NoRemoteKeys;
    use crate::core::pipeline::{decide, Context};
    use crate::core::reasons::Reason;
    use crate::core::request::Request;
    use crate::core::time::UnixTime;

    const ANONYMOUS_SHADOW: &str = r#"{
        "rules": [
            { "id": "open", "match": { "path_prefix": "/open" }, "allow_anonymous": true },
            { "id": "trial", "match": { "path_prefix": "/trial" }, "mode": "shadow",
              "providers": ["p"] },
            { "id": "strict", "match": { "path_prefix": "/strict" }, "providers": ["p"] }
        ],
        "providers": { "p": { "issuer": "https://i", "audiences": ["a"],
            "remote_jwks": { "http_uri": { "uri": "http://k/jwks", "cluster": "k" } } } }
    }"#;

    fn with_top_mode(mode: &str) -> String {
        ANONYMOUS_SHADOW.replacen('{', &format!("{{ \"mode\": \"{mode}\","), 1)
    }

    fn decide_path(
        config: &str,
        path: &str,
    ) -> (
        crate::core::decision::Decision,
        crate::core::audit::AuditRecord,
    ) {
        let policy = Policy::from_json(config).unwrap();
        let request = Request {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("x-agent-subject".into(), "spoof".into())],
            ..Request::default()
        };
        let ctx = Context {
            policy: &policy,
            remote_keys: &NoRemoteKeys,
            crypto: &crate::core::verification::crypto::RING,
            cache: None,
            replay: &crate::core::dpop::MemoryWindow::new(),
            shared: None,
        };
        let d = decide(ctx, &request, UnixTime::from_secs(1_800_000_000));
        let audit = d.audit_record(&request);
        (d, audit)
    }

    #[test]
    fn modes_load_and_a_rule_wins_over_the_policy() {
        let policy = Policy::from_json(ANONYMOUS_SHADOW).unwrap();
        assert_eq!(policy.mode, Mode::Enforce);
        let modes: Vec<Mode> = policy.rules.iter().map(|r| r.mode).collect();
        assert_eq!(modes, [Mode::Enforce, Mode::Shadow, Mode::Enforce]);

        let policy = Policy::from_json(&with_top_mode("shadow")).unwrap();
        assert_eq!(policy.mode, Mode::Shadow);
        let modes: Vec<Mode> = policy.rules.iter().map(|r| r.mode).collect();
        assert_eq!(modes, [Mode::Shadow, Mode::Shadow, Mode::Shadow]);

        let config = with_top_mode("shadow").replace(
            r#""id": "strict","#,
            r#""id": "strict", "mode": "enforce","#,
        );
        let policy = Policy::from_json(&config).unwrap();
        assert_eq!(policy.rules.last().map(|r| r.mode), Some(Mode::Enforce));
    }

    #[test]
    fn a_bad_mode_names_its_path() {
        let e = Policy::from_json(&with_top_mode("audit")).unwrap_err();
        assert_eq!(e.path, "mode");
        assert!(matches!(&e.problem, ConfigProblem::Syntax(m) if m.to_string().contains("shadow")));

        let config = ANONYMOUS_SHADOW.replace(r#""mode": "shadow""#, r#""mode": "Shadow""#);
        let e = Policy::from_json(&config).unwrap_err();
        assert_eq!(e.path, "rules[1].mode");

        let config = ANONYMOUS_SHADOW.replace(r#""mode": "shadow""#, r#""mode": null"#);
        assert_eq!(
            Policy::from_json(&config).unwrap_err().path,
            "rules[1].mode"
        );
    }

    #[test]
    fn a_shadow_rule_keeps_the_real_denial_but_does_not_enforce_it() {
        let (d, audit) = decide_path(ANONYMOUS_SHADOW, "/trial/x");
        assert!(!d.is_allowed());
        assert_eq!(d.reason(), Reason::TokenMissing);
        assert!(!d.enforced);
        assert!(!audit.enforced);
        assert_eq!(audit.decision, "deny");
        assert_eq!(audit.status, Some(401));
        // What the caller would have got is kept for people; hosts do not send it.
        assert!(d.response().is_some());
        assert!(d.enforced_response().is_none());
        // Spoofed identity is still removed, and none is added.
        assert_eq!(d.strip_headers, ["x-agent-subject"]);
        assert!(d.identity_headers().next().is_none());
    }

    #[test]
    fn an_enforced_rule_in_a_shadow_policy_is_enforced() {
        let (d, audit) = decide_path(ANONYMOUS_SHADOW, "/strict/x");
        assert_eq!(d.reason(), Reason::TokenMissing);
        assert!(d.enforced && audit.enforced);
        assert!(d.enforced_response().is_some());
    }

    #[test]
    fn before_any_rule_matched_the_policy_mode_applies() {
        let (d, _) = decide_path(ANONYMOUS_SHADOW, "/nowhere");
        assert_eq!(d.reason(), Reason::RouteDenied);
        assert!(d.enforced);

        let (d, audit) = decide_path(&with_top_mode("shadow"), "/nowhere");
        assert_eq!(d.reason(), Reason::RouteDenied);
        assert!(!d.enforced && !audit.enforced);
        assert!(d.enforced_response().is_none());
    }

    #[test]
    fn an_allow_under_shadow_says_so_and_keeps_its_headers() {
        let (d, _) = decide_path(&with_top_mode("shadow"), "/open");
        assert!(d.is_allowed());
        assert!(!d.enforced);
        assert!(d.enforced_response().is_none());
        let (d, _) = decide_path(ANONYMOUS_SHADOW, "/open");
        assert!(d.is_allowed() && d.enforced);
    }

    #[test]
    fn every_record_carries_enforced() {
        let (_, audit) = decide_path(ANONYMOUS_SHADOW, "/trial");
        assert!(audit
            .to_json_line()
            .contains(r#""status":401,"enforced":false,"#));
        let (_, audit) = decide_path(ANONYMOUS_SHADOW, "/open");
        assert!(audit
            .to_json_line()
            .contains(r#""status":null,"enforced":true,"#));
    }
}

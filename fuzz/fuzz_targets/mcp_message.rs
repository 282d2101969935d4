//! The MCP body reader (SPEC §9: one JSON-RPC 2.0 object → method, name, arguments, id)
//! on any bytes, alone and through the whole decision under the corpus's `mcp` policy
//! (`POST /mcp`, the HS256 twin). The first byte picks the request around the body: bit 0
//! a genuine token (`invoices:read payments:write`, delegated by the orchestrator), bit 1
//! an `mcp-method` header saying what the body says, bit 2 an `mcp-name` header likewise.
//!
//! Invariants: a body the reader accepts is JSON serde reads the same (id, method); a name
//! is never empty nor has control characters; the decision says `mcp_body_too_large` for
//! an oversized body, `mcp_malformed` exactly when the reader refuses it, keeps the facts
//! without arguments, allows `create_payment` only within its argument bounds; the audit
//! line never holds an argument value; and `check_decision`'s.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actwarden::mcp::parse_message;
use actwarden::{decide, Context, NoRemoteKeys, Request, UnixTime, RING};
use actwarden_fuzz::{check_decision, fixture, mcp, Built, Minted, NOW, POLICY_NAMES};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::sync::OnceLock;

fn token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let claims = json!({
            "iss": "https://sts.example.com", "sub": "user:alice", "sub_profile": "user",
            "aud": "payments-api", "iat": NOW - 60, "exp": NOW + 600, "jti": "jti-mcp",
            "scope": "invoices:read payments:write",
            "act": {"sub": "spiffe://prod.example.com/agent/orchestrator"}
        });
        fixture().hs_keys[0]
            .mint(actwarden::Alg::HS256, &claims, None, &fixture().rng)
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let parsed = parse_message(body);
    if let Ok(facts) = &parsed {
        if let Some(n) = &facts.name {
            assert!(!n.is_empty() && !n.chars().any(char::is_control));
        }
        assert!(facts.method.is_some() || facts.arguments.is_none());
    }
    let f = fixture();
    let policy_index = POLICY_NAMES.iter().position(|n| *n == "mcp").unwrap();
    let policy = &f.hs_policies[policy_index];
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let mut tokens = Vec::new();
    if flags & 1 != 0 {
        headers.push(("authorization".into(), format!("Bearer {}", token())));
        tokens.push(Minted {
            token: token().to_owned(),
            genuine: true,
        });
    }
    if let Ok(facts) = &parsed {
        if flags & 2 != 0 {
            if let Some(m) = &facts.method {
                headers.push(("mcp-method".into(), m.clone()));
            }
        }
        if flags & 4 != 0 {
            if let Some(n) = &facts.name {
                headers.push(("mcp-name".into(), n.clone()));
            }
        }
    }
    let built = Built {
        request: Request {
            method: "POST".into(),
            path: "/mcp".into(),
            authority: Some("api.example.com".into()),
            headers,
            body: Some(body.to_vec()),
            ..Request::default()
        },
        tokens,
        proof: None,
    };
    let window = actwarden::MemoryWindow::new();
    let ctx = Context {
        policy,
        remote_keys: &NoRemoteKeys,
        crypto: &RING,
        replay: &window,
        cache: None,
        shared: None,
    };
    let d = decide(ctx, &built.request, UnixTime::from_secs(NOW));
    check_decision(&d, &built);
    mcp::check_mcp(&d, policy, &built.request);
});

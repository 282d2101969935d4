//! Prints every corpus case and twin, materialised (tokens minted), as one JSON array:
//! `[{name, config, request, now, remote_jwks: {provider: JWKS text}, token, replay,
//! mcp_response, expect}]`.
//! The browser runner decides each of them in the playground and compares with the CLI;
//! the playground itself carries no corpus code.

use actwarden_test_support::{cases_and_twins, corpus_dir, load, prepare};
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};

fn main() {
    if let Err(e) = run() {
        eprintln!("corpus-materialize: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let rng = SystemRandom::new();
    let corpus = load(&corpus_dir(), &rng)?;
    let mut out = Vec::new();
    for case in cases_and_twins(&corpus)? {
        let p = prepare(&corpus, &case, &rng).map_err(|e| format!("{}: {e}", case.name))?;
        let remote: Map<String, Value> = p
            .remote_jwks
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        out.push(json!({
            "name": case.name,
            "config": p.config,
            "request": p.request,
            "now": case.now,
            "remote_jwks": remote,
            "token": p.token,
            // Decide twice in one session: the case expects the second (a DPoP replay).
            "replay": p.replay,
            // SPEC §9: the upstream's tools/list answer, filtered by the playground too.
            "mcp_response": case.mcp_response,
            "expect": {"decision": case.expect.decision, "reason": case.expect.reason,
                       "filtered_tools": case.expect.filtered_tools},
        }));
    }
    println!("{}", Value::Array(out));
    Ok(())
}

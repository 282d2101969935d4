//! Fuzz regressions (issue 15): every input a fuzz target once crashed on, kept in
//! `fuzz/regressions/<target>/`, replayed through the same parser natively on every
//! `cargo test` (the fuzz targets themselves replay them too: `scripts/fuzz.sh` runs each
//! target over that folder first). Text targets only (`mcp_message` inputs are a flag byte
//! and the body); a crash of the structured targets (`decide`, `token_verify`,
//! `tools_list`, `dpop`: bytes `arbitrary` reads, meaningful only to the fuzz crate) is
//! kept as a hand-written test below, with its input spelled out.
//!
//! Every parser must return, not panic, on each input; a regression test here also states
//! what the fixed code answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use actwarden::dangerous::{parse_unverified, split};
use actwarden::mcp::{filter_tools_list, parse_message, McpFacts, Unfilterable};
use actwarden::{
    parse_jwks, Context, KeySource, MemoryWindow, NoRemoteKeys, Policy, Request, UnixTime, RING,
};
use serde_json::{json, Value};
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let bytes = std::fs::read(e.path()).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn token_parse_regressions_return() {
    for (name, text) in inputs("token_parse") {
        let _ = split(&text);
        let _ = parse_unverified(&text);
        let _ = actwarden::dangerous::decode_unverified(&text);
        eprintln!("token_parse/{name}: ok");
    }
}

#[test]
fn config_regressions_return() {
    for (name, text) in inputs("config") {
        let _ = Policy::from_json(&text);
        eprintln!("config/{name}: ok");
    }
}

#[test]
fn jwks_regressions_return() {
    for (name, text) in inputs("jwks") {
        let _ = parse_jwks(&text, KeySource::Configured);
        let _ = parse_jwks(&text, KeySource::Fetched);
        eprintln!("jwks/{name}: ok");
    }
}

#[test]
fn request_json_regressions_return() {
    for (name, text) in inputs("request_json") {
        let _ = Request::from_json(&text);
        eprintln!("request_json/{name}: ok");
    }
}

#[test]
fn mcp_message_regressions_return() {
    for (name, text) in inputs("mcp_message") {
        let _ = parse_message(text.as_bytes().get(1..).unwrap_or_default());
        eprintln!("mcp_message/{name}: ok");
    }
}

/// The corpus's `mcp` policy (SPEC §9) and a `tools/list` request under it, with no token:
/// every tool the filter sees is removed, so what passes is what it could read.
fn filter(id: Value, content_type: &str, body: &str) -> Result<(String, usize), Unfilterable> {
    let configs: Value =
        serde_json::from_str(include_str!("../host-tests/corpus/configs.json")).unwrap();
    let policy = Policy::from_json(&configs["mcp"].to_string()).unwrap();
    let request = Request {
        method: "POST".into(),
        path: "/mcp".into(),
        ..Request::default()
    };
    let facts = McpFacts {
        method: Some("tools/list".into()),
        name: None,
        arguments: None,
        id: Some(id),
    };
    let window = MemoryWindow::new();
    let ctx = Context {
        policy: &policy,
        remote_keys: &NoRemoteKeys,
        crypto: &RING,
        replay: &window,
        cache: None,
        shared: None,
    };
    let now = UnixTime::from_secs(1_800_000_000);
    filter_tools_list(ctx, &request, &facts, now, content_type, body.as_bytes())
        .map(|out| (String::from_utf8(out.body).unwrap(), out.removed))
}

/// `tools_list` (fuzz/regressions/tools_list/sse-byte-order-mark): an SSE stream that
/// starts with a byte-order mark passed its answer unfiltered — `\u{feff}data:` read as a
/// field of another name, while clients drop the mark first (WHATWG HTML §9.2.6).
#[test]
fn tools_list_sse_byte_order_mark_is_filtered() {
    let stream = "\u{feff}data:{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"invoices.get\"}]}}\r\r";
    let (body, removed) = filter(json!(7), "text/event-stream", stream).unwrap();
    assert_eq!(removed, 1);
    assert!(!body.contains("invoices.get"), "{body}");
    assert!(body.starts_with('\u{feff}'));
}

/// Found with the BOM's invariant (a client reads ids as JavaScript numbers): asked with
/// id `3.0`, a JavaScript server answers `3`; the SSE answer to "another id" passed on
/// unfiltered. Now any response to another id fails closed.
#[test]
fn tools_list_sse_answer_to_another_id_fails_closed() {
    let stream = "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"create_payment\"}]}}\n\n";
    assert_eq!(
        filter(json!(3.0), "text/event-stream", stream).unwrap_err(),
        Unfilterable::OtherId
    );
}

/// `tools_list` (float-id-roundtrip, float-in-tool-roundtrip): serde_json without
/// `float_roundtrip` read some decimal texts one bit off, so a fractional id written back
/// did not match itself (`OtherId`) and numbers in a kept tool changed.
#[test]
fn tools_list_numbers_survive_exactly() {
    let id = json!(1.088_702_031_910_014e-19);
    let body = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}).to_string();
    assert!(filter(id, "application/json", &body).is_ok());
    let x: f64 = -4.176_416_978_041_9e304;
    let text = serde_json::to_string(&json!(x)).unwrap();
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back.as_f64(), Some(x), "{text}");
}

/// Found writing the `dpop` target's invariant (`normalize_htu` is idempotent): `a:443:`
/// read as host `a:443` with an empty port gave `https://a:443/x`, which normalizes again
/// to `https://a/x`. A host with a colon is refused now.
#[test]
fn dpop_htu_with_a_colon_in_the_host_is_refused() {
    use actwarden::dangerous::normalize_htu;
    assert_eq!(normalize_htu("https://a:443:/x"), None);
    for uri in [
        "https://a:443/x",
        "http://A:80",
        "https://[::1]:443/x?q",
        "https://a:/x",
    ] {
        let once = normalize_htu(uri).unwrap();
        assert_eq!(
            normalize_htu(&once).as_deref(),
            Some(once.as_str()),
            "{uri}"
        );
    }
}

/// The seeds of the text targets parse without a panic too (a cheap guard that the
/// folders stay readable by the parsers they seed).
#[test]
fn fuzz_seeds_return() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for target in [
        "token_parse",
        "config",
        "jwks",
        "request_json",
        "mcp_message",
    ] {
        let Ok(entries) = std::fs::read_dir(seeds.join(target)) else {
            panic!("fuzz/seeds/{target} is missing");
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            match target {
                "token_parse" => drop(parse_unverified(&text)),
                "config" => assert!(
                    Policy::from_json(&text).is_ok(),
                    "seed config {:?}",
                    e.path()
                ),
                "jwks" => drop(parse_jwks(&text, KeySource::Configured)),
                "mcp_message" => drop(parse_message(text.as_bytes().get(1..).unwrap_or_default())),
                _ => drop(Request::from_json(&text)),
            }
        }
    }
}

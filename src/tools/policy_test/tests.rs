use super::*;
use crate::core::keys::alg::Alg;
use ring::rand::SystemRandom;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

struct Fixture {
    policy: Policy,
    key_json: String,
}

fn fixture() -> Fixture {
    let rng = SystemRandom::new();
    let key = SigningKey::generate(Alg::ES256, "k1", &rng).unwrap();
    let config = json!({
        "providers": { "sts": { "issuer": "https://sts", "audiences": ["api"],
            "local_jwks": { "inline_string": mint::public_jwks(&[&key]).to_string() } } },
        "rules": [{ "id": "read", "match": { "path_prefix": "/r" },
                    "require": { "scopes": ["r"] } }]
    });
    Fixture {
        policy: Policy::from_json(&config.to_string()).unwrap(),
        key_json: key.private_jwk().to_string(),
    }
}

fn reader(key_json: String) -> impl Fn(&str) -> Result<String, crate::core::file::FileError> {
    move |name: &str| {
        if name == "key.json" {
            Ok(key_json.clone())
        } else {
            Err(crate::core::file::FileError::io(
                name,
                &std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ))
        }
    }
}

fn file(cases: Value) -> String {
    json!({ "cases": cases }).to_string()
}

fn case(name: &str, scope: &str, expect: Value) -> Value {
    json!({ "name": name, "now": NOW,
            "request": { "method": "GET", "path": "/r", "headers": {
                "authorization": { "mint": { "key": "key.json", "claims": {
                    "iss": "https://sts", "aud": "api", "sub": "u", "scope": scope } } } } },
            "expect": expect })
}

fn run_all(fx: &Fixture, text: &str) -> Vec<CaseReport> {
    let rng = SystemRandom::new();
    let loaded = load(text, &reader(fx.key_json.clone()), &rng).unwrap();
    (0..loaded.cases.len())
        .map(|i| run_case(&fx.policy, &loaded, i, UnixTime::from_secs(0), &rng).unwrap())
        .collect()
}

#[test]
fn minted_tokens_pass_and_mismatches_are_listed() {
    let fx = fixture();
    let text = file(json!([
        case(
            "ok",
            "r",
            json!({ "reason": "allowed", "decision": "allow", "status": null,
            "headers": { "x-agent-rule": "read" }, "audit": { "enforced": true, "sub": "u" } })
        ),
        case(
            "wrong",
            "w",
            json!({ "reason": "allowed",
            "headers": { "x-agent-rule": "read" } })
        ),
    ]));
    let reports = run_all(&fx, &text);
    assert!(reports[0].passed(), "{:?}", reports[0]);
    let lines: Vec<String> = reports[1]
        .mismatches
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            r#"reason: expected "allowed", got "scope_insufficient""#,
            r#"headers.x-agent-rule: expected "read", got null"#
        ]
    );
}

#[test]
fn times_are_relative_to_the_case() {
    let claims = json!({ "exp": "now-10", "nbf": "now+5", "auth_time": "now", "x": "nowhere",
                         "iat": null });
    let out = recipes::claims_at(claims.as_object().unwrap(), UnixTime::from_secs(NOW));
    assert_eq!(
        out,
        json!({ "exp": NOW - 10, "nbf": NOW + 5, "auth_time": NOW, "x": "nowhere" })
    );
    let defaults = recipes::claims_at(&Map::new(), UnixTime::from_secs(NOW));
    assert_eq!(defaults, json!({ "iat": NOW, "exp": NOW + 300 }));
}

#[test]
fn bad_input_is_refused_with_its_path() {
    let fx = fixture();
    let rng = SystemRandom::new();
    let load_err = |text: &str| {
        load(text, &reader(fx.key_json.clone()), &rng)
            .err()
            .unwrap()
    };

    let mut bad = case("x", "r", json!({ "reason": "allowed", "reasn": 1 }));
    let e = load_err(&file(json!([bad.clone()])));
    assert!(
        matches!(&e, LoadError::Json { path, .. } if path == "cases[0].expect.reasn"),
        "{e}"
    );
    assert!(e.to_string().contains("reasn"), "{e}");

    bad["expect"] = json!({ "reason": "allowed" });
    bad["request"]["headers"]["authorization"]["mint"]["key"] = json!("missing.json");
    let e = load_err(&file(json!([bad.clone()])));
    assert_eq!(
        e.to_string(),
        "cases[0].request.headers.authorization: cannot read `missing.json`: no such file"
    );

    bad["request"]["headers"]["authorization"]["mint"]["kee"] = json!("x");
    let e = load_err(&file(json!([bad])));
    assert!(
        e.to_string()
            .starts_with("cases[0].request.headers.authorization: mint.kee: unknown field `kee`"),
        "{e}"
    );

    let e = load_err("{\"cases\": [");
    assert!(matches!(e, LoadError::Json { .. }), "{e}");

    let mut bad_peer = case("x", "r", json!({ "reason": "allowed" }));
    bad_peer["request"]["peer"] = json!({ "uri": "x" });
    let e = load_err(&file(json!([bad_peer])));
    assert!(e.to_string().starts_with("cases[0].request.peer"), "{e}");
}

#[test]
fn a_token_that_cannot_be_minted_names_its_case() {
    let fx = fixture();
    let rng = SystemRandom::new();
    let mut c = case("rsa on ec", "r", json!({ "reason": "allowed" }));
    c["request"]["headers"]["authorization"]["mint"]["alg"] = json!("RS256");
    let loaded = load(&file(json!([c])), &reader(fx.key_json.clone()), &rng).unwrap();
    let e = run_case(&fx.policy, &loaded, 0, UnixTime::from_secs(0), &rng).unwrap_err();
    assert_eq!(
        e.to_string(),
        "case `rsa on ec`: cannot mint the token: `RS256` cannot be signed with this key"
    );
}

#[test]
fn dpop_proofs_are_minted_with_the_public_key_and_the_token_hash() {
    let fx = fixture();
    let rng = SystemRandom::new();
    let mut c = case("dpop", "r", json!({ "reason": "allowed" }));
    c["request"]["authority"] = json!("api.example.com");
    c["request"]["path"] = json!("/r/x?q=1");
    c["request"]["headers"]["authorization"]["mint"]["scheme"] = json!("DPoP");
    c["request"]["headers"]["dpop"] = json!({ "dpop_proof": { "key": "key.json", "jti": "j1" } });
    let loaded = load(&file(json!([c])), &reader(fx.key_json.clone()), &rng).unwrap();
    let case = &loaded.cases[0];
    let request = recipes::materialize(case, &loaded.keys, UnixTime::from_secs(NOW), &rng).unwrap();
    let auth = request["headers"]["authorization"].as_str().unwrap();
    let token = auth.strip_prefix("DPoP ").unwrap();
    let proof = request["headers"]["dpop"].as_str().unwrap();
    let part = |i: usize| -> Value {
        let text = proof.split('.').nth(i).unwrap();
        serde_json::from_slice(&crate::core::token::b64::decode(text).unwrap()).unwrap()
    };
    let header = part(0);
    assert_eq!(header["typ"], json!("dpop+jwt"));
    assert_eq!(header["jwk"]["kty"], json!("EC"));
    assert!(header.get("kid").is_none() && header["jwk"].get("d").is_none());
    let claims = part(1);
    let ath = crate::core::token::b64::encode(&crate::core::verification::crypto::sha256(
        token.as_bytes(),
    ));
    assert_eq!(
        claims,
        json!({ "htm": "GET", "htu": "https://api.example.com/r/x", "iat": NOW, "jti": "j1",
                "ath": ath })
    );
}

#[test]
fn junit_lists_each_case_and_escapes() {
    let fx = fixture();
    let text = file(json!([
        case("a <pass>", "r", json!({ "reason": "allowed" })),
        case("b \"fail\"", "w", json!({ "reason": "allowed" })),
    ]));
    let reports = run_all(&fx, &text);
    let xml = junit_xml(&[FileReport {
        file: "p&q.test.json",
        cases: &reports,
    }]);
    assert!(xml.contains(r#"<testsuites name="actwarden policy tests" tests="2" failures="1">"#));
    assert!(xml.contains(r#"<testsuite name="p&amp;q.test.json" tests="2" failures="1">"#));
    assert!(xml.contains(r#"<testcase classname="p&amp;q.test.json" name="a &lt;pass&gt;"/>"#));
    assert!(xml.contains(
        r#"<failure message="reason: expected &quot;allowed&quot;, got &quot;scope_insufficient&quot;">"#
    ), "{xml}");
}

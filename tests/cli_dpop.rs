#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The DPoP commands of the `actwarden` binary (SPEC §10): `mint --cnf-jkt-of` binds a
//! token to a key, `dpop-proof` makes its proof, and `check` decides both.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_actwarden");
const NOW: u64 = 1_800_000_000;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        stderr,
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn mint_binds_a_token_and_dpop_proof_makes_its_proof() {
    let dir = std::env::temp_dir().join(format!("actwarden-cli-dpop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = |alg: &str, kid: &str| {
        let (code, out, err) = run(&["keygen", "--alg", alg, "--kid", kid]);
        assert_eq!(code, 0, "{err}");
        write(&dir, &format!("{kid}.json"), &out)
    };
    let issuer = key("ES256", "iss");
    let agent = key("EdDSA", "agent");
    let secret = key("HS256", "secret");
    let (_, jwks, _) = run(&["jwks", s(&issuer)]);
    let policy = json!({
        "providers": { "sts": { "issuer": "https://sts.example.com", "audiences": ["api"],
            "local_jwks": { "inline_string": jwks }, "dpop": { "mode": "allowed" } } },
        "rules": [{ "id": "pay", "match": { "path_prefix": "/v1" } }]
    });
    let policy = write(&dir, "policy.json", &policy.to_string());
    let claims = json!({ "iss": "https://sts.example.com", "sub": "user:alice", "aud": "api",
                         "cnf": { "x5t#S256": "kept?" } });
    let claims = write(&dir, "claims.json", &claims.to_string());

    // The public JWK gives the same thumbprint as the private one.
    let (_, agent_jwks, _) = run(&["jwks", s(&agent)]);
    let agent_public: Value =
        serde_json::from_str::<Value>(&agent_jwks).unwrap()["keys"][0].clone();
    let agent_public = write(&dir, "agent-public.json", &agent_public.to_string());
    let now = NOW.to_string();
    let mint = |jkt_of: &Path| {
        let (code, token, err) = run(&[
            "mint",
            "--key",
            s(&issuer),
            "--claims",
            s(&claims),
            "--ttl",
            "600",
            "--now",
            &now,
            "--cnf-jkt-of",
            s(jkt_of),
        ]);
        assert_eq!(code, 0, "{err}");
        token
    };
    let token = mint(&agent);
    let (_, decoded, _) = run(&["decode", &token]);
    let decoded: Value = serde_json::from_str(&decoded).unwrap();
    let jkt = decoded["claims"]["cnf"]["jkt"].as_str().unwrap().to_owned();
    assert_eq!(jkt.len(), 43, "base64url of a SHA-256: {jkt}");
    // `cnf` members already in the claims are kept next to `jkt`.
    assert_eq!(decoded["claims"]["cnf"]["x5t#S256"], "kept?");
    let token_public = mint(&agent_public);
    let (_, decoded, _) = run(&["decode", &token_public]);
    assert_eq!(
        serde_json::from_str::<Value>(&decoded).unwrap()["claims"]["cnf"]["jkt"],
        json!(jkt)
    );

    // Without x5t#S256 (which needs a peer certificate), the bound token and its proof
    // pass. (`mint` reads the claims file again.)
    let plain = json!({ "iss": "https://sts.example.com", "sub": "user:alice", "aud": "api" });
    std::fs::write(&claims, plain.to_string()).unwrap();
    let token = mint(&agent);
    let proof = |extra: &[&str]| {
        let mut args = vec![
            "dpop-proof",
            "--key",
            s(&agent),
            "--htm",
            "POST",
            "--htu",
            "https://api.example.com/v1/pay",
            "--now",
            &now,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, with_ath, err) = proof(&["--token", &token, "--jti", "j-1"]);
    assert_eq!(code, 0, "{err}");
    let (_, decoded, _) = run(&["decode", &with_ath]);
    let decoded: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(decoded["header"]["typ"], "dpop+jwt");
    assert_eq!(decoded["header"]["alg"], "EdDSA");
    assert!(decoded["header"]["jwk"].get("d").is_none());
    assert_eq!(decoded["claims"]["jti"], "j-1");
    assert_eq!(decoded["claims"]["iat"], json!(NOW));
    let (_, without_ath, _) = proof(&[]);

    let check = |auth: &str, dpop: Option<&str>| {
        let mut headers = json!({ "authorization": auth });
        if let Some(p) = dpop {
            headers["dpop"] = json!(p);
        }
        let request = json!({ "method": "POST", "path": "/v1/pay?x=1",
                              "authority": "api.example.com", "headers": headers });
        let request = write(&dir, "request.json", &request.to_string());
        let (code, out, err) = run(&[
            "check",
            "--config",
            s(&policy),
            "--request",
            s(&request),
            "--now",
            &now,
        ]);
        let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
        (code, report["reason"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        check(&format!("DPoP {token}"), Some(&with_ath)),
        (0, "allowed".into())
    );
    assert_eq!(
        check(&format!("DPoP {token}"), Some(&without_ath)),
        (1, "dpop_invalid".into())
    );
    assert_eq!(
        check(&format!("Bearer {token}"), None),
        (1, "dpop_required".into())
    );

    // A shared secret can neither make a proof nor be a proof key.
    let (code, _, err) = run(&[
        "dpop-proof",
        "--key",
        s(&secret),
        "--htm",
        "GET",
        "--htu",
        "https://a/",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&[
        "mint",
        "--key",
        s(&issuer),
        "--claims",
        s(&claims),
        "--cnf-jkt-of",
        s(&secret),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--cnf-jkt-of"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

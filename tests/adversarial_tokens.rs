#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Adversarial review of the token verification layer (SPEC §2 "algorithms", §4 steps 2–4,
//! §6 audit): JWT CVE classics (algorithm confusion, `none`, `crit`, embedded keys,
//! duplicate members), encoding tricks, numeric edge cases, signature malleability and
//! weak keys, JWKS tricks, token extraction tricks, size and nesting budgets, and what a
//! forged token can write into the audit record.
//!
//! Every test asserts the secure outcome the SPEC requires (the exact reason where the
//! SPEC determines it). The findings this review made were fixed in the core; their tests
//! stay here as guards.

use actwarden::api::check_json;
use actwarden::mint::{self, SigningKey};
use actwarden::Alg;
use actwarden::ConfigProblem;
use actwarden::{decide, Context, Policy, Reason, Request, UnixTime};
use actwarden::{parse_jwks, JwksError, KeySet, KeySource};
use actwarden_test_support::b64;
use actwarden_test_support::Decided;
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A copy of a JSON object with one member set.
fn with_member(base: &Value, name: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[name] = value;
    out
}

/// A copy of a JSON object without one member.
fn without_member(base: &Value, name: &str) -> Value {
    let mut out = base.clone();
    out.as_object_mut().unwrap().remove(name);
    out
}

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://sts.example.com";
const ISS_HMAC: &str = "https://hmac.example.com";
const ISS_OTHER: &str = "https://other.example.com";
const ISS_REMOTE: &str = "https://remote.example.com";
const AUD: &str = "api";

/// A throwaway RSA-2048 test key (generated for this file; never used anywhere else).
const RSA_PRIVATE_JWK: &str = r#"{"kty":"RSA","kid":"rsa-1","n":"srMgybWlytewa-AtdmST-3N7PKHQy2YtVt8hcn1RytPd2EgZeYje0_1RobcOwIWEqRmiKn8QICgY8rGmb7Tb2yyO2FFBCxy5p8vm2aLDvetqCD44JYnNwZx_5zWDVHFS5y0IhmSOu6lf-qPxm10srJ5JFI8kYjozikfbrv2quJbV12_RLQjEN7JQWH16hS2tgfGodMzLhpgNm_fBDcQrYCenkin9QqV_EOyoDVSOxgmwt3o0GasxWYYg6DYOIi57XQRh3pANTbSmZ0hU9E0SthmN5hDqpZptDvanLMm5EbCp4qYFuuhc1xogFmX-V-_FHftMteaVCZOEOdpNYS-LtQ","e":"AQAB","d":"Gui78XvrvxeLLrdniSo8mXMKlfcE_rgAcFIx0nB6GlmckLbMtT8t1MzS18_9xfJlJ2SfhZg0KK95EES9nBknOUIksYDM01xMPa8H8HJg2O7D_QFHiamOZQ8IuJuXjuXwtrSSkdA_KRWoiRDab0uQ0F6WgSTL9QmwHKzU8S0sIdb-QpfKEi_laKchj_OIZn1s0k-JAnLbdQF0Xwt4dTV5L634b-ys_I6rXvmRUX5pnhsAcSx3YR6bVh-HWv5otxNDNUuBoPqXAOIkj9yQgrNwoNenDqup3WZRPUCrEowcjqA4mXJ67BjhGWgtgAzsvfUf8CStCW84xH1W31es2_FBAQ","p":"5U0-Sl913S0fxrRpqXurMSqAuuRMGu4T_FiXjUo3jek688o-CdZCMXfa1HhZ-6vbLEgi4QAENMNvZUdne9Lq4rXRlZlTR0nYBC62AgfjaRX83s8fqYijHGOsEzYIuEJHeF0moi9i96S85GkXtso-gj5JXINbGsQtyELjqw7UGLU","q":"x4GZckI_mUOWqcDKgZMM9E9j7GrBm7lGRiE_rDu1Em0YeUm0lU_SymZ3xXtRVGJdTLrN51Jia7CY0y53qmBVXVoKF8ObcZYGr0GGNOCmaBlWaRtYt4yYnabxNGMaPFS33xxYija4aJtiK7K-BFhD1y512VdNYJxIP_85ZkyEhwE","dp":"akpbBIipjwP6xdYdYJXV7i2AjKGE8brIguHiJnlvtRWW4SkvhsnN1zZytqivNW0dZLJvkJK8YGTzfyQRQSGtBbg4VbtEEjiVrKKmddyIOs8Zb4Ldb23KBj_hpOoYMqlujcnIPcfvfVHcyZg5iN7JCQCsavjsw0SK4Fi5RjLSeD0","dq":"HzfRWgaxyvq_hZqMVZA8E7KkkSb3WrW4IFstinbhU5vMm5YD8uVFt7QnA7jTNiAaN1p3w72pdu5wS4NW6EsgsHXZZHSQS0rNivj21ildAKcOVW4ZCMewTeMElUz4mv4qs3fNBvufCYde6jWS9D0XiIFVoYe-rOJnj9QRGEfa6QE","qi":"1WYPJpDY34sOU4x5Ynckl4xP0AdM7HK_Gk9QhbNsVKeVmloG-jcemm85-gG-ZjUM-R8nSSzaXbXipaEAVh1WsFnByz36iZSkFuj0vHEsPAFLREbjcLH1ijFCbbfDE-rKl4NE4ZTepgwafoBjNeEgmPUlkwxhBqs2h55hqOIxEB4"}"#;

/// Order of the P-256 group (big-endian).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Order L of the Ed25519 group (little-endian, as in signatures).
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

// ---------------------------------------------------------------------------------------
// Fixture

fn rng() -> SystemRandom {
    SystemRandom::new()
}

struct Keys {
    es: SigningKey,
    es384: SigningKey,
    ed: SigningKey,
    rsa: SigningKey,
    hs: SigningKey,
    /// Provider `other`'s key: a different ES256 key with the same `kid` as `es`.
    other_es: SigningKey,
    /// The attacker's key, published nowhere.
    evil: SigningKey,
    policy: Policy,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let r = rng();
        let es = SigningKey::generate(Alg::ES256, "es-1", &r).unwrap();
        let es384 = SigningKey::generate(Alg::ES384, "es384-1", &r).unwrap();
        let ed = SigningKey::generate(Alg::EdDSA, "ed-1", &r).unwrap();
        let rsa = SigningKey::from_jwk_json(RSA_PRIVATE_JWK, &r).unwrap();
        let hs = SigningKey::generate(Alg::HS256, "hs-1", &r).unwrap();
        let other_es = SigningKey::generate(Alg::ES256, "es-1", &r).unwrap();
        let evil = SigningKey::generate(Alg::ES256, "evil", &r).unwrap();
        let config = base_config(&es, &es384, &ed, &rsa, &hs, &other_es);
        let policy = Policy::from_json(&config.to_string()).expect("the base policy loads");
        Keys {
            es,
            es384,
            ed,
            rsa,
            hs,
            other_es,
            evil,
            policy,
        }
    })
}

fn base_config(
    es: &SigningKey,
    es384: &SigningKey,
    ed: &SigningKey,
    rsa: &SigningKey,
    hs: &SigningKey,
    other_es: &SigningKey,
) -> Value {
    json!({
        "providers": {
            // Defaults: every asymmetric algorithm its keys fit, typ at+jwt/jwt, skew 60,
            // max lifetime 86400, `Authorization: Bearer`.
            "corp": {
                "issuer": ISS,
                "audiences": [AUD],
                "local_jwks": { "inline_string": mint::public_jwks(&[es, es384, ed, rsa]).to_string() }
            },
            "hmac": {
                "issuer": ISS_HMAC,
                "audiences": [AUD],
                "local_jwks": { "inline_string": mint::public_jwks(&[hs]).to_string() },
                "algorithms": ["HS256"]
            },
            "other": {
                "issuer": ISS_OTHER,
                "audiences": [AUD],
                "local_jwks": { "inline_string": mint::public_jwks(&[other_es]).to_string() },
                "token_types": ["at+jwt"],
                "from_headers": [{ "name": "x-other-token" }]
            },
            "remote": {
                "issuer": ISS_REMOTE,
                "audiences": [AUD],
                "remote_jwks": { "http_uri": { "uri": "http://sts.internal/jwks", "cluster": "sts" } }
            }
        },
        "rules": [
            { "id": "anon", "match": { "path_prefix": "/anon" }, "allow_anonymous": true },
            { "id": "corp", "match": { "path_prefix": "/corp" }, "providers": ["corp"] },
            { "id": "api", "match": { "path_prefix": "/api" } },
            { "id": "fresh", "match": { "path_prefix": "/fresh" }, "providers": ["corp"],
              "require": { "fresh_auth_s": 300 } }
        ]
    })
}

/// A one-provider configuration for JWKS and provider experiments. `extra` members are
/// merged into the provider.
fn single_provider(jwks: &str, extra: Value) -> Value {
    let mut provider = json!({
        "issuer": ISS,
        "audiences": [AUD],
        "local_jwks": { "inline_string": jwks }
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            provider[k] = v;
        }
    }
    json!({
        "providers": { "p": provider },
        "rules": [ { "id": "corp", "match": { "path_prefix": "/corp" } } ]
    })
}

fn load(config: &Value) -> Policy {
    Policy::from_json(&config.to_string()).expect("configuration loads")
}

fn load_err(config: &Value) -> actwarden::ConfigError {
    Policy::from_json(&config.to_string()).expect_err("configuration must be refused")
}

fn run_at(
    policy: &Policy,
    request: &Request,
    now: u64,
    remote: &HashMap<String, KeySet>,
) -> Decided {
    let ctx = Context {
        policy,
        remote_keys: remote,
        crypto: &actwarden::RING,
        cache: None,
        replay: &actwarden::MemoryWindow::new(),
        shared: None,
    };
    Decided::new(decide(ctx, request, UnixTime::from_secs(now)), request)
}

fn run(policy: &Policy, request: &Request) -> Decided {
    run_at(policy, request, NOW, &HashMap::new())
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        scheme: None,
        method: "GET".into(),
        path: path.into(),
        authority: Some("api.example.com".into()),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        peer: None,
        body: None,
    }
}

fn bearer(path: &str, token: &str) -> Request {
    request(path, &[("authorization", &format!("Bearer {token}"))])
}

/// The base policy, rule `corp`, `Authorization: Bearer <token>`.
fn corp(token: &str) -> Decided {
    run(&keys().policy, &bearer("/corp/x", token))
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "user-1",
        "aud": AUD,
        "exp": NOW + 600,
        "iat": NOW,
        "jti": "jti-1",
        "scope": "read"
    })
}

fn enc(s: &str) -> String {
    b64::encode(s.as_bytes())
}

/// Signs arbitrary header and claims bytes (no JSON re-serialisation: what is given is
/// what is signed).
fn signed_bytes(key: &SigningKey, alg: Alg, header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(claims));
    let sig = key.sign(alg, input.as_bytes(), &rng()).unwrap();
    format!("{input}.{}", b64::encode(&sig))
}

fn signed_raw(key: &SigningKey, alg: Alg, header: &str, claims: &str) -> String {
    signed_bytes(key, alg, header.as_bytes(), claims.as_bytes())
}

fn header(alg: &str, kid: Option<&str>) -> String {
    let mut h = Map::new();
    h.insert("alg".into(), json!(alg));
    h.insert("typ".into(), json!("at+jwt"));
    if let Some(k) = kid {
        h.insert("kid".into(), json!(k));
    }
    Value::Object(h).to_string()
}

/// A valid token from `corp`'s ES256 key with these claims.
fn es_token(claims: &Value) -> String {
    keys().es.mint(Alg::ES256, claims, None, &rng()).unwrap()
}

/// `token` with its signature replaced.
fn with_sig(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64::encode(sig))
}

fn sig_of(token: &str) -> Vec<u8> {
    b64::decode(token.rsplit_once('.').unwrap().1).unwrap()
}

#[track_caller]
fn assert_reason(d: &Decided, expected: Reason) {
    assert_eq!(d.reason(), expected, "{}", d.audit.to_json_line());
    assert_eq!(
        d.is_allowed(),
        matches!(expected, Reason::Allowed | Reason::AllowedAnonymous)
    );
    if !d.is_allowed() {
        assert!(d.identity_headers().next().is_none());
    }
}

/// SPEC §6: identity fields come only from a verified token.
#[track_caller]
fn assert_no_identity(d: &Decided) {
    let a = &d.audit;
    assert!(
        a.iss.is_none()
            && a.sub.is_none()
            && a.sub_profile.is_none()
            && a.actor.is_none()
            && a.chain.is_none()
            && a.scopes.is_none()
            && a.jti.is_none()
            && a.depth.is_none(),
        "identity from an unverified token: {}",
        a.to_json_line()
    );
    assert!(d.identity_headers().next().is_none());
}

/// The canonical control: a valid token is allowed, so denials below are caused by the
/// attack and not by a broken fixture.

#[test]
fn control_valid_tokens_from_every_key_are_allowed() {
    let k = keys();
    let c = claims();
    for (key, alg) in [
        (&k.es, Alg::ES256),
        (&k.es384, Alg::ES384),
        (&k.ed, Alg::EdDSA),
        (&k.rsa, Alg::RS256),
        (&k.rsa, Alg::PS256),
        (&k.rsa, Alg::RS512),
        (&k.rsa, Alg::PS512),
    ] {
        let t = key.mint(alg, &c, None, &rng()).unwrap();
        let d = corp(&t);
        assert_reason(&d, Reason::Allowed);
        assert_eq!(d.audit.sub.as_deref(), Some("user-1"));
    }
    let mut hc = claims();
    hc["iss"] = json!(ISS_HMAC);
    let t = k.hs.mint(Alg::HS256, &hc, None, &rng()).unwrap();
    assert_reason(&run(&k.policy, &bearer("/api/x", &t)), Reason::Allowed);
}

// ---------------------------------------------------------------------------------------
// `alg: none` and its spellings

#[test]
fn alg_none_in_every_spelling_is_refused() {
    let body = claims().to_string();
    for none in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!("{}.{}.", enc(&header(none, Some("es-1"))), enc(&body));
        assert_reason(&corp(&unsigned), Reason::AlgNotAllowed);
        // With a (meaningless) signature attached, and without a kid.
        let with_junk = format!("{}.{}.{}", enc(&header(none, None)), enc(&body), enc("sig"));
        assert_reason(&corp(&with_junk), Reason::AlgNotAllowed);
    }
    // Names that are "almost none" are unknown algorithms: also alg_not_allowed.
    for almost in [
        "none ",
        " none",
        "n\u{6f}ne\u{0}",
        "nonе", /* Cyrillic е */
        "",
    ] {
        let t = format!("{}.{}.", enc(&header(almost, None)), enc(&body));
        assert_reason(&corp(&t), Reason::AlgNotAllowed);
    }
}

#[test]
fn alg_none_is_refused_before_jwks_unavailable_and_on_anonymous_routes() {
    let mut c = claims();
    c["iss"] = json!(ISS_REMOTE);
    let t = format!("{}.{}.", enc(&header("none", None)), enc(&c.to_string()));
    // SPEC §4 step 3: `alg` is checked before "the provider has no usable keys".
    assert_reason(
        &run(&keys().policy, &bearer("/api/x", &t)),
        Reason::AlgNotAllowed,
    );
    // SPEC §2: on an anonymous route a token that is present is still verified.
    let t = format!(
        "{}.{}.",
        enc(&header("none", None)),
        enc(&claims().to_string())
    );
    assert_reason(
        &run(&keys().policy, &bearer("/anon", &t)),
        Reason::AlgNotAllowed,
    );
}

// ---------------------------------------------------------------------------------------
// Algorithm confusion

/// CVE-2016-10555 style: HS256 "signed" with public key material of an asymmetric key.
#[test]
fn hs256_with_public_key_material_as_secret_is_refused() {
    let k = keys();
    let body = claims().to_string();
    let es_jwk = k.es.public_jwk();
    let rsa_jwk = k.rsa.public_jwk();
    let secrets: Vec<Vec<u8>> = vec![
        es_jwk.to_string().into_bytes(),
        b64::decode(es_jwk["x"].as_str().unwrap()).unwrap(),
        b64::decode(rsa_jwk["n"].as_str().unwrap()).unwrap(),
        rsa_jwk.to_string().into_bytes(),
        mint::public_jwks(&[&k.es]).to_string().into_bytes(),
        Vec::new(),
    ];
    for secret in secrets {
        for (alg, hmac) in [
            ("HS256", ring::hmac::HMAC_SHA256),
            ("HS384", ring::hmac::HMAC_SHA384),
            ("HS512", ring::hmac::HMAC_SHA512),
        ] {
            for kid in [Some("es-1"), Some("rsa-1"), None] {
                let input = format!("{}.{}", enc(&header(alg, kid)), enc(&body));
                let tag = ring::hmac::sign(&ring::hmac::Key::new(hmac, &secret), input.as_bytes());
                let t = format!("{input}.{}", b64::encode(tag.as_ref()));
                assert_reason(&corp(&t), Reason::AlgNotAllowed);
            }
        }
    }
}

#[test]
fn hmac_secret_of_one_provider_cannot_sign_for_an_asymmetric_provider() {
    let k = keys();
    // iss = corp, signed with the hmac provider's (valid) secret and kid.
    let t = k.hs.mint(Alg::HS256, &claims(), None, &rng()).unwrap();
    assert_reason(&corp(&t), Reason::AlgNotAllowed);
}

#[test]
fn hmac_provider_accepts_only_its_configured_algorithm_and_key() {
    let k = keys();
    let mut c = claims();
    c["iss"] = json!(ISS_HMAC);
    let body = c.to_string();
    let secret = b64::decode(k.hs.private_jwk()["k"].as_str().unwrap()).unwrap();
    // Same secret, HS384/HS512: not in `algorithms`.
    for (alg, hmac) in [
        ("HS384", ring::hmac::HMAC_SHA384),
        ("HS512", ring::hmac::HMAC_SHA512),
    ] {
        let input = format!("{}.{}", enc(&header(alg, Some("hs-1"))), enc(&body));
        let tag = ring::hmac::sign(&ring::hmac::Key::new(hmac, &secret), input.as_bytes());
        let t = format!("{input}.{}", b64::encode(tag.as_ref()));
        assert_reason(
            &run(&k.policy, &bearer("/api/x", &t)),
            Reason::AlgNotAllowed,
        );
    }
    // An ES256 token claiming the hmac issuer: ES256 is not allowed there.
    let t = k.es.mint(Alg::ES256, &c, None, &rng()).unwrap();
    assert_reason(
        &run(&k.policy, &bearer("/api/x", &t)),
        Reason::AlgNotAllowed,
    );
    // HS256 with an empty key and with a wrong key.
    for secret in [Vec::new(), vec![0u8; 32]] {
        let input = format!("{}.{}", enc(&header("HS256", Some("hs-1"))), enc(&body));
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let t = format!("{input}.{}", b64::encode(tag.as_ref()));
        assert_reason(
            &run(&k.policy, &bearer("/api/x", &t)),
            Reason::SignatureInvalid,
        );
    }
    // Truncated HMAC tag (first 16 bytes of a valid one).
    let good = k.hs.mint(Alg::HS256, &c, None, &rng()).unwrap();
    let short = with_sig(&good, &sig_of(&good)[..16]);
    assert_reason(
        &run(&k.policy, &bearer("/api/x", &short)),
        Reason::SignatureInvalid,
    );
}

#[test]
fn kid_pointing_at_a_key_of_another_type_is_alg_not_allowed() {
    let k = keys();
    let c = claims();
    let body = c.to_string();
    // (signing key, signing alg, header alg, header kid)
    let cases: Vec<(&SigningKey, Alg, &str, &str)> = vec![
        (&k.es384, Alg::ES384, "ES384", "es-1"), // ES384 against a P-256 key
        (&k.es, Alg::ES256, "ES256", "es384-1"), // ES256 against a P-384 key
        (&k.ed, Alg::EdDSA, "EdDSA", "es-1"),    // EdDSA against an EC key
        (&k.es, Alg::ES256, "ES256", "ed-1"),    // ES256 against an OKP key
        (&k.rsa, Alg::RS256, "RS256", "es-1"),   // RS256 against an EC key
        (&k.es, Alg::ES256, "ES256", "rsa-1"),   // ES256 against an RSA key
        (&k.rsa, Alg::PS256, "PS256", "ed-1"),   // PS256 against an OKP key
    ];
    for (key, alg, name, kid) in cases {
        let t = signed_raw(key, alg, &header(name, Some(kid)), &body);
        assert_reason(&corp(&t), Reason::AlgNotAllowed);
    }
}

#[test]
fn key_alg_member_pins_the_token_alg() {
    let k = keys();
    let mut jwk = k.rsa.public_jwk();
    jwk["alg"] = json!("RS256");
    let policy = load(&single_provider(
        &json!({ "keys": [jwk] }).to_string(),
        json!({}),
    ));
    let c = claims();
    let rs = k.rsa.mint(Alg::RS256, &c, None, &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &rs)), Reason::Allowed);
    for alg in [Alg::PS256, Alg::RS384, Alg::RS512, Alg::PS512] {
        let t = k.rsa.mint(alg, &c, None, &rng()).unwrap();
        assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
        // Without a kid, no key fits either.
        let mut no_kid = Map::new();
        no_kid.insert("kid".into(), Value::Null);
        let t = k.rsa.mint(alg, &c, Some(&no_kid), &rng()).unwrap();
        assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
    }
}

#[test]
fn pkcs1_and_pss_signatures_are_not_interchangeable() {
    let k = keys();
    let body = claims().to_string();
    // Signed with PSS, labelled RS256 (and the converse).
    let h = header("RS256", Some("rsa-1"));
    let input = format!("{}.{}", enc(&h), enc(&body));
    let pss = k.rsa.sign(Alg::PS256, input.as_bytes(), &rng()).unwrap();
    assert_reason(
        &corp(&format!("{input}.{}", b64::encode(&pss))),
        Reason::SignatureInvalid,
    );
    let h = header("PS256", Some("rsa-1"));
    let input = format!("{}.{}", enc(&h), enc(&body));
    let pkcs1 = k.rsa.sign(Alg::RS256, input.as_bytes(), &rng()).unwrap();
    assert_reason(
        &corp(&format!("{input}.{}", b64::encode(&pkcs1))),
        Reason::SignatureInvalid,
    );
    // Signed with SHA-512, labelled SHA-256.
    let h = header("RS256", Some("rsa-1"));
    let input = format!("{}.{}", enc(&h), enc(&body));
    let rs512 = k.rsa.sign(Alg::RS512, input.as_bytes(), &rng()).unwrap();
    assert_reason(
        &corp(&format!("{input}.{}", b64::encode(&rs512))),
        Reason::SignatureInvalid,
    );
}

#[test]
fn algorithm_names_are_case_sensitive_and_unsupported_ones_refused() {
    let k = keys();
    let body = claims().to_string();
    for name in [
        "es256", "Es256", "ES256 ", "ES-256", "ES512", "ES256K", "Ed25519", "EDDSA",
    ] {
        // Signed correctly with ES256 bytes: only the label is off.
        let t = signed_raw(&k.es, Alg::ES256, &header(name, Some("es-1")), &body);
        assert_reason(&corp(&t), Reason::AlgNotAllowed);
    }
    // An escaped spelling of a valid name is the same name once JSON is decoded.
    let t = signed_raw(
        &k.es,
        Alg::ES256,
        r#"{"alg":"\u0045S256","kid":"es-1","typ":"at+jwt"}"#,
        &body,
    );
    assert_reason(&corp(&t), Reason::Allowed);
}

#[test]
fn algorithm_allowlist_is_enforced_even_when_a_key_fits() {
    let k = keys();
    let jwks = mint::public_jwks(&[&k.es, &k.ed]).to_string();
    let policy = load(&single_provider(&jwks, json!({ "algorithms": ["ES256"] })));
    let t = k.ed.mint(Alg::EdDSA, &claims(), None, &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
    let t = k.es.mint(Alg::ES256, &claims(), None, &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::Allowed);
}

#[test]
fn kid_collision_across_providers_does_not_cross_verify() {
    let k = keys();
    // `corp` and `other` both publish a key with kid `es-1`.
    let mut c = claims();
    c["iss"] = json!(ISS_OTHER);
    let signed_by_corp = k.es.mint(Alg::ES256, &c, None, &rng()).unwrap();
    let d = run(
        &k.policy,
        &request("/api/x", &[("x-other-token", &signed_by_corp)]),
    );
    assert_reason(&d, Reason::SignatureInvalid);
    // Control: signed by other's own key it is allowed there.
    let own = k.other_es.mint(Alg::ES256, &c, None, &rng()).unwrap();
    let d = run(&k.policy, &request("/api/x", &[("x-other-token", &own)]));
    assert_reason(&d, Reason::Allowed);
    // And other's key cannot sign for corp.
    let signed_by_other = k
        .other_es
        .mint(Alg::ES256, &claims(), None, &rng())
        .unwrap();
    assert_reason(&corp(&signed_by_other), Reason::SignatureInvalid);
    // A valid `other` token on a rule that accepts only `corp`.
    let d = run(&k.policy, &bearer("/corp/x", &own));
    assert!(!d.is_allowed());
    assert_reason(&d, Reason::IssuerUnknown);
}

#[test]
fn keys_without_kid_are_tried_only_when_they_fit() {
    let k = keys();
    let mut es = k.es.public_jwk();
    es.as_object_mut().unwrap().remove("kid");
    let mut ed = k.ed.public_jwk();
    ed.as_object_mut().unwrap().remove("kid");
    let policy = load(&single_provider(
        &json!({ "keys": [es, ed] }).to_string(),
        json!({}),
    ));
    let mut no_kid = Map::new();
    no_kid.insert("kid".into(), Value::Null);
    let c = claims();
    for (key, alg) in [(&k.es, Alg::ES256), (&k.ed, Alg::EdDSA)] {
        let t = key.mint(alg, &c, Some(&no_kid), &rng()).unwrap();
        assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::Allowed);
    }
    // A kid the set does not hold (the keys have none): kid_unknown, not "try them all".
    let t = k.es.mint(Alg::ES256, &c, None, &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::KidUnknown);
    // Forged, no kid.
    let t = k.evil.mint(Alg::ES256, &c, Some(&no_kid), &rng()).unwrap();
    assert_reason(
        &run(&policy, &bearer("/corp", &t)),
        Reason::SignatureInvalid,
    );
    // RS256 without a kid: no key fits.
    let t = k.rsa.mint(Alg::RS256, &c, Some(&no_kid), &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
}

#[test]
fn kid_of_a_skipped_key_is_unknown() {
    let k = keys();
    let mut jwks = mint::public_jwks(&[&k.es]);
    jwks["keys"].as_array_mut().unwrap().push(json!({
        "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"
    }));
    jwks["keys"].as_array_mut().unwrap().push(json!({
        "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
        "x": k.es.public_jwk()["x"], "y": k.es.public_jwk()["y"]
    }));
    let policy = load(&single_provider(&jwks.to_string(), json!({})));
    let body = claims().to_string();
    // ES256 signed by the real key but pointing at the skipped P-521 / `use: enc` entries.
    for kid in ["p521", "enc"] {
        let t = signed_raw(&k.es, Alg::ES256, &header("ES256", Some(kid)), &body);
        assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::KidUnknown);
    }
    let t = signed_raw(&k.es, Alg::ES256, &header("ES512", Some("p521")), &body);
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
}

// ---------------------------------------------------------------------------------------
// `crit`, `b64`, embedded keys

#[test]
fn crit_is_refused_even_when_correctly_signed() {
    let k = keys();
    let body = claims().to_string();
    for h in [
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","crit":["b64"],"b64":false}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","crit":[]}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","crit":["exp"],"exp":1}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","crit":null}"#,
    ] {
        let t = signed_raw(&k.es, Alg::ES256, h, &body);
        assert_reason(&corp(&t), Reason::TokenMalformed);
    }
    // RFC 7797 unencoded payload signed as such (signing input = header "." raw payload).
    let h = r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","crit":["b64"],"b64":false}"#;
    let input = format!("{}.{body}", enc(h));
    let sig = k.es.sign(Alg::ES256, input.as_bytes(), &rng()).unwrap();
    let t = format!("{}.{}.{}", enc(h), enc(&body), b64::encode(&sig));
    assert_reason(&corp(&t), Reason::TokenMalformed);
}

#[test]
fn b64_false_without_crit_is_ignored_not_honoured() {
    let k = keys();
    let body = claims().to_string();
    let h = r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","b64":false}"#;
    // Signature over the raw (unencoded) payload: must not verify.
    let input = format!("{}.{body}", enc(h));
    let sig = k.es.sign(Alg::ES256, input.as_bytes(), &rng()).unwrap();
    let t = format!("{}.{}.{}", enc(h), enc(&body), b64::encode(&sig));
    assert_reason(&corp(&t), Reason::SignatureInvalid);
}

#[test]
fn embedded_keys_and_key_urls_are_never_used() {
    let k = keys();
    let body = claims().to_string();
    let evil_jwk = k.evil.public_jwk();
    let embeds = [
        ("jwk", evil_jwk.clone()),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ];
    for (member, value) in embeds {
        for (kid, expected) in [
            (Some("evil"), Reason::KidUnknown),
            (Some("es-1"), Reason::SignatureInvalid),
            (None, Reason::SignatureInvalid),
        ] {
            let mut h = Map::new();
            h.insert("alg".into(), json!("ES256"));
            h.insert("typ".into(), json!("at+jwt"));
            if let Some(kid) = kid {
                h.insert("kid".into(), json!(kid));
            }
            h.insert(member.into(), value.clone());
            let t = signed_raw(&k.evil, Alg::ES256, &Value::Object(h).to_string(), &body);
            let d = corp(&t);
            assert_reason(&d, expected);
            assert_no_identity(&d);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Duplicate members, escapes, encodings

#[test]
fn duplicate_members_including_escaped_spellings_are_malformed() {
    let k = keys();
    let good_claims = claims().to_string();
    let headers = [
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","alg":"none"}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","a\u006cg":"none"}"#,
        r#"{"\u0061lg":"none","alg":"ES256","kid":"es-1","typ":"at+jwt"}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","k\u0069d":"evil"}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt","\u0074yp":"jwt"}"#,
    ];
    for h in headers {
        let t = signed_raw(&k.es, Alg::ES256, h, &good_claims);
        assert_reason(&corp(&t), Reason::TokenMalformed);
    }
    let h = header("ES256", Some("es-1"));
    let claim_sets = [
        format!(
            r#"{{"iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{},"s\u0075b":"admin"}}"#,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{},"exp":99999999999}}"#,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{},"act":{{"sub":"a","s\u0075b":"b"}}}}"#,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","i\u0073s":"{ISS_OTHER}","sub":"user-1","aud":"{AUD}","exp":{}}}"#,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{},"x":[{{"a":1,"a":2}}]}}"#,
            NOW + 600
        ),
    ];
    for c in &claim_sets {
        // Properly signed: the signature layer is not what refuses it.
        let t = signed_raw(&k.es, Alg::ES256, &h, c);
        let d = corp(&t);
        assert_reason(&d, Reason::TokenMalformed);
        assert_no_identity(&d);
    }
}

#[test]
fn byte_order_marks_and_junk_around_json_are_malformed() {
    let k = keys();
    let h = header("ES256", Some("es-1"));
    let c = claims().to_string();
    let bom = "\u{feff}";
    let cases: Vec<(String, String)> = vec![
        (format!("{bom}{h}"), c.clone()),
        (h.clone(), format!("{bom}{c}")),
        (h.clone(), format!("{c}x")),
        (h.clone(), format!("{c}{{}}")),
        (h.clone(), format!("{c}\u{0}")),
        (format!("{h},"), c.clone()),
        ("[]".to_owned(), c.clone()),
        (h.clone(), "[]".to_owned()),
        (h.clone(), "\"a string\"".to_owned()),
        (h.clone(), "null".to_owned()),
        (h.clone(), String::new()),
        (h.clone(), r#"{"sub":"\ud800"}"#.to_owned()),
        (h.clone(), r#"{"sub":"a" "iss":"b"}"#.to_owned()),
        (h.clone(), r#"{'sub':'a'}"#.to_owned()),
    ];
    for (hh, cc) in cases {
        let t = signed_raw(&k.es, Alg::ES256, &hh, &cc);
        assert_reason(&corp(&t), Reason::TokenMalformed);
    }
    // Invalid UTF-8 inside a string, signed.
    let mut raw = format!(r#"{{"iss":"{ISS}","sub":"user-"#).into_bytes();
    raw.extend_from_slice(b"\xff\xfe");
    raw.extend_from_slice(format!(r#"","aud":"{AUD}","exp":{}}}"#, NOW + 600).as_bytes());
    let t = signed_bytes(&k.es, Alg::ES256, h.as_bytes(), &raw);
    assert_reason(&corp(&t), Reason::TokenMalformed);
    // Overlong UTF-8 encoding of '"' (C0 A2).
    let raw = b"{\"sub\":\"a\xc0\xa2}".to_vec();
    let t = signed_bytes(&k.es, Alg::ES256, h.as_bytes(), &raw);
    assert_reason(&corp(&t), Reason::TokenMalformed);
}

#[test]
fn base64url_must_be_strict_in_every_part() {
    let good = es_token(&claims());
    assert_reason(&corp(&good), Reason::Allowed);
    let parts: Vec<&str> = good.split('.').collect();
    let (h, c, s) = (parts[0], parts[1], parts[2]);
    let mut variants = vec![
        format!("{h}=.{c}.{s}"),
        format!("{h}.{c}=.{s}"),
        format!("{h}.{c}.{s}=="),
        format!("{h}.{c}.{s}="),
        // Standard alphabet.
        format!(
            "{h}.{c}.{}",
            s.replace('-', "+").replace('_', "/") + if s.contains(['-', '_']) { "" } else { "+/" }
        ),
        format!("{h}.{c}.{}+", &s[..s.len() - 1]),
        // Whitespace and other junk inside parts.
        format!("{h} .{c}.{s}"),
        format!("{h}.{c}.{} {}", &s[..10], &s[10..]),
        format!("{h}.{c}\t.{s}"),
        format!("{h}.{c}.{s}\u{0}"),
        format!("{h}.{c}\n.{s}"),
        // Percent-encoding.
        format!("{h}.{c}.{s}%3D"),
    ];
    // Non-canonical trailing bits: 64 signature bytes are 86 chars whose last char carries
    // 2 data bits; setting the 4 unused bits gives another spelling of the same bytes.
    let last = s.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    for low in 1..16 {
        let alt = alphabet.chars().nth((idx & !0xf) | low).unwrap();
        variants.push(format!("{h}.{c}.{}{alt}", &s[..s.len() - 1]));
    }
    // Same for the header part when its length leaves spare bits.
    if h.len() % 4 != 0 {
        let last = h.chars().last().unwrap();
        let idx = alphabet.find(last).unwrap();
        let spare = if h.len() % 4 == 2 { 0xf } else { 0x3 };
        let alt = alphabet.chars().nth(idx | spare).unwrap();
        if alt != last {
            variants.push(format!("{}{alt}.{c}.{s}", &h[..h.len() - 1]));
        }
    }
    // Length ≡ 1 (mod 4) is never valid base64.
    let to_len_1_mod_4 = |part: &str| {
        let mut p = part.to_owned();
        while p.len() % 4 != 1 {
            p.push('A');
        }
        p
    };
    variants.push(format!("{h}.{c}.{}", to_len_1_mod_4(s)));
    variants.push(format!("{}.{c}.{s}", to_len_1_mod_4(h)));
    for v in variants {
        let d = corp(&v);
        assert_reason(&d, Reason::TokenMalformed);
        assert_no_identity(&d);
    }
}

#[test]
fn shapes_that_are_not_one_compact_jws_are_malformed() {
    let good = es_token(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let (h, c, s) = (parts[0], parts[1], parts[2]);
    for bad in [
        format!("{h}.{c}"),
        format!("{h}.{c}.{s}."),
        format!(".{h}.{c}.{s}"),
        format!("{h}.{c}.{s}.{s}"),
        format!("{h}.{c}.{s}.{c}.{s}"), // five parts (JWE shape)
        format!(".{c}.{s}"),
        format!("{h}..{s}"),
        "..".to_owned(),
        ".".repeat(16_000),
        format!("{h}.{c}.{s},{h}.{c}.{s}"),
        format!("{{\"payload\":\"{c}\",\"signatures\":[]}}"), // JSON serialisation
    ] {
        let d = corp(&bad);
        assert!(!d.is_allowed(), "{bad:.80}");
        assert_reason(&d, Reason::TokenMalformed);
    }
}

#[test]
fn header_members_of_the_wrong_type_are_malformed() {
    let k = keys();
    let c = claims().to_string();
    for h in [
        r#"{"kid":"es-1","typ":"at+jwt"}"#,
        r#"{"alg":null,"kid":"es-1"}"#,
        r#"{"alg":["ES256"],"kid":"es-1"}"#,
        r#"{"alg":"ES256","kid":1}"#,
        r#"{"alg":"ES256","kid":["es-1"]}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":null}"#,
        r#"{"alg":"ES256","kid":"es-1","typ":["at+jwt"]}"#,
        r#"{"alg":"ES256","kid":null}"#,
    ] {
        let t = signed_raw(&k.es, Alg::ES256, h, &c);
        assert_reason(&corp(&t), Reason::TokenMalformed);
    }
}

#[test]
fn typ_is_checked_after_issuer_with_normalisation() {
    let k = keys();
    let c = claims().to_string();
    for (typ, expected) in [
        (Some("JWT"), Reason::Allowed),
        (Some("AT+JWT"), Reason::Allowed),
        (Some("application/at+jwt"), Reason::Allowed),
        (Some("Application/JWT"), Reason::Allowed),
        (None, Reason::Allowed), // corp lists "jwt"
        (Some("at+jwt "), Reason::TypeNotAllowed),
        (Some("application/application/jwt"), Reason::TypeNotAllowed),
        (Some("JWS"), Reason::TypeNotAllowed),
        (Some("secevent+jwt"), Reason::TypeNotAllowed),
        (Some("dpop+jwt"), Reason::TypeNotAllowed),
        (Some("at+jwt; charset=utf-8"), Reason::TypeNotAllowed),
        (Some(""), Reason::TypeNotAllowed),
    ] {
        let mut h = Map::new();
        h.insert("alg".into(), json!("ES256"));
        h.insert("kid".into(), json!("es-1"));
        if let Some(t) = typ {
            h.insert("typ".into(), json!(t));
        }
        let t = signed_raw(&k.es, Alg::ES256, &Value::Object(h).to_string(), &c);
        assert_reason(&corp(&t), expected);
    }
    // `other` accepts only at+jwt: a token without typ is refused.
    let mut oc = claims();
    oc["iss"] = json!(ISS_OTHER);
    let t = signed_raw(
        &k.other_es,
        Alg::ES256,
        r#"{"alg":"ES256","kid":"es-1"}"#,
        &oc.to_string(),
    );
    let d = run(&k.policy, &request("/api/x", &[("x-other-token", &t)]));
    assert_reason(&d, Reason::TypeNotAllowed);
}

#[test]
fn issuer_must_be_a_configured_string() {
    let k = keys();
    let h = header("ES256", Some("es-1"));
    for iss in [
        json!(null),
        json!(1),
        json!([ISS]),
        json!({ "iss": ISS }),
        json!(format!("{ISS}/")),
        json!(ISS.to_uppercase()),
        json!(format!(" {ISS}")),
        json!(""),
    ] {
        let mut c = claims();
        c["iss"] = iss;
        let t = signed_raw(&k.es, Alg::ES256, &h, &c.to_string());
        assert_reason(&corp(&t), Reason::IssuerUnknown);
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    let t = signed_raw(&k.es, Alg::ES256, &h, &c.to_string());
    assert_reason(&corp(&t), Reason::IssuerUnknown);
}

// ---------------------------------------------------------------------------------------
// Numbers and time

/// Signs claims given as raw JSON text (so that numbers are exactly as written).
fn corp_raw_claims(text: &str) -> Decided {
    let t = signed_raw(&keys().es, Alg::ES256, &header("ES256", Some("es-1")), text);
    corp(&t)
}

fn claims_with(member: &str, raw_value: &str) -> String {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(member);
    let text = c.to_string();
    format!("{},\"{member}\":{raw_value}}}", &text[..text.len() - 1])
}

#[test]
fn exp_of_the_wrong_type_is_claim_invalid() {
    for v in [
        "\"never\"",
        "null",
        "true",
        "false",
        "[1800000000]",
        "{}",
        "\"1800000000\"",
    ] {
        let d = corp_raw_claims(&claims_with("exp", v));
        assert_reason(&d, Reason::ClaimInvalid);
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_reason(&corp(&es_token(&c)), Reason::ClaimInvalid);
}

#[test]
fn nbf_iat_auth_time_of_the_wrong_type_are_claim_invalid() {
    for member in ["nbf", "iat", "auth_time"] {
        for v in ["null", "\"0\"", "true", "[0]", "{}"] {
            let d = corp_raw_claims(&claims_with(member, v));
            assert_reason(&d, Reason::ClaimInvalid);
        }
    }
}

#[test]
fn exp_beyond_f64_range_is_refused() {
    for v in ["1e400", "-1e400", "1E+309", "123456789e999"] {
        let d = corp_raw_claims(&claims_with("exp", v));
        assert!(!d.is_allowed(), "{v}");
        assert!(
            matches!(d.reason(), Reason::TokenMalformed | Reason::ClaimInvalid),
            "{v}: {:?}",
            d.reason()
        );
    }
}

#[test]
fn numeric_edge_cases_of_exp() {
    // Fixture: skew 60, max lifetime 86400, iat = NOW.
    let cases = [
        ("-0", Reason::TokenExpired),
        ("-0.0", Reason::TokenExpired),
        ("0", Reason::TokenExpired),
        ("-1e308", Reason::TokenExpired),
        ("1.0e10", Reason::LifetimeTooLong),
        ("1e10", Reason::LifetimeTooLong),
        ("1.7976931348623157e308", Reason::LifetimeTooLong),
        ("18446744073709551615", Reason::LifetimeTooLong),
        ("18446744073709551616", Reason::LifetimeTooLong),
        ("99999999999999999999999999999", Reason::LifetimeTooLong),
        ("1700000600.5", Reason::Allowed),
        ("1.7000006e9", Reason::Allowed),
        ("1700086400", Reason::Allowed),
        ("1700086400.001", Reason::LifetimeTooLong),
        // now >= exp + skew is expired (RFC 7519 §4.1.4).
        ("1699999940", Reason::TokenExpired),
        ("1699999940.5", Reason::Allowed),
    ];
    for (v, expected) in cases {
        let d = corp_raw_claims(&claims_with("exp", v));
        assert_eq!(d.reason(), expected, "exp {v}: {}", d.audit.to_json_line());
    }
}

#[test]
fn lifetime_without_iat_is_bounded_from_now() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iat");
    c["exp"] = json!(NOW + 86_401);
    assert_reason(&corp(&es_token(&c)), Reason::LifetimeTooLong);
    c["exp"] = json!(NOW + 86_400);
    assert_reason(&corp(&es_token(&c)), Reason::Allowed);
}

#[test]
fn nbf_and_iat_edge_cases() {
    let cases = [
        ("nbf", "1700000061", Reason::TokenNotYetValid),
        ("nbf", "1700000060", Reason::Allowed),
        ("nbf", "1e300", Reason::TokenNotYetValid),
        ("nbf", "-1e300", Reason::Allowed),
        ("iat", "1700000061", Reason::TokenNotYetValid),
        ("iat", "1e300", Reason::TokenNotYetValid),
        ("iat", "1.7976931348623157e308", Reason::TokenNotYetValid),
        // An iat in the distant past makes exp - iat huge.
        ("iat", "-1e300", Reason::LifetimeTooLong),
        ("iat", "-1.7976931348623157e308", Reason::LifetimeTooLong),
        ("iat", "0", Reason::LifetimeTooLong),
    ];
    for (member, v, expected) in cases {
        let d = corp_raw_claims(&claims_with(member, v));
        assert_eq!(
            d.reason(),
            expected,
            "{member} {v}: {}",
            d.audit.to_json_line()
        );
    }
}

/// `fresh_auth_s` (SPEC §4 `stepup_required`): an `auth_time` in the future is not a
/// fresh authentication; like `iat` it must not be beyond `now + skew`.
#[test]
fn auth_time_in_the_future_does_not_satisfy_fresh_auth() {
    let k = keys();
    let mut c = claims();
    c["auth_time"] = json!(1e300);
    let t = es_token(&c);
    let d = run(&k.policy, &bearer("/fresh", &t));
    assert!(!d.is_allowed(), "{}", d.audit.to_json_line());
    assert!(
        matches!(
            d.reason(),
            Reason::StepupRequired | Reason::TokenNotYetValid | Reason::ClaimInvalid
        ),
        "{:?}",
        d.reason()
    );
}

#[test]
fn auth_time_and_iat_drive_fresh_auth() {
    let k = keys();
    let mut c = claims();
    c["auth_time"] = json!(NOW - 301);
    assert_reason(
        &run(&k.policy, &bearer("/fresh", &es_token(&c))),
        Reason::StepupRequired,
    );
    c["auth_time"] = json!(NOW - 300);
    assert_reason(
        &run(&k.policy, &bearer("/fresh", &es_token(&c))),
        Reason::Allowed,
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iat");
    assert_reason(
        &run(&k.policy, &bearer("/fresh", &es_token(&c))),
        Reason::StepupRequired,
    );
}

#[test]
fn standard_claims_of_the_wrong_shape() {
    let cases: Vec<(&str, Value, Reason)> = vec![
        ("sub", json!(123), Reason::ClaimInvalid),
        ("sub", json!(""), Reason::ClaimInvalid),
        ("sub", json!(null), Reason::ClaimInvalid),
        (
            "sub",
            json!("admin\nx-agent-subject: root"),
            Reason::ClaimInvalid,
        ),
        ("sub", json!("admin\u{0}"), Reason::ClaimInvalid),
        ("sub", json!("admin\u{85}"), Reason::ClaimInvalid),
        ("sub", json!("a".repeat(2049)), Reason::ClaimInvalid),
        ("aud", json!(1), Reason::ClaimInvalid),
        ("aud", json!([AUD, 1]), Reason::ClaimInvalid),
        ("aud", json!(null), Reason::ClaimInvalid),
        ("aud", json!([]), Reason::AudienceMismatch),
        ("aud", json!("API"), Reason::AudienceMismatch),
        ("aud", json!(format!("{AUD} ")), Reason::AudienceMismatch),
        ("aud", json!([[AUD]]), Reason::ClaimInvalid),
        ("scope", json!(["read"]), Reason::ClaimInvalid),
        ("scope", json!("read\twrite"), Reason::ClaimInvalid),
        ("scope", json!(1), Reason::ClaimInvalid),
        ("scp", json!("write"), Reason::ClaimInvalid), // disagrees with scope
        ("scp", json!([1]), Reason::ClaimInvalid),
        ("jti", json!(1), Reason::ClaimInvalid),
        ("act", json!(null), Reason::ClaimInvalid),
        ("act", json!("spiffe://x/agent"), Reason::ClaimInvalid),
        ("act", json!({}), Reason::ClaimInvalid),
        ("act", json!({ "sub": 1 }), Reason::ClaimInvalid),
        (
            "act",
            json!({ "sub": "a", "act": null }),
            Reason::ClaimInvalid,
        ),
        (
            "act",
            json!({ "sub": "a", "act": [] }),
            Reason::ClaimInvalid,
        ),
        ("act", json!({ "sub": "a,b" }), Reason::ClaimInvalid),
        ("act", json!([{ "sub": "a" }]), Reason::ClaimInvalid),
        ("may_act", json!("a"), Reason::ClaimInvalid),
        ("cnf", json!("x"), Reason::ClaimInvalid),
        ("cnf", json!({ "x5t#S256": "AAAA" }), Reason::ClaimInvalid),
        ("sub_profile", json!(["user"]), Reason::ClaimInvalid),
    ];
    for (member, value, expected) in cases {
        let mut c = claims();
        c[member] = value.clone();
        let d = corp(&es_token(&c));
        assert_eq!(
            d.reason(),
            expected,
            "{member}={value}: {}",
            d.audit.to_json_line()
        );
        assert!(!d.is_allowed());
    }
}

// ---------------------------------------------------------------------------------------
// Signature tricks

#[test]
fn ecdsa_degenerate_and_misencoded_signatures_are_invalid() {
    let good = es_token(&claims());
    let sig = sig_of(&good);
    assert_eq!(sig.len(), 64);
    let mut n_n = P256_N.to_vec();
    n_n.extend_from_slice(&P256_N);
    let mut r_plus_n = sig[..32].to_vec();
    r_plus_n.extend_from_slice(&P256_N); // s := n
    let mut one_one = vec![0u8; 64];
    one_one[31] = 1;
    one_one[63] = 1;
    // A DER encoding of the same (r, s).
    let der = {
        fn int(x: &[u8]) -> Vec<u8> {
            let mut v = x.to_vec();
            while v.len() > 1 && v[0] == 0 && v[1] < 0x80 {
                v.remove(0);
            }
            if v[0] >= 0x80 {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        }
        let mut body = int(&sig[..32]);
        body.extend(int(&sig[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    };
    let mut extra = sig.clone();
    extra.push(0);
    let mut leading = vec![0u8];
    leading.extend_from_slice(&sig);
    for bad in [
        vec![0u8; 64], // "psychic signature" (CVE-2022-21449)
        vec![0u8; 0],
        n_n,
        r_plus_n,
        one_one,
        der,
        extra,
        leading,
        sig[..63].to_vec(),
        sig[..32].to_vec(),
        vec![0xffu8; 64],
        [sig.clone(), sig.clone()].concat(), // 128 bytes
        vec![0u8; 96],
    ] {
        let d = corp(&with_sig(&good, &bad));
        assert_reason(&d, Reason::SignatureInvalid);
        assert_no_identity(&d);
    }
}

#[test]
fn rsa_signatures_of_the_wrong_length_or_value_are_invalid() {
    let k = keys();
    let good = k.rsa.mint(Alg::RS256, &claims(), None, &rng()).unwrap();
    let sig = sig_of(&good);
    assert_eq!(sig.len(), 256);
    let n = b64::decode(k.rsa.public_jwk()["n"].as_str().unwrap()).unwrap();
    let mut leading_zero = vec![0u8];
    leading_zero.extend_from_slice(&sig);
    let mut trailing_zero = sig.clone();
    trailing_zero.push(0);
    let mut n_plus = n.clone();
    n_plus[255] = n_plus[255].wrapping_add(1);
    let mut one = vec![0u8; 256];
    one[255] = 1;
    for bad in [
        leading_zero,
        trailing_zero,
        sig[1..].to_vec(),
        vec![0u8; 256],
        one, // 1^e = 1
        n.clone(),
        n_plus,
        vec![0xffu8; 256],
        Vec::new(),
        vec![0u8; 512],
    ] {
        let d = corp(&with_sig(&good, &bad));
        assert_reason(&d, Reason::SignatureInvalid);
    }
}

#[test]
fn rsa_key_whose_n_has_a_leading_zero_byte_still_verifies() {
    let k = keys();
    let mut jwk = k.rsa.public_jwk();
    let n = b64::decode(jwk["n"].as_str().unwrap()).unwrap();
    let mut padded = vec![0u8];
    padded.extend_from_slice(&n);
    jwk["n"] = json!(b64::encode(&padded));
    jwk["e"] = json!(b64::encode(&[0, 1, 0, 1]));
    let policy = load(&single_provider(
        &json!({ "keys": [jwk] }).to_string(),
        json!({}),
    ));
    let t = k.rsa.mint(Alg::RS256, &claims(), None, &rng()).unwrap();
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::Allowed);
    // And a signature left-padded to the padded length is still refused.
    let mut sig = vec![0u8];
    sig.extend(sig_of(&t));
    assert_reason(
        &run(&policy, &bearer("/corp", &with_sig(&t, &sig))),
        Reason::SignatureInvalid,
    );
}

#[test]
fn ed25519_non_canonical_s_is_invalid() {
    let k = keys();
    let good = k.ed.mint(Alg::EdDSA, &claims(), None, &rng()).unwrap();
    assert_reason(&corp(&good), Reason::Allowed);
    let sig = sig_of(&good);
    // S' = S + L (little-endian), same R: verifies under a non-canonical check.
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(ED25519_L[i]) + carry;
        s_plus_l[32 + i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    let mut high_bit = sig.clone();
    high_bit[63] |= 0x80;
    let mut zero_s = sig.clone();
    zero_s[32..].fill(0);
    for bad in [
        s_plus_l,
        high_bit,
        zero_s,
        vec![0u8; 64],
        sig[..63].to_vec(),
    ] {
        assert_reason(&corp(&with_sig(&good, &bad)), Reason::SignatureInvalid);
    }
}

/// An Ed25519 public key of small order (here the identity point) verifies the signature
/// `R = identity, S = 0` over every message with ring's cofactorless check, so anyone can
/// sign for a provider that publishes one. Such a key is a "bad JWKS" (SPEC §2): refuse it
/// at load time, or at least never allow with it.
#[test]
fn small_order_ed25519_key_does_not_enable_universal_forgery() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "weak", "x": b64::encode(&identity)
    }] });
    let Ok(policy) = Policy::from_json(&single_provider(&jwks.to_string(), json!({})).to_string())
    else {
        return; // refused at load: secure
    };
    let mut forged_sig = [0u8; 64];
    forged_sig[0] = 1; // R = identity, S = 0
    let input = format!(
        "{}.{}",
        enc(&header("EdDSA", Some("weak"))),
        enc(
            &json!({"iss": ISS, "sub": "admin", "aud": AUD, "exp": NOW + 600, "iat": NOW})
                .to_string()
        )
    );
    let t = format!("{input}.{}", b64::encode(&forged_sig));
    let d = run(&policy, &bearer("/corp", &t));
    assert!(
        !d.is_allowed(),
        "forged token allowed: {}",
        d.audit.to_json_line()
    );
}

#[test]
fn ec_key_not_on_the_curve_never_verifies() {
    let k = keys();
    let jwk = k.es.public_jwk();
    let mut y = b64::decode(jwk["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    let mut bad = jwk.clone();
    bad["y"] = json!(b64::encode(&y));
    let zero = json!({ "kty": "EC", "crv": "P-256", "kid": "es-1",
        "x": b64::encode(&[0u8; 32]), "y": b64::encode(&[0u8; 32]) });
    for key in [bad, zero] {
        let cfg = single_provider(&json!({ "keys": [key] }).to_string(), json!({}));
        if let Ok(policy) = Policy::from_json(&cfg.to_string()) {
            // Signed with the real private key: the corrupted public key must not verify.
            let t = es_token(&claims());
            let d = run(&policy, &bearer("/corp", &t));
            assert_reason(&d, Reason::SignatureInvalid);
            let d = run(&policy, &bearer("/corp", &with_sig(&t, &[0u8; 64])));
            assert_reason(&d, Reason::SignatureInvalid);
        }
    }
}

/// ECDSA signatures are malleable: (r, n − s) verifies too. actwarden does not key
/// anything security-relevant on signature bytes (revocation is by `jti`, the verified
/// cache by the whole token), so a twin token has a different `token_id` and the same
/// verified identity, nothing more.
#[test]
fn ecdsa_twin_signature_is_a_different_token_with_the_same_identity() {
    let good = es_token(&claims());
    let sig = sig_of(&good);
    // n - s, big-endian subtraction.
    let mut twin_s = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut v = i16::from(P256_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        twin_s[i] = v as u8;
    }
    let mut twin = sig[..32].to_vec();
    twin.extend_from_slice(&twin_s);
    let twin_token = with_sig(&good, &twin);
    let a = corp(&good);
    let b = corp(&twin_token);
    assert_reason(&a, Reason::Allowed);
    assert_ne!(a.audit.token_id, b.audit.token_id);
    eprintln!("ECDSA (r, n-s) twin: {:?}", b.reason());
    if b.is_allowed() {
        assert_eq!(a.audit.sub, b.audit.sub);
        assert_eq!(a.audit.jti, b.audit.jti);
    } else {
        assert_reason(&b, Reason::SignatureInvalid);
    }
}

// ---------------------------------------------------------------------------------------
// JWKS and provider configuration tricks

#[track_caller]
fn assert_config_error_at(config: &Value, path: &str) -> actwarden::ConfigError {
    let e = load_err(config);
    assert_eq!(e.path, path, "{e}");
    e
}

#[test]
fn jwks_with_only_misspelled_key_types_or_curves_is_refused() {
    let k = keys();
    let es = k.es.public_jwk();
    for (member, value) in [
        ("kty", "ec"),
        ("kty", "Ec"),
        ("kty", "EC "),
        ("crv", "p-256"),
        ("crv", "P256"),
        ("crv", "secp256r1"),
        ("kty", "rsa"),
        ("alg", "none"),
        ("alg", "es256"),
        ("use", "enc"),
        ("use", "SIG"),
    ] {
        let mut jwk = es.clone();
        jwk[member] = json!(value);
        let cfg = single_provider(&json!({ "keys": [jwk] }).to_string(), json!({}));
        let e = assert_config_error_at(&cfg, "providers.p.local_jwks");
        assert!(
            matches!(e.problem, ConfigProblem::Jwks(JwksError::NoKeys)),
            "{e}"
        );
    }
    let mut rsa = k.rsa.public_jwk();
    rsa["kty"] = json!("rsa");
    let cfg = single_provider(&json!({ "keys": [rsa] }).to_string(), json!({}));
    assert_config_error_at(&cfg, "providers.p.local_jwks");
}

#[test]
fn jwks_key_material_problems_are_refused_with_a_path() {
    let k = keys();
    let es = k.es.public_jwk();
    let x = b64::decode(es["x"].as_str().unwrap()).unwrap();
    let mut x_lead = vec![0u8];
    x_lead.extend_from_slice(&x);
    let mut rsa = k.rsa.public_jwk();
    let cases: Vec<(Value, &str)> = vec![
        // x with a leading zero byte (33 bytes).
        (
            with_member(&es, "x", json!(b64::encode(&x_lead))),
            "keys[0].x",
        ),
        (
            with_member(&es, "x", json!(b64::encode(&x[1..]))),
            "keys[0].x",
        ),
        (
            {
                let mut j = es.clone();
                j["y"] = json!(format!("{}=", es["y"].as_str().unwrap()));
                j
            },
            "keys[0].y",
        ),
        (with_member(&es, "x", json!(1)), "keys[0].x"),
        (without_member(&es, "y"), "keys[0].y"),
        (with_member(&es, "d", json!("AAAA")), "keys[0].d"),
        (with_member(&es, "alg", json!("HS256")), "keys[0].alg"),
        (with_member(&es, "alg", json!("ES384")), "keys[0].alg"),
        (with_member(&es, "alg", json!("RS256")), "keys[0].alg"),
        (with_member(&es, "kid", json!(1)), "keys[0].kid"),
        (
            with_member(&rsa, "e", json!(b64::encode(&[2, 0, 0, 0, 1]))),
            "keys[0].e",
        ),
        (
            with_member(&rsa, "e", json!(b64::encode(&[1]))),
            "keys[0].e",
        ),
        (
            with_member(&rsa, "e", json!(b64::encode(&[1, 0, 0]))),
            "keys[0].e",
        ),
        (
            with_member(&rsa, "e", json!(b64::encode(&[0xff; 600]))),
            "keys[0].e",
        ),
        (
            with_member(&rsa, "n", json!(b64::encode(&[0xc3; 128]))),
            "keys[0].n",
        ),
        (
            with_member(&rsa, "n", json!(b64::encode(&[0xc3; 1025]))),
            "keys[0].n",
        ),
        (
            with_member(&rsa, "n", json!(b64::encode(&[0xc2; 256]))),
            "keys[0].n",
        ),
        (with_member(&rsa, "p", json!("AAAA")), "keys[0].p"),
        (with_member(&rsa, "alg", json!("ES256")), "keys[0].alg"),
    ];
    for (jwk, path) in cases {
        let cfg = single_provider(&json!({ "keys": [jwk] }).to_string(), json!({}));
        assert_config_error_at(&cfg, &format!("providers.p.local_jwks.{path}"));
    }
    // Duplicate kid, also across key types.
    rsa["kid"] = json!("es-1");
    let cfg = single_provider(&json!({ "keys": [es, rsa] }).to_string(), json!({}));
    assert_config_error_at(&cfg, "providers.p.local_jwks.keys[1].kid");
}

#[test]
fn jwks_duplicate_members_are_refused() {
    let k = keys();
    let es = k.es.public_jwk();
    let x = es["x"].as_str().unwrap();
    let y = es["y"].as_str().unwrap();
    let text = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"a","x":"{x}","y":"{y}","\u0078":"{y}"}}]}}"#
    );
    let e = load_err(&single_provider(&text, json!({})));
    assert!(e.path.starts_with("providers.p.local_jwks"), "{e}");
}

#[test]
fn jwks_key_with_members_of_two_types_is_used_as_its_kty_only() {
    let k = keys();
    let mut hybrid = k.es.public_jwk();
    let rsa = k.rsa.public_jwk();
    hybrid["n"] = rsa["n"].clone();
    hybrid["e"] = rsa["e"].clone();
    hybrid["kid"] = json!("hybrid");
    let policy = load(&single_provider(
        &json!({ "keys": [hybrid] }).to_string(),
        json!({}),
    ));
    let body = claims().to_string();
    let t = signed_raw(&k.rsa, Alg::RS256, &header("RS256", Some("hybrid")), &body);
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::AlgNotAllowed);
    let t = signed_raw(&k.es, Alg::ES256, &header("ES256", Some("hybrid")), &body);
    assert_reason(&run(&policy, &bearer("/corp", &t)), Reason::Allowed);
}

#[test]
fn hmac_configuration_traps_are_refused() {
    let k = keys();
    let es_jwks = mint::public_jwks(&[&k.es]).to_string();
    // HS256 allowed on a provider with only EC keys.
    let e = assert_config_error_at(
        &single_provider(&es_jwks, json!({ "algorithms": ["ES256", "HS256"] })),
        "providers.p.algorithms[1]",
    );
    assert!(matches!(
        e.problem,
        ConfigProblem::HmacWithoutKey(Alg::HS256)
    ));
    // `none`, unknown and unsupported names.
    for (name, path) in [
        ("none", "[0]"),
        ("NONE", "[0]"),
        ("es256", "[0]"),
        ("ES512", "[0]"),
    ] {
        assert_config_error_at(
            &single_provider(&es_jwks, json!({ "algorithms": [name] })),
            &format!("providers.p.algorithms{path}"),
        );
    }
    // oct keys: no alg, too short, empty, mixed with asymmetric keys.
    let k32 = b64::encode(&[7u8; 32]);
    for (jwks, path) in [
        (
            json!({ "keys": [{ "kty": "oct", "k": k32 }] }),
            "providers.p.local_jwks.keys[0].alg",
        ),
        (
            json!({ "keys": [{ "kty": "oct", "alg": "HS256", "k": b64::encode(&[7u8; 31]) }] }),
            "providers.p.local_jwks.keys[0].k",
        ),
        (
            json!({ "keys": [{ "kty": "oct", "alg": "HS256", "k": "" }] }),
            "providers.p.local_jwks.keys[0].k",
        ),
        (
            json!({ "keys": [{ "kty": "oct", "alg": "HS512", "k": k32 }] }),
            "providers.p.local_jwks.keys[0].k",
        ),
        (
            json!({ "keys": [{ "kty": "oct", "alg": "ES256", "k": k32 }] }),
            "providers.p.local_jwks.keys[0].alg",
        ),
        (
            json!({ "keys": [k.es.public_jwk(), { "kty": "oct", "alg": "HS256", "k": k32 }] }),
            "providers.p.local_jwks.keys[1]",
        ),
    ] {
        assert_config_error_at(
            &single_provider(&jwks.to_string(), json!({ "algorithms": ["HS256"] })),
            path,
        );
    }
    // oct keys only and no explicit algorithms: HMAC is never a default.
    let oct = json!({ "keys": [{ "kty": "oct", "alg": "HS256", "k": k32 }] }).to_string();
    assert_config_error_at(&single_provider(&oct, json!({})), "providers.p.algorithms");
    // A remote provider can never be given HS*.
    let remote = json!({
        "providers": { "r": {
            "issuer": ISS, "audiences": [AUD],
            "remote_jwks": { "http_uri": { "uri": "https://sts/jwks", "cluster": "sts" } },
            "algorithms": ["HS256"]
        } },
        "rules": [ { "id": "r", "match": { "path_prefix": "/" } } ]
    });
    assert_config_error_at(&remote, "providers.r.algorithms[0]");
    // And a fetched set may not hold oct keys at all.
    assert_eq!(
        parse_jwks(&oct, KeySource::Fetched).unwrap_err(),
        JwksError::SymmetricKeyFetched { index: 0 }
    );
}

#[test]
fn remote_provider_keys_and_availability() {
    let k = keys();
    let mut c = claims();
    c["iss"] = json!(ISS_REMOTE);
    let t = k.es.mint(Alg::ES256, &c, None, &rng()).unwrap();
    // No fetched keys: jwks_unavailable (503), never a pass.
    let d = run(&k.policy, &bearer("/api/x", &t));
    assert_reason(&d, Reason::JwksUnavailable);
    assert_eq!(d.audit.status, Some(503));
    let mut remote = HashMap::new();
    let set = parse_jwks(&mint::public_jwks(&[&k.es]).to_string(), KeySource::Fetched).unwrap();
    remote.insert("remote".to_owned(), set);
    assert_reason(
        &run_at(&k.policy, &bearer("/api/x", &t), NOW, &remote),
        Reason::Allowed,
    );
    // The remote provider's keys are not corp's: a corp-signed token claiming another
    // issuer is looked up in that issuer's keys only.
    let mut c2 = claims();
    c2["iss"] = json!(ISS_REMOTE);
    let t = k.ed.mint(Alg::EdDSA, &c2, None, &rng()).unwrap();
    assert_reason(
        &run_at(&k.policy, &bearer("/api/x", &t), NOW, &remote),
        Reason::KidUnknown,
    );
    // Even if a host handed over an oct key for a remote provider, HS* is not allowed there.
    let k32 = b64::encode(&[7u8; 32]);
    let oct = parse_jwks(
        &json!({ "keys": [{ "kty": "oct", "alg": "HS256", "kid": "h", "k": k32 }] }).to_string(),
        KeySource::Configured,
    )
    .unwrap();
    let mut remote = HashMap::new();
    remote.insert("remote".to_owned(), oct);
    let input = format!(
        "{}.{}",
        enc(&header("HS256", Some("h"))),
        enc(&c2.to_string())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]),
        input.as_bytes(),
    );
    let t = format!("{input}.{}", b64::encode(tag.as_ref()));
    assert_reason(
        &run_at(&k.policy, &bearer("/api/x", &t), NOW, &remote),
        Reason::AlgNotAllowed,
    );
}

// ---------------------------------------------------------------------------------------
// Token extraction

#[test]
fn bearer_scheme_is_case_insensitive_and_other_schemes_are_not_tokens() {
    let k = keys();
    let t = es_token(&claims());
    for v in [
        format!("Bearer {t}"),
        format!("bearer {t}"),
        format!("BEARER {t}"),
        format!("Bearer {t}   "),
    ] {
        assert_reason(
            &run(&k.policy, &request("/corp", &[("authorization", &v)])),
            Reason::Allowed,
        );
    }
    // Not a bearer credential at all: no token on a route that needs one.
    for v in [
        format!("Bearer{t}"),
        format!("Bearer:{t}"),
        format!("Basic {t}"),
        format!("DPoP {t}"),
        t.clone(),
    ] {
        let d = run(&k.policy, &request("/corp", &[("authorization", &v)]));
        assert_reason(&d, Reason::TokenMissing);
    }
    // Lenient spellings of the scheme (tab, several spaces): the SPEC does not say whether
    // they carry a token; either the token is read and verified, or there is none.
    for v in [format!("Bearer\t{t}"), format!("Bearer   {t}")] {
        let d = run(&k.policy, &request("/corp", &[("authorization", &v)]));
        assert!(
            matches!(d.reason(), Reason::Allowed | Reason::TokenMissing),
            "{:?}",
            d.reason()
        );
    }
}

/// SPEC §2: on an anonymous route "a token that is present is still verified and a bad
/// one still denied". A forged token in a spelling that a lenient upstream parser reads
/// as a bearer token (tab or several spaces after the scheme, surrounding whitespace,
/// which RFC 9110 §5.5 says is not part of a field value) must not be waved through as
/// `allowed_anonymous` with the `Authorization` header passed on.
#[test]
fn forged_token_in_a_lenient_bearer_spelling_is_not_passed_on_anonymously() {
    let k = keys();
    let mut h = Map::new();
    h.insert("kid".into(), json!("es-1"));
    let forged = k
        .evil
        .mint(Alg::ES256, &claims(), Some(&h), &rng())
        .unwrap();
    for v in [
        format!("Bearer {forged}"),
        format!("bearer  {forged}"),
        format!("Bearer\t{forged}"),
        format!("BEARER \t {forged}"),
        format!("Bearer {forged}\t"),
    ] {
        let d = run(&k.policy, &request("/anon", &[("authorization", &v)]));
        assert!(!d.is_allowed(), "{v:?}: {}", d.audit.to_json_line());
        assert_reason(&d, Reason::SignatureInvalid);
    }
}

/// As above, with whitespace before the scheme: a host that hands the core a raw value
/// (the CLI, the playground, an HTTP/2 peer) must get the same answer as one that trims.
#[test]
fn forged_token_after_leading_whitespace_is_not_passed_on_anonymously() {
    let k = keys();
    let mut h = Map::new();
    h.insert("kid".into(), json!("es-1"));
    let forged = k
        .evil
        .mint(Alg::ES256, &claims(), Some(&h), &rng())
        .unwrap();
    for v in [format!(" Bearer {forged}"), format!("\tBearer {forged}")] {
        let d = run(&k.policy, &request("/anon", &[("authorization", &v)]));
        assert!(!d.is_allowed(), "{v:?}: {}", d.audit.to_json_line());
    }
}

#[test]
fn more_than_one_token_is_malformed() {
    let k = keys();
    let t = es_token(&claims());
    let v = format!("Bearer {t}");
    // The same token twice, with header names differing in case.
    for names in [
        ["authorization", "authorization"],
        ["Authorization", "authorization"],
        ["AUTHORIZATION", "authorization"],
    ] {
        let d = run(
            &k.policy,
            &request("/corp", &[(names[0], &v), (names[1], &v)]),
        );
        assert_reason(&d, Reason::TokenMalformed);
    }
    // A valid token and a garbage one.
    let d = run(
        &k.policy,
        &request(
            "/corp",
            &[("authorization", &v), ("authorization", "Bearer x")],
        ),
    );
    assert_reason(&d, Reason::TokenMalformed);
    // Comma-joined (how a proxy folds repeated headers).
    for joined in [format!("Bearer {t}, Bearer {t}"), format!("Bearer {t},{t}")] {
        let d = run(&k.policy, &request("/corp", &[("authorization", &joined)]));
        assert_reason(&d, Reason::TokenMalformed);
    }
    // Through REQUEST.json, where header names are case-folded by the loader.
    let config = base_config(&k.es, &k.es384, &k.ed, &k.rsa, &k.hs, &k.other_es).to_string();
    let req = json!({
        "method": "GET", "path": "/corp",
        "headers": { "Authorization": v, "authorization": v }
    })
    .to_string();
    let (d, report) = check_json(
        &config,
        &req,
        UnixTime::from_secs(NOW),
        &HashMap::new(),
        &|_| Err(actwarden::FileError::NoFiles),
    )
    .unwrap();
    let decided = Decided::new(d, &Request::from_json(&req).unwrap());
    assert_reason(&decided, Reason::TokenMalformed);
    assert_eq!(report["reason"], "token_malformed");
    // A token in the bearer header and another in a second configured header.
    let mut oc = claims();
    oc["iss"] = json!(ISS_OTHER);
    let other = k.other_es.mint(Alg::ES256, &oc, None, &rng()).unwrap();
    let d = run(
        &k.policy,
        &request(
            "/api/x",
            &[("authorization", &v), ("x-other-token", &other)],
        ),
    );
    assert_reason(&d, Reason::TokenMalformed);
}

#[test]
fn a_token_in_another_providers_header_is_refused() {
    let k = keys();
    // corp's token in other's header.
    let t = es_token(&claims());
    let d = run(&k.policy, &request("/api/x", &[("x-other-token", &t)]));
    assert_reason(&d, Reason::IssuerUnknown);
    assert_no_identity(&d);
    // other's token in corp's header.
    let mut oc = claims();
    oc["iss"] = json!(ISS_OTHER);
    let other = k.other_es.mint(Alg::ES256, &oc, None, &rng()).unwrap();
    let d = run(&k.policy, &bearer("/api/x", &other));
    assert_reason(&d, Reason::IssuerUnknown);
}

/// SPEC §2: `from_headers` is per provider — a header *and* a `value_prefix`. Provider A
/// reads `Authorization: Bearer`, provider B reads `Authorization: DPoP` (B's tokens are
/// sender-constrained, A's are not). A's token presented under B's scheme did not come
/// from a source A reads, and must be refused like a token from another header.
#[test]
fn a_token_under_another_providers_scheme_is_refused() {
    let k = keys();
    let cfg = json!({
        "providers": {
            "a": {
                "issuer": ISS, "audiences": [AUD],
                "local_jwks": { "inline_string": mint::public_jwks(&[&k.es]).to_string() },
                "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }]
            },
            "b": {
                "issuer": ISS_OTHER, "audiences": [AUD],
                "local_jwks": { "inline_string": mint::public_jwks(&[&k.other_es]).to_string() },
                "from_headers": [{ "name": "authorization", "value_prefix": "DPoP " }]
            }
        },
        "rules": [ { "id": "r", "match": { "path_prefix": "/" } } ]
    });
    let policy = load(&cfg);
    let t = es_token(&claims());
    assert_reason(
        &run(
            &policy,
            &request("/x", &[("authorization", &format!("Bearer {t}"))]),
        ),
        Reason::Allowed,
    );
    let d = run(
        &policy,
        &request("/x", &[("authorization", &format!("DPoP {t}"))]),
    );
    assert_reason(&d, Reason::IssuerUnknown);
}

#[test]
fn anonymous_route_still_verifies_a_present_token() {
    let k = keys();
    let forged = k.evil.mint(Alg::ES256, &claims(), None, &rng()).unwrap();
    let d = run(&k.policy, &bearer("/anon", &forged));
    assert_reason(&d, Reason::KidUnknown);
    let mut h = Map::new();
    h.insert("kid".into(), json!("es-1"));
    let forged = k
        .evil
        .mint(Alg::ES256, &claims(), Some(&h), &rng())
        .unwrap();
    assert_reason(
        &run(&k.policy, &bearer("/anon", &forged)),
        Reason::SignatureInvalid,
    );
    assert_reason(
        &run(&k.policy, &bearer("/anon", "x")),
        Reason::TokenMalformed,
    );
    assert_reason(
        &run(&k.policy, &bearer("/anon", "")),
        Reason::TokenMalformed,
    );
    // A valid token on an anonymous route is verified and its identity forwarded.
    let d = run(&k.policy, &bearer("/anon", &es_token(&claims())));
    assert_reason(&d, Reason::Allowed);
    assert_eq!(d.audit.sub.as_deref(), Some("user-1"));
}

#[test]
fn spoofed_identity_headers_are_stripped_even_with_a_forged_token() {
    let k = keys();
    let mut h = Map::new();
    h.insert("kid".into(), json!("es-1"));
    let forged = k
        .evil
        .mint(Alg::ES256, &claims(), Some(&h), &rng())
        .unwrap();
    let auth = format!("Bearer {forged}");
    let d = run(
        &k.policy,
        &request(
            "/corp",
            &[
                ("authorization", &auth),
                ("x-agent-subject", "admin"),
                ("X-Agent-Actor", "spiffe://prod/agent/root"),
            ],
        ),
    );
    assert_reason(&d, Reason::SignatureInvalid);
    assert_eq!(d.strip_headers.len(), 2);
    assert_no_identity(&d);
}

// ---------------------------------------------------------------------------------------
// Forged tokens and the audit record

fn forged_claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "FORGED-SUBJECT",
        "sub_profile": "FORGED-PROFILE",
        "aud": AUD,
        "exp": NOW + 600,
        "iat": NOW,
        "jti": "FORGED-JTI",
        "scope": "FORGED-SCOPE",
        "act": { "sub": "FORGED-ACTOR", "act": { "sub": "FORGED-PRIOR" } }
    })
}

#[test]
fn forged_tokens_write_no_identity_into_the_audit_record() {
    let k = keys();
    let c = forged_claims();
    let body = c.to_string();
    let mut other_iss = c.clone();
    other_iss["iss"] = json!("https://FORGED-ISSUER.example");
    let cases: Vec<(String, Reason)> = vec![
        // Bad signature under a real kid.
        (
            signed_raw(&k.evil, Alg::ES256, &header("ES256", Some("es-1")), &body),
            Reason::SignatureInvalid,
        ),
        // No kid.
        (
            signed_raw(&k.evil, Alg::ES256, &header("ES256", None), &body),
            Reason::SignatureInvalid,
        ),
        // Unknown kid.
        (
            signed_raw(&k.evil, Alg::ES256, &header("ES256", Some("evil")), &body),
            Reason::KidUnknown,
        ),
        // alg none.
        (
            format!("{}.{}.", enc(&header("none", None)), enc(&body)),
            Reason::AlgNotAllowed,
        ),
        // Key/alg mismatch.
        (
            signed_raw(&k.es384, Alg::ES384, &header("ES384", Some("es-1")), &body),
            Reason::AlgNotAllowed,
        ),
        // Wrong typ.
        (
            signed_raw(
                &k.evil,
                Alg::ES256,
                r#"{"alg":"ES256","kid":"es-1","typ":"JWS"}"#,
                &body,
            ),
            Reason::TypeNotAllowed,
        ),
        // Unknown issuer.
        (
            signed_raw(
                &k.evil,
                Alg::ES256,
                &header("ES256", Some("es-1")),
                &other_iss.to_string(),
            ),
            Reason::IssuerUnknown,
        ),
        // Forged, and its claims would also be invalid.
        (
            signed_raw(
                &k.evil,
                Alg::ES256,
                &header("ES256", Some("es-1")),
                &claims_forged_bad_exp(),
            ),
            Reason::SignatureInvalid,
        ),
    ];
    for (t, expected) in cases {
        let d = corp(&t);
        assert_reason(&d, expected);
        assert_no_identity(&d);
        let line = d.audit.to_json_line();
        assert!(!line.contains("FORGED"), "{line}");
        assert!(d.audit.token_id.as_ref().is_some_and(|id| id.len() == 16));
        let report = actwarden::api::report::decision_json(&d, &d.audit).to_string();
        assert!(!report.contains("FORGED"), "{report}");
        // Never the raw token, never the signature.
        let sig = t.rsplit_once('.').unwrap().1;
        if !sig.is_empty() {
            assert!(!report.contains(sig), "{report}");
        }
        assert!(!report.contains(&t));
        assert!(!report.contains(t.split('.').nth(1).unwrap()));
    }
}

fn claims_forged_bad_exp() -> String {
    let mut c = forged_claims();
    c["exp"] = json!("never");
    c.to_string()
}

#[test]
fn unverified_kid_and_alg_are_bounded_in_the_audit_record() {
    let k = keys();
    let kid = "K".repeat(1200);
    let alg = "A".repeat(600);
    let h = json!({ "alg": alg, "kid": kid, "typ": "at+jwt" }).to_string();
    let t = signed_raw(&k.evil, Alg::ES256, &h, &claims().to_string());
    let d = corp(&t);
    assert_reason(&d, Reason::AlgNotAllowed);
    assert!(d.audit.kid.as_ref().unwrap().len() <= 128);
    assert!(d.audit.alg.as_ref().unwrap().len() <= 128);
    assert!(d.audit.to_json_line().len() < 2048);
}

/// SPEC §6: "a record never repeats what an unverified token claims". A forged token with
/// a duplicated member name has that name — attacker text, unbounded up to the token size —
/// copied into the audit `detail` (and the response body) before anything is verified.
#[test]
fn duplicate_member_name_of_a_forged_token_is_not_logged() {
    let k = keys();
    let injected = format!(
        "` ; sub=spiffe://prod.example.com/agent/root decision=allow INJECTED{}",
        "x".repeat(5000)
    );
    let name = serde_json::to_string(&injected).unwrap();
    let body = format!(r#"{{"iss":"{ISS}","sub":"a",{name}:1,{name}:2}}"#);
    let t = signed_raw(&k.evil, Alg::ES256, &header("ES256", Some("es-1")), &body);
    let d = corp(&t);
    assert_reason(&d, Reason::TokenMalformed);
    let line = d.audit.to_json_line();
    assert!(
        !line.contains("INJECTED"),
        "audit line is {} bytes",
        line.len()
    );
    assert!(line.len() < 4096, "audit line is {} bytes", line.len());
}

// ---------------------------------------------------------------------------------------
// Size and nesting budgets

/// Finds header and claims padding so that the signed ES256 token is exactly `target`
/// bytes long (ES256 signatures are always 86 base64url characters).
fn token_of_length(target: usize) -> String {
    let k = keys();
    for hpad in 0..4 {
        let h = json!({ "alg": "ES256", "kid": "es-1", "typ": "at+jwt", "p": "h".repeat(hpad) })
            .to_string();
        let hl = enc(&h).len();
        for cpad in 0..target {
            let mut c = claims();
            c["pad"] = json!("c".repeat(cpad));
            let cl = enc(&c.to_string()).len();
            let total = hl + 1 + cl + 1 + 86;
            if total == target {
                let t = signed_raw(&k.es, Alg::ES256, &h, &c.to_string());
                assert_eq!(t.len(), target);
                return t;
            }
            if total > target {
                break;
            }
        }
    }
    panic!("no padding gives {target} bytes");
}

#[test]
fn token_size_budget_is_exact() {
    let at = token_of_length(16 * 1024);
    assert_reason(&corp(&at), Reason::Allowed);
    let over = token_of_length(16 * 1024 + 1);
    let d = corp(&over);
    assert_reason(&d, Reason::TokenTooLarge);
    assert_no_identity(&d);
    // Whitespace around the token is not part of it.
    let padded = format!("Bearer {}{at}{}", " ".repeat(3), " ".repeat(3));
    assert_reason(
        &run(
            &keys().policy,
            &request("/corp", &[("authorization", &padded)]),
        ),
        Reason::Allowed,
    );
    // A megabyte of junk is refused by size, cheaply.
    let huge = "a".repeat(1 << 20);
    assert_reason(&corp(&huge), Reason::TokenTooLarge);
}

#[test]
fn header_size_budget_is_exact() {
    let k = keys();
    let c = claims().to_string();
    let base = json!({ "alg": "ES256", "kid": "es-1", "typ": "at+jwt", "p": "" }).to_string();
    for (len, expected) in [
        (2048, Reason::Allowed),
        (2049, Reason::TokenTooLarge),
        (2050, Reason::TokenTooLarge),
    ] {
        let h = json!({ "alg": "ES256", "kid": "es-1", "typ": "at+jwt", "p": "h".repeat(len - base.len()) })
            .to_string();
        assert_eq!(h.len(), len);
        let t = signed_raw(&k.es, Alg::ES256, &h, &c);
        assert_reason(&corp(&t), expected);
    }
}

fn nested_act(depth: usize) -> Value {
    let mut c = claims();
    let mut act = Value::Null;
    for i in (0..depth).rev() {
        let mut a = json!({ "sub": format!("a{i}") });
        if !act.is_null() {
            a["act"] = act;
        }
        act = a;
    }
    if depth > 0 {
        c["act"] = act;
    }
    c
}

#[test]
fn delegation_chain_depth_and_nesting_bombs() {
    // Within the JSON depth budget: a policy decision.
    for depth in [5, 50, 120] {
        let d = corp(&es_token(&nested_act(depth)));
        assert_reason(&d, Reason::ChainTooDeep);
    }
    assert_reason(&corp(&es_token(&nested_act(4))), Reason::Allowed);
    // Beyond it (a signed nesting bomb that still fits in 16 KiB): refused cleanly.
    for depth in [129, 300, 450] {
        let d = corp(&es_token(&nested_act(depth)));
        assert!(!d.is_allowed());
        assert!(
            matches!(d.reason(), Reason::TokenMalformed | Reason::ChainTooDeep),
            "{depth}: {:?}",
            d.reason()
        );
    }
    // Nesting bombs in other claims and in the header.
    let k = keys();
    let arrays = format!(
        r#"{{"iss":"{ISS}","sub":"a","aud":"{AUD}","exp":{},"x":{}{}}}"#,
        NOW + 600,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let t = signed_raw(&k.es, Alg::ES256, &header("ES256", Some("es-1")), &arrays);
    assert_reason(&corp(&t), Reason::TokenMalformed);
    let objs = format!(
        r#"{{"alg":"ES256","kid":"es-1","x":{}1{}}}"#,
        r#"{"a":"#.repeat(300),
        "}".repeat(300)
    );
    let t = signed_raw(&k.es, Alg::ES256, &objs, &claims().to_string());
    assert_reason(&corp(&t), Reason::TokenMalformed);
}

#[test]
fn many_scopes_and_members_stay_bounded() {
    let mut c = claims();
    let scopes: Vec<String> = (0..257).map(|i| format!("s{i}")).collect();
    c["scope"] = json!(scopes.join(" "));
    assert_reason(&corp(&es_token(&c)), Reason::ClaimInvalid);
    let mut c = claims();
    for i in 0..600 {
        c[format!("m{i}")] = json!(i);
    }
    assert_reason(&corp(&es_token(&c)), Reason::Allowed);
}

/// Per-request cost when an attacker sends a token without `kid`: every key that fits is
/// tried (SPEC §4). Worst case inside the configuration budgets: 64 RSA-8192 keys with the
/// largest exponent ring accepts. The request must still be decided, and in bounded time.
#[test]
fn worst_case_key_search_is_bounded() {
    let r = rng();
    let mut keys_json = Vec::new();
    for _ in 0..64 {
        let mut n = vec![0u8; 1024];
        ring::rand::SecureRandom::fill(&r, &mut n).unwrap();
        n[0] |= 0x80;
        n[1023] |= 1;
        keys_json.push(json!({
            "kty": "RSA",
            "n": b64::encode(&n),
            "e": b64::encode(&[0x01, 0xff, 0xff, 0xff, 0xff])
        }));
    }
    let jwks = json!({ "keys": keys_json }).to_string();
    let policy = load(&single_provider(&jwks, json!({})));
    let input = format!(
        "{}.{}",
        enc(r#"{"alg":"RS256","typ":"at+jwt"}"#),
        enc(&claims().to_string())
    );
    let t = format!("{input}.{}", b64::encode(&[0x01u8; 1024]));
    let start = std::time::Instant::now();
    let d = run(&policy, &bearer("/corp", &t));
    let elapsed = start.elapsed();
    assert_reason(&d, Reason::SignatureInvalid);
    eprintln!("64 x RSA-8192 (e = 2^33-1) no-kid search: {elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

//! Project Wycheproof vectors (C2SP/wycheproof `testvectors_v1`, see
//! `tests/vectors/wycheproof/SOURCE.md`) against actwarden's JWS layer and crypto provider.
//!
//! - `json_web_signature_test.json`, `json_web_key_test.json`: the group's key set through
//!   `parse_jwks` (a load error is a rejection), each `jws` through `dangerous::split` and
//!   `dangerous::verify_signature` with every algorithm allowed.
//! - ECDSA P-256/P-384 (P1363), Ed25519, RSA PKCS#1 2048/SHA-256 and RSA-PSS 2048/SHA-256:
//!   a JWK built from the group's raw public key, loaded by `parse_jwks`, then the primitive
//!   through `verify_with(&RING, ..)`.
//!
//! `invalid` must be rejected, `valid` accepted, `acceptable` may go either way (printed).
//! A `valid` case whose `alg` actwarden does not support (ES512) must be rejected and is
//! printed and counted as skipped for that reason. Every other difference from Wycheproof's
//! answer must be listed in `tests/vectors/wycheproof/DIVERGENCES.md`; an unlisted divergence
//! or a listed one that no longer occurs fails the test. Summary lines go straight to stderr
//! so that they appear in CI logs without `--nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::dangerous::TokenProblem;
use actwarden::dangerous::{self, verify_signature, verify_with};
use actwarden::Alg;
use actwarden::{parse_jwks, JwksError, KeySet, KeySource};
use actwarden::{AlgName, RING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/wycheproof");
const DIVERGENCES: &str = "DIVERGENCES.md";

const JWS_FILE: &str = "json_web_signature_test.json";
const JWK_FILE: &str = "json_web_key_test.json";
const P256_FILE: &str = "ecdsa_secp256r1_sha256_p1363_test.json";
const P384_FILE: &str = "ecdsa_secp384r1_sha384_p1363_test.json";
const ED25519_FILE: &str = "ed25519_test.json";
const RSA_PKCS1_FILE: &str = "rsa_signature_2048_sha256_test.json";
const RSA_PSS_FILE: &str = "rsa_pss_2048_sha256_mgf1_32_test.json";
const FILES: [&str; 7] = [
    JWS_FILE,
    JWK_FILE,
    P256_FILE,
    P384_FILE,
    ED25519_FILE,
    RSA_PKCS1_FILE,
    RSA_PSS_FILE,
];

// ---------------------------------------------------------------------------------------
// Reading the vectors
// ---------------------------------------------------------------------------------------

fn read(name: &str) -> String {
    let path = format!("{DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn load(name: &str) -> Value {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn groups(file: &Value) -> &[Value] {
    file["testGroups"].as_array().expect("testGroups array")
}

fn tests(group: &Value) -> &[Value] {
    group["tests"].as_array().expect("tests array")
}

fn tc_id(case: &Value) -> u64 {
    case["tcId"].as_u64().expect("tcId")
}

fn comment(case: &Value) -> &str {
    case["comment"].as_str().unwrap_or("")
}

fn flags(case: &Value) -> Vec<&str> {
    case["flags"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

// ---------------------------------------------------------------------------------------
// Outcomes and tallies
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Valid,
    Invalid,
    Acceptable,
}

impl Expected {
    fn of(case: &Value) -> Expected {
        match case["result"].as_str() {
            Some("valid") => Expected::Valid,
            Some("invalid") => Expected::Invalid,
            Some("acceptable") => Expected::Acceptable,
            other => panic!("tcId {}: unknown result {other:?}", tc_id(case)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expected::Valid => "valid",
            Expected::Invalid => "invalid",
            Expected::Acceptable => "acceptable",
        }
    }
}

/// Where actwarden refused a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `parse_jwks` refused the key set.
    Load,
    /// `dangerous::split` refused the compact JWS.
    Split,
    /// `dangerous::verify_signature` or `dangerous::verify_with` refused.
    Verify,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected { stage: Stage, detail: String },
}

impl Outcome {
    fn accepted(&self) -> bool {
        matches!(self, Outcome::Accepted)
    }

    fn actual(&self) -> &'static str {
        if self.accepted() {
            "accepted"
        } else {
            "rejected"
        }
    }
}

impl Outcome {
    /// `Stage: detail` of a rejection, as written in DIVERGENCES.md.
    fn detail(&self) -> Option<String> {
        match self {
            Outcome::Accepted => None,
            Outcome::Rejected { stage, detail } => Some(format!("{stage:?}: {detail}")),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted => f.write_str("accepted"),
            Outcome::Rejected { stage, detail } => write!(f, "rejected at {stage:?}: {detail}"),
        }
    }
}

struct CaseResult {
    tc_id: u64,
    comment: String,
    flags: Vec<String>,
    expected: Expected,
    outcome: Outcome,
    /// Set when the case uses an algorithm actwarden does not support (with why).
    unsupported: Option<String>,
}

#[derive(Default)]
struct Tally {
    file: &'static str,
    total: usize,
    valid_accepted: usize,
    invalid_rejected: usize,
    unsupported: Vec<(u64, String)>,
    acceptable_accepted: Vec<u64>,
    acceptable_rejected: Vec<u64>,
    /// tcId → (expected, actual outcome)
    divergences: BTreeMap<u64, (Expected, Outcome)>,
}

fn tally(file: &'static str, results: &[CaseResult]) -> Tally {
    let mut t = Tally {
        file,
        total: results.len(),
        ..Tally::default()
    };
    for r in results {
        println!(
            "{file} tcId {} [{}] {:?} {}: {}",
            r.tc_id,
            r.expected.name(),
            r.flags,
            r.comment,
            r.outcome
        );
        match (r.expected, r.outcome.accepted()) {
            (Expected::Valid, true) => t.valid_accepted += 1,
            (Expected::Invalid, false) => t.invalid_rejected += 1,
            (Expected::Acceptable, true) => {
                t.acceptable_accepted.push(r.tc_id);
                log(&format!(
                    "wycheproof {file} tcId {} (acceptable, {:?} {}): accepted",
                    r.tc_id, r.flags, r.comment
                ));
            }
            (Expected::Acceptable, false) => {
                t.acceptable_rejected.push(r.tc_id);
                log(&format!(
                    "wycheproof {file} tcId {} (acceptable, {:?} {}): {}",
                    r.tc_id, r.flags, r.comment, r.outcome
                ));
            }
            (Expected::Valid, false) if r.unsupported.is_some() => {
                let why = r.unsupported.clone().unwrap_or_default();
                log(&format!(
                    "wycheproof {file} tcId {} (valid, {}): SKIPPED, unsupported algorithm: {why}; {}",
                    r.tc_id, r.comment, r.outcome
                ));
                t.unsupported.push((r.tc_id, why));
            }
            (expected, _) => {
                t.divergences.insert(r.tc_id, (expected, r.outcome.clone()));
            }
        }
    }
    t
}

/// Writes to the process's stderr directly: libtest captures `print!`/`eprint!`, not this,
/// so the summaries show in every CI log.
fn log(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

// ---------------------------------------------------------------------------------------
// DIVERGENCES.md
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Listed {
    expected: String,
    actual: String,
    why: String,
}

impl Listed {
    /// `accepted` or `rejected`.
    fn actual_word(&self) -> &str {
        self.actual.split_whitespace().next().unwrap_or("")
    }

    /// For `rejected (Stage: detail)`, the part in parentheses: the rejection must be exactly
    /// that one, so that the stated reason stays true.
    fn actual_detail(&self) -> Option<&str> {
        let open = self.actual.find('(')?;
        let close = self.actual.rfind(')')?;
        self.actual.get(open + 1..close).map(str::trim)
    }
}

/// Rows of the markdown table `| file | tcId | expected | actual | why |`.
fn listed_divergences() -> BTreeMap<(String, u64), Listed> {
    let text = read(DIVERGENCES);
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells
            .first()
            .is_some_and(|c| *c == "file" || c.starts_with('-'))
        {
            continue;
        }
        assert_eq!(
            cells.len(),
            5,
            "{DIVERGENCES}:{}: a row needs 5 cells (file, tcId, expected, actual, why): {line}",
            n + 1
        );
        let file = cells[0].trim_matches('`').to_owned();
        let id: u64 = cells[1]
            .parse()
            .unwrap_or_else(|_| panic!("{DIVERGENCES}:{}: bad tcId {:?}", n + 1, cells[1]));
        let entry = Listed {
            expected: cells[2].to_owned(),
            actual: cells[3].to_owned(),
            why: cells[4].to_owned(),
        };
        assert!(
            !entry.why.is_empty(),
            "{DIVERGENCES}:{}: every divergence needs a reason",
            n + 1
        );
        let previous = out.insert((file.clone(), id), entry);
        assert!(
            previous.is_none(),
            "{DIVERGENCES}:{}: {file} tcId {id} listed twice",
            n + 1
        );
    }
    out
}

/// The tcId an entry says an `invalid` vector is byte-identical to (`byte-identical to tcId N`).
fn identical_to(why: &str) -> Option<u64> {
    let rest = why.split("byte-identical to tcId ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Prints the summary, then fails on any divergence not listed, any listed divergence that
/// no longer occurs, and any listed `invalid`-accepted case that is not provably a defect
/// of the vector file (byte-identical to a `valid` case of the same file).
fn check(t: &Tally, results: &[CaseResult], expected_total: u64) {
    log(&summary(t));
    compare(t, results, expected_total);
}

fn summary(t: &Tally) -> String {
    format!(
        "wycheproof {}: {} cases: {} passed ({} valid accepted, {} invalid rejected); \
         {} rejected as unsupported algorithm {:?}; {} acceptable ({} accepted {:?}, {} rejected {:?}); \
         {} listed divergences {:?}",
        t.file,
        t.total,
        t.valid_accepted + t.invalid_rejected,
        t.valid_accepted,
        t.invalid_rejected,
        t.unsupported.len(),
        t.unsupported.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        t.acceptable_accepted.len() + t.acceptable_rejected.len(),
        t.acceptable_accepted.len(),
        t.acceptable_accepted,
        t.acceptable_rejected.len(),
        t.acceptable_rejected,
        t.divergences.len(),
        t.divergences.keys().collect::<Vec<_>>(),
    )
}

fn compare(t: &Tally, results: &[CaseResult], expected_total: u64) {
    let mut problems = Vec::new();
    if t.total as u64 != expected_total {
        problems.push(format!(
            "ran {} cases but the file's numberOfTests is {expected_total}",
            t.total
        ));
    }
    let listed: BTreeMap<u64, Listed> = listed_divergences()
        .into_iter()
        .filter(|((file, _), _)| file == t.file)
        .map(|((_, id), l)| (id, l))
        .collect();
    let by_id: BTreeMap<u64, &CaseResult> = results.iter().map(|r| (r.tc_id, r)).collect();

    for (id, (expected, outcome)) in &t.divergences {
        let security = *expected == Expected::Invalid && outcome.accepted();
        match listed.get(id) {
            None => problems.push(format!(
                "{}tcId {id}: expected {}, got {outcome}; not listed in {DIVERGENCES}",
                if security {
                    "SECURITY: an invalid vector was ACCEPTED: "
                } else {
                    ""
                },
                expected.name(),
            )),
            Some(l)
                if l.expected != expected.name()
                    || l.actual_word() != outcome.actual()
                    || l.actual_detail()
                        .is_some_and(|d| Some(d) != outcome.detail().as_deref()) =>
            {
                problems.push(format!(
                    "tcId {id}: listed as expected {} / actual {}, but it is expected {} / {}",
                    l.expected,
                    l.actual,
                    expected.name(),
                    match outcome.detail() {
                        Some(d) => format!("rejected ({d})"),
                        None => "accepted".into(),
                    }
                ))
            }
            Some(l) if security => {
                // Only a vector-file defect may be listed: the token must be byte-identical to
                // a `valid` case of this file that actwarden also accepts.
                let twin =
                    identical_to(&l.why).and_then(|twin| by_id.get(&twin).map(|r| (twin, r)));
                let same_input = |a: u64, b: u64| -> bool {
                    let (Some(x), Some(y)) = (jws_text(t.file, a), jws_text(t.file, b)) else {
                        return false;
                    };
                    x == y
                };
                match twin {
                    Some((twin, r))
                        if r.expected == Expected::Valid
                            && r.outcome.accepted()
                            && same_input(*id, twin) => {}
                    _ => problems.push(format!(
                        "SECURITY: tcId {id} is invalid and was ACCEPTED; {DIVERGENCES} may list \
                         that only for a vector byte-identical to a valid, accepted tcId of the \
                         same file (`byte-identical to tcId N`)"
                    )),
                }
            }
            Some(_) => {}
        }
    }
    for (id, l) in &listed {
        if !t.divergences.contains_key(id) {
            problems.push(format!(
                "stale {DIVERGENCES} entry: tcId {id} (listed expected {} / actual {}) no longer \
                 diverges{}",
                l.expected,
                l.actual,
                by_id
                    .get(id)
                    .map(|r| format!(": now {}", r.outcome))
                    .unwrap_or_else(|| ": no such tcId".into())
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "wycheproof {}: {} problem(s):\n  {}",
        t.file,
        problems.len(),
        problems.join("\n  ")
    );
}

/// The `jws` text of a JWS/JWK case, for the byte-identity check above.
fn jws_text(file: &str, id: u64) -> Option<String> {
    if file != JWS_FILE && file != JWK_FILE {
        return None;
    }
    let doc = load(file);
    groups(&doc)
        .iter()
        .flat_map(tests)
        .find(|c| tc_id(c) == id)
        .map(|c| jws_string(&c["jws"]))
}

// ---------------------------------------------------------------------------------------
// JWS and JWK vectors
// ---------------------------------------------------------------------------------------

fn jws_string(jws: &Value) -> String {
    match jws {
        Value::String(s) => s.clone(),
        // JSON serialization given as an object: hand the JWS layer its text.
        other => other.to_string(),
    }
}

fn load_keys(set: &Value) -> Result<KeySet, JwksError> {
    parse_jwks(&set.to_string(), KeySource::Configured)
}

/// Why a key set produced no usable key: loads the set again with one extra, well-formed
/// P-256 key so that `parse_jwks` returns the skip reasons of the others. Diagnostics only.
fn skip_reasons(set: &Value) -> String {
    let mut set = set.clone();
    let Some(keys) = set["keys"].as_array_mut() else {
        return String::new();
    };
    keys.push(json!({
        "kty": "EC", "crv": "P-256", "kid": "wycheproof-harness-probe",
        "x": "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
        "y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"
    }));
    match load_keys(&set) {
        Ok(probe) => probe
            .skipped
            .iter()
            .map(|s| format!("key {} skipped as {:?}", s.index, s.reason))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("({e})"),
    }
}

fn run_jws_case(keys: &Result<KeySet, JwksError>, key_set: &Value, case: &Value) -> CaseResult {
    let text = jws_string(&case["jws"]);
    let split = dangerous::split(&text);
    let header_alg = split.as_ref().ok().map(|j| j.header.alg.clone());
    let outcome = match (keys, &split) {
        (Err(e), _) => Outcome::Rejected {
            stage: Stage::Load,
            detail: match e {
                JwksError::NoKeys => format!("{e:?} ({e}): {}", skip_reasons(key_set)),
                _ => format!("{e:?} ({e})"),
            },
        },
        (Ok(_), Err(problem)) => Outcome::Rejected {
            stage: Stage::Split,
            detail: format!("{problem:?}"),
        },
        (Ok(set), Ok(jws)) => match verify_signature(jws, Some(set), &Alg::ALL, &RING) {
            Ok(alg) => {
                assert_eq!(
                    alg.name(),
                    jws.header.alg,
                    "tcId {}: verified under another alg than the header's",
                    tc_id(case)
                );
                Outcome::Accepted
            }
            Err(failure) => Outcome::Rejected {
                stage: Stage::Verify,
                detail: format!("{failure:?}"),
            },
        },
    };
    let unsupported = header_alg
        .as_deref()
        .and_then(|alg| match Alg::classify(alg) {
            AlgName::Unsupported => Some(format!(
                "header alg {alg} is a registered JWS algorithm actwarden does not verify \
             (Alg::classify = Unsupported; ring has no P-521)"
            )),
            _ => None,
        });
    CaseResult {
        tc_id: tc_id(case),
        comment: comment(case).to_owned(),
        flags: flags(case).into_iter().map(str::to_owned).collect(),
        expected: Expected::of(case),
        outcome,
        unsupported,
    }
}

/// JSON serialization is out of scope: it must die in `dangerous::split` as "not compact".
fn assert_json_serialization_refused(file: &str, results: &[CaseResult], doc: &Value) {
    let mut seen = 0;
    for case in groups(doc).iter().flat_map(tests) {
        let text = jws_string(&case["jws"]);
        if !(flags(case).contains(&"JsonSerialization") || text.trim_start().starts_with('{')) {
            continue;
        }
        seen += 1;
        assert!(
            matches!(
                dangerous::split(&text),
                Err(TokenProblem::NotCompact { .. })
            ),
            "{file} tcId {}: a JSON-serialized JWS must be refused as not compact",
            tc_id(case)
        );
        let r = results.iter().find(|r| r.tc_id == tc_id(case)).unwrap();
        assert!(!r.outcome.accepted());
    }
    if file == JWS_FILE {
        assert!(
            seen >= 1,
            "{file}: expected at least one JSON-serialized case"
        );
    }
}

#[test]
fn json_web_signature_vectors() {
    let doc = load(JWS_FILE);
    let mut results = Vec::new();
    for group in groups(&doc) {
        // The group's JWK: `public` when present, else `private` (the oct keys).
        let jwk = group
            .get("public")
            .or_else(|| group.get("private"))
            .expect("group key");
        let set = json!({ "keys": [jwk] });
        let keys = load_keys(&set);
        for case in tests(group) {
            results.push(run_jws_case(&keys, &set, case));
        }
    }
    assert_json_serialization_refused(JWS_FILE, &results, &doc);
    let t = tally(JWS_FILE, &results);
    // `none` in any spelling dies as AlgNone, never as a signature failure.
    for case in groups(&doc).iter().flat_map(tests) {
        if flags(case).contains(&"AlgIsNone") {
            let r = results.iter().find(|r| r.tc_id == tc_id(case)).unwrap();
            assert!(!r.outcome.accepted(), "tcId {}: alg none accepted", r.tc_id);
        }
    }
    check(&t, &results, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn json_web_key_vectors() {
    let doc = load(JWK_FILE);
    let mut results = Vec::new();
    for group in groups(&doc) {
        // Already a `{"keys": [...]}` set.
        let set = group
            .get("public")
            .or_else(|| group.get("private"))
            .expect("group key set")
            .clone();
        let keys = load_keys(&set);
        for case in tests(group) {
            results.push(run_jws_case(&keys, &set, case));
        }
    }
    assert_json_serialization_refused(JWK_FILE, &results, &doc);
    let t = tally(JWK_FILE, &results);
    check(&t, &results, doc["numberOfTests"].as_u64().unwrap());
}

// ---------------------------------------------------------------------------------------
// Signature primitives through the crypto provider
// ---------------------------------------------------------------------------------------

/// The JWK for an EC group, from the uncompressed point `04 || X || Y`.
fn ec_jwk(group: &Value, crv: &str, size: usize, alg: Alg) -> Value {
    let point = unhex(
        group["publicKey"]["uncompressed"]
            .as_str()
            .expect("uncompressed"),
    );
    assert_eq!(point.len(), 1 + 2 * size, "uncompressed point length");
    assert_eq!(point[0], 0x04, "uncompressed point tag");
    json!({
        "kty": "EC", "crv": crv, "alg": alg.name(), "use": "sig",
        "x": b64(&point[1..=size]), "y": b64(&point[1 + size..]),
    })
}

fn ed25519_jwk(group: &Value) -> Value {
    let pk = unhex(group["publicKey"]["pk"].as_str().expect("pk"));
    assert_eq!(pk.len(), 32, "ed25519 public key length");
    json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "x": b64(&pk) })
}

fn rsa_jwk(group: &Value, alg: Alg) -> Value {
    let n = unhex(group["publicKey"]["modulus"].as_str().expect("modulus"));
    let e = unhex(
        group["publicKey"]["publicExponent"]
            .as_str()
            .expect("publicExponent"),
    );
    json!({
        "kty": "RSA", "alg": alg.name(), "use": "sig",
        "n": b64(strip_leading_zeros(&n)), "e": b64(strip_leading_zeros(&e)),
    })
}

/// When the file gives its own JWK for the group, the one built here must carry the same key.
fn assert_same_key(file: &str, built: &Value, group: &Value) {
    let Some(given) = group.get("publicKeyJwk").or_else(|| group.get("keyJwk")) else {
        return;
    };
    for member in ["kty", "crv", "x", "y", "n", "e"] {
        if let (Some(a), Some(b)) = (built.get(member), given.get(member)) {
            assert_eq!(
                a, b,
                "{file}: built JWK `{member}` differs from the file's JWK"
            );
        }
    }
}

fn run_primitive_file(file: &'static str, alg: Alg, jwk_of: impl Fn(&Value) -> Value) {
    let doc = load(file);
    let mut results = Vec::new();
    for group in groups(&doc) {
        let jwk = jwk_of(group);
        assert_same_key(file, &jwk, group);
        let set = json!({ "keys": [jwk] });
        let keys = load_keys(&set);
        if let Ok(set) = &keys {
            assert_eq!(set.keys.len(), 1);
            assert!(
                set.keys[0].fits(alg),
                "{file}: loaded key does not fit {alg}"
            );
        }
        for case in tests(group) {
            let msg = unhex(case["msg"].as_str().expect("msg"));
            let sig = unhex(case["sig"].as_str().expect("sig"));
            let outcome = match &keys {
                Err(e) => Outcome::Rejected {
                    stage: Stage::Load,
                    detail: format!("{e:?} ({e})"),
                },
                Ok(set) => {
                    let key = &set.keys[0];
                    if verify_with(&RING, alg.to_jsonwebtoken(), &key.decoding, &msg, &sig) {
                        Outcome::Accepted
                    } else {
                        Outcome::Rejected {
                            stage: Stage::Verify,
                            detail: "signature does not verify".into(),
                        }
                    }
                }
            };
            results.push(CaseResult {
                tc_id: tc_id(case),
                comment: comment(case).to_owned(),
                flags: flags(case).into_iter().map(str::to_owned).collect(),
                expected: Expected::of(case),
                outcome,
                // Every algorithm of these files is one actwarden supports.
                unsupported: None,
            });
        }
    }
    let t = tally(file, &results);
    check(&t, &results, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn ecdsa_p256_p1363_vectors_as_es256() {
    run_primitive_file(P256_FILE, Alg::ES256, |g| {
        ec_jwk(g, "P-256", 32, Alg::ES256)
    });
}

#[test]
fn ecdsa_p384_p1363_vectors_as_es384() {
    run_primitive_file(P384_FILE, Alg::ES384, |g| {
        ec_jwk(g, "P-384", 48, Alg::ES384)
    });
}

#[test]
fn ed25519_vectors_as_eddsa() {
    run_primitive_file(ED25519_FILE, Alg::EdDSA, ed25519_jwk);
}

#[test]
fn rsa_pkcs1_2048_sha256_vectors_as_rs256() {
    run_primitive_file(RSA_PKCS1_FILE, Alg::RS256, |g| rsa_jwk(g, Alg::RS256));
}

#[test]
fn rsa_pss_2048_sha256_mgf1_32_vectors_as_ps256() {
    run_primitive_file(RSA_PSS_FILE, Alg::PS256, |g| rsa_jwk(g, Alg::PS256));
}

// ---------------------------------------------------------------------------------------
// The divergence list itself
// ---------------------------------------------------------------------------------------

#[test]
fn divergences_list_names_only_known_files_and_outcomes() {
    let listed = listed_divergences();
    for ((file, id), l) in &listed {
        assert!(
            FILES.contains(&file.as_str()),
            "{DIVERGENCES}: {file} tcId {id}: unknown file (known: {FILES:?})"
        );
        assert!(
            ["valid", "invalid", "acceptable"].contains(&l.expected.as_str()),
            "{DIVERGENCES}: {file} tcId {id}: expected must be valid/invalid/acceptable"
        );
        assert!(
            ["accepted", "rejected"].contains(&l.actual_word()),
            "{DIVERGENCES}: {file} tcId {id}: actual must be `accepted` or `rejected (Stage: detail)`"
        );
        if l.actual_word() == "rejected" {
            assert!(
                l.actual_detail().is_some(),
                "{DIVERGENCES}: {file} tcId {id}: say where and why: `rejected (Stage: detail)`"
            );
        }
        assert!(
            l.expected != "acceptable",
            "{DIVERGENCES}: {file} tcId {id}: an acceptable case cannot diverge"
        );
    }
    // Every vector file the harness names is in the repository with its provenance.
    for file in FILES {
        assert!(
            std::path::Path::new(&format!("{DIR}/{file}")).is_file(),
            "{file} missing"
        );
    }
    for file in ["LICENSE", "SOURCE.md"] {
        assert!(
            std::path::Path::new(&format!("{DIR}/{file}")).is_file(),
            "{file} missing"
        );
    }
}

#[test]
fn divergence_checker_catches_unlisted_and_security_cases() {
    // The checker's own logic, on a synthetic tally: an unlisted invalid-accepted case must
    // fail loudly, so a regression in the core can never pass quietly.
    let results = vec![CaseResult {
        tc_id: 999_999,
        comment: "synthetic".into(),
        flags: vec![],
        expected: Expected::Invalid,
        outcome: Outcome::Accepted,
        unsupported: None,
    }];
    let t = tally("synthetic_test.json", &results);
    assert_eq!(t.divergences.len(), 1);
    assert!(summary(&t).contains("1 listed divergences [999999]"));
    let err = std::panic::catch_unwind(|| compare(&t, &results, 1)).unwrap_err();
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("SECURITY"), "{message}");
    assert!(message.contains("999999"), "{message}");
}

#[test]
fn vector_files_match_source_md() {
    // The copies stay byte-identical to upstream: a wrong expectation is listed in
    // DIVERGENCES.md, never edited out of a vector file.
    let source = read("SOURCE.md");
    let mut checked = Vec::new();
    for line in source.lines() {
        let mut parts = line.split_whitespace();
        let (Some(digest), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let bytes = std::fs::read(format!("{DIR}/{file}")).unwrap();
        let actual: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            actual, digest,
            "{file} differs from the digest in SOURCE.md"
        );
        checked.push(file.to_owned());
    }
    for file in FILES.iter().chain(&["LICENSE"]) {
        assert!(
            checked.iter().any(|c| c == file),
            "SOURCE.md has no SHA-256 for {file}"
        );
    }
}

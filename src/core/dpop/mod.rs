//! DPoP (RFC 9449, SPEC §10): sender-constrained tokens. Runs at the start of step 7
//! (binding): the token's scheme (`dpop_required`), its one proof (`dpop_invalid`), and
//! the replay window (`dpop_replayed`), in that order.
//!
//! - `proof`: one proof's checks, in SPEC order;
//! - `htu`: the URI comparison form;
//! - `thumbprint`: RFC 7638 (`cnf.jkt`);
//! - `replay`: the window trait the host lends (`Context::replay`), an in-memory window,
//!   and the shard encoding the Envoy host keeps in shared data.

mod htu;
mod proof;
pub(crate) mod replay;
mod thumbprint;

pub use proof::ProofProblem;
// Outside the pipeline only through `dangerous` (fuzzing): one proof's checks, the `htu`
// comparison form.
pub use htu::{normalize as normalize_htu, request_uri as request_htu};
pub(crate) use proof::ProofHeader;
pub use proof::{verify as verify_proof, Accepted as AcceptedProof, Expected as ExpectedProof};
pub use replay::{Admission, MemoryWindow, ReplayEntry, ReplayWindow};
pub(crate) use thumbprint::sha256_thumbprint;

use crate::core::claims::Claims;
use crate::core::config::{DpopMode, Policy, Provider, DPOP_PROOF_HEADER};
use crate::core::decision::BindingOutcome;
use crate::core::reasons::{Denial, DpopRequiredBecause, Reason};
use crate::core::request::Request;
use crate::core::time::UnixTime;
use crate::core::trace::{Recorder, Step};
use crate::core::verification::backend::SignatureVerifier;
use crate::core::verification::cache::TokenCache;
use serde_json::Value;

/// What the DPoP step needs from the pipeline.
pub(crate) struct Presented<'a> {
    pub provider: &'a Provider,
    /// SHA-256 of the access token (kept with the verified token).
    pub token_sha256: &'a [u8; 32],
    /// The token came with the `DPoP` scheme (its source is `FromHeader::is_dpop`).
    pub dpop_scheme: bool,
    /// The host's replay window (`Context::replay`).
    pub window: &'a dyn ReplayWindow,
    pub crypto: &'a dyn SignatureVerifier,
    /// The host's cache (`Context::cache`): it remembers checked proof headers.
    pub memo: Option<&'a TokenCache>,
}

/// The start of step 7. On success with a proof, `outcome` becomes `Dpop`.
pub(crate) fn check(
    presented: &Presented<'_>,
    claims: &Claims,
    request: &Request,
    now: UnixTime,
    outcome: &mut BindingOutcome,
    t: &mut Recorder,
) -> Result<(), Denial> {
    let config = &presented.provider.dpop;
    let jkt = jkt(claims);
    if !presented.dpop_scheme {
        let because = match (config.mode, jkt.is_some()) {
            (DpopMode::Required, _) => Some(DpopRequiredBecause::ModeRequired),
            (_, true) => Some(DpopRequiredBecause::BoundToken),
            _ => None,
        };
        return match because {
            Some(because) => Err(t.fail(Step::DpopScheme, Denial::DpopRequired(because))),
            None => {
                t.not_applicable(Step::DpopScheme, "a bearer token without cnf.jkt");
                Ok(())
            }
        };
    }
    t.pass(Step::DpopScheme);
    let accepted = t.check(
        Step::DpopProof,
        verify_one_proof(presented, jkt, request, now),
    )?;
    let window_s = config
        .max_age_s
        .saturating_add(presented.provider.clock_skew_s);
    // A proof from the future (within the window) stays acceptable until its `iat` plus
    // the window, so it is remembered that long.
    let from = u64::try_from(accepted.iat).unwrap_or(0).max(now.secs());
    let admission = presented.window.admit(ReplayEntry {
        provider: &presented.provider.name,
        jti: &accepted.jti,
        now: now.secs(),
        expires: from.saturating_add(window_s),
        capacity: config.replay_window_entries,
    });
    let replay = match admission {
        Admission::Fresh => Ok(()),
        Admission::Replayed => Err(Denial::DpopReplayed { window_full: false }),
        Admission::Full => Err(Denial::DpopReplayed { window_full: true }),
    };
    t.check(Step::DpopReplay, replay)?;
    *outcome = BindingOutcome::Dpop;
    Ok(())
}

fn verify_one_proof(
    presented: &Presented<'_>,
    jkt: Option<&str>,
    request: &Request,
    now: UnixTime,
) -> Result<proof::Accepted, Denial> {
    let invalid = Denial::DpopInvalid;
    // A proxy may join a repeated header with commas; a compact JWS has none, so each
    // part is a proof of its own and two proofs are refused whichever way they arrive.
    let proofs: Vec<&str> = request
        .header_values(DPOP_PROOF_HEADER)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let [proof] = proofs.as_slice() else {
        return Err(invalid(ProofProblem::ProofCount {
            count: proofs.len(),
        }));
    };
    let uri = request
        .authority
        .as_deref()
        .and_then(|a| htu::request_uri(request.scheme_or_default(), a, request.path_only()));
    let expected = proof::Expected {
        config: &presented.provider.dpop,
        clock_skew_s: presented.provider.clock_skew_s,
        method: &request.method,
        uri: uri.as_deref(),
        now: now.secs(),
        access_token_sha256: presented.token_sha256,
        jkt,
    };
    proof::verify_remembering(proof, &expected, presented.crypto, presented.memo).map_err(invalid)
}

/// The verified token's `cnf.jkt`, when it is a string.
fn jkt(claims: &Claims) -> Option<&str> {
    claims
        .raw
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------
// The challenge of a 401 on a DPoP request (SPEC §10, RFC 9449 §7.1).

/// Whether the request presents its token with the `DPoP` scheme (in a source some
/// provider reads).
pub(crate) fn is_dpop_request(policy: &Policy, request: &Request) -> bool {
    policy
        .token_sources
        .iter()
        .filter(|s| s.is_dpop())
        .any(|s| request.header_values(&s.name).any(|v| s.read(v).is_some()))
}

/// `algs` for a challenge: the policy's DPoP algorithms, or the default ones when a token
/// came with the `DPoP` scheme to a policy with DPoP off everywhere.
fn challenge_algs(policy: &Policy) -> String {
    let mut algs = policy.dpop_signing_algs();
    if algs.is_empty() {
        algs = crate::core::config::DpopConfig::default().algorithms;
    }
    let names: Vec<&str> = algs.iter().map(|a| a.name()).collect();
    names.join(" ")
}

/// Rewrites a 401's `Bearer` challenge for DPoP: on a DPoP request, and always for the
/// three DPoP reasons (a `dpop_required` request came as `Bearer`, but the way forward
/// is DPoP). The DPoP reasons say `invalid_dpop_proof`; other parameters are kept.
pub(crate) fn rewrite_challenge(
    policy: &Policy,
    request: &Request,
    reason: Reason,
    headers: &mut [(String, String)],
) {
    let dpop_reason = matches!(
        reason,
        Reason::DpopRequired | Reason::DpopInvalid | Reason::DpopReplayed
    );
    if reason.status() != Some(401) || !(dpop_reason || is_dpop_request(policy, request)) {
        return;
    }
    for (name, value) in headers.iter_mut() {
        if name != "www-authenticate" {
            continue;
        }
        let params = value.strip_prefix("Bearer").unwrap_or(value).trim_start();
        let params = if dpop_reason {
            params.replacen("error=\"invalid_token\"", "error=\"invalid_dpop_proof\"", 1)
        } else {
            params.to_owned()
        };
        let algs = format!("algs=\"{}\"", challenge_algs(policy));
        *value = if params.is_empty() {
            format!("DPoP {algs}")
        } else {
            format!("DPoP {params}, {algs}")
        };
    }
}

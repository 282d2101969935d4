//! Step 7 of SPEC §4: the token's binding to the caller — `cnf` against the mTLS peer
//! certificate (RFC 8705), and the peer's URI SAN against the current actor.

use crate::core::claims::{Claims, Confirmation};
use crate::core::config::{CnfMode, Policy};
use crate::core::decision::BindingOutcome;
use crate::core::reasons::{BindingProblem, Denial};
use crate::core::request::Request;
use crate::core::trace::{Recorder, Step};

/// Step 7, in SPEC order: `cnf` required, `cnf` against the peer certificate, the peer's
/// URI SAN against the current actor. `outcome` is the audit `binding`.
pub(crate) fn check(
    policy: &Policy,
    claims: &Claims,
    request: &Request,
    outcome: &mut BindingOutcome,
    t: &mut Recorder,
) -> Result<(), Denial> {
    if policy.binding.cnf == CnfMode::Required {
        if claims.cnf.is_none() {
            *outcome = BindingOutcome::Absent;
            return Err(t.fail(Step::BindingRequired, Denial::BindingRequired));
        }
        t.pass(Step::BindingRequired);
    } else {
        t.not_applicable(Step::BindingRequired, "binding.cnf is if_present");
    }
    let cnf = cnf_matches_peer(claims, request);
    *outcome = match &cnf {
        Ok(checked) => *checked,
        Err(_) => BindingOutcome::Mismatch,
    };
    t.check(Step::BindingCnf, cnf)?;
    if policy.binding.actor_must_match_peer {
        t.check(Step::BindingPeer, peer_is_current_actor(claims, request))
    } else {
        t.not_applicable(Step::BindingPeer, "actor_must_match_peer is off");
        Ok(())
    }
}

/// RFC 8705 §3.1: a `cnf.x5t#S256` names the peer's certificate. A token without `cnf`
/// passes here (`Absent`); whether it must have one is `binding.required`.
fn cnf_matches_peer(claims: &Claims, request: &Request) -> Result<BindingOutcome, Denial> {
    let Some(cnf) = &claims.cnf else {
        return Ok(BindingOutcome::Absent);
    };
    let peer_digest = request.peer.as_ref().and_then(|p| p.certificate_sha256);
    let problem = match (cnf, peer_digest) {
        // Only reachable after the DPoP step accepted a proof for this key (a `jkt` token
        // without one is `dpop_required` or `dpop_invalid` there).
        (Confirmation::KeyThumbprint, _) => return Ok(BindingOutcome::Dpop),
        (Confirmation::Unsupported, _) => BindingProblem::UnsupportedMethod,
        (Confirmation::CertificateThumbprint(_), None) => BindingProblem::NoPeerCertificate,
        // Not a secret (a certificate hash), so a plain comparison is fine.
        (Confirmation::CertificateThumbprint(expected), Some(actual)) if actual == *expected => {
            return Ok(BindingOutcome::Ok)
        }
        (Confirmation::CertificateThumbprint(_), Some(_)) => BindingProblem::ThumbprintMismatch,
    };
    Err(Denial::BindingMismatch(problem))
}

/// `actor_must_match_peer`: the mTLS peer's URI SAN is the current actor (or the subject).
fn peer_is_current_actor(claims: &Claims, request: &Request) -> Result<(), Denial> {
    let expected = claims.chain.first().map_or(&claims.sub, |a| &a.sub);
    let peer = request.peer.as_ref().and_then(|p| p.uri_san.clone());
    if peer.as_deref() != Some(expected.as_str()) {
        return Err(Denial::PeerMismatch {
            expected: expected.clone(),
            peer,
        });
    }
    Ok(())
}

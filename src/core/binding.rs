//! Step 7 of SPEC §4: the token's binding to the caller — `cnf` against the mTLS peer
//! certificate (RFC 8705), and the peer's URI SAN against the current actor.

use crate::core::claims::{Claims, Confirmation};
use crate::core::config::{CnfMode, Policy};
use crate::core::decision::BindingOutcome;
use crate::core::reasons::{BindingProblem, Denial};
use crate::core::request::Request;

pub(crate) fn check(
    policy: &Policy,
    claims: &Claims,
    request: &Request,
    outcome: &mut BindingOutcome,
) -> Result<(), Denial> {
    let peer_digest = request.peer.as_ref().and_then(|p| p.certificate_sha256);
    match &claims.cnf {
        None => {
            *outcome = BindingOutcome::Absent;
            if policy.binding.cnf == CnfMode::Required {
                return Err(Denial::BindingRequired);
            }
        }
        Some(cnf) => {
            *outcome = BindingOutcome::Mismatch;
            let problem = match (cnf, peer_digest) {
                (Confirmation::Unsupported, _) => Some(BindingProblem::UnsupportedMethod),
                (Confirmation::CertificateThumbprint(_), None) => {
                    Some(BindingProblem::NoPeerCertificate)
                }
                // Not a secret (a certificate hash), so a plain comparison is fine.
                (Confirmation::CertificateThumbprint(expected), Some(actual))
                    if actual == *expected =>
                {
                    None
                }
                (Confirmation::CertificateThumbprint(_), Some(_)) => {
                    Some(BindingProblem::ThumbprintMismatch)
                }
            };
            if let Some(problem) = problem {
                return Err(Denial::BindingMismatch(problem));
            }
            *outcome = BindingOutcome::Ok;
        }
    }
    if policy.binding.actor_must_match_peer {
        let expected = claims.chain.first().map_or(&claims.sub, |a| &a.sub);
        let peer = request.peer.as_ref().and_then(|p| p.uri_san.clone());
        if peer.as_deref() != Some(expected.as_str()) {
            return Err(Denial::PeerMismatch {
                expected: expected.clone(),
                peer,
            });
        }
    }
    Ok(())
}

//! Which implementation checks a signature is the host's choice (SPEC §13): the core
//! only asks through `SignatureVerifier`, passed in `Context::crypto`. ring
//! (`crypto::RING`, a jsonwebtoken `CryptoProvider`) serves the CLI, the playground and
//! every algorithm a host does not take over; the Envoy host brings BoringSSL through
//! Envoy's `verify_signature` foreign function. The core carries no cryptographic
//! arithmetic of its own.

use super::crypto;
use crate::core::keys::alg::Alg;
use crate::core::keys::VerificationKey;
use jsonwebtoken::crypto::CryptoProvider;

/// What a backend says about one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    Valid,
    /// Wrong signature, wrong key, malformed input: anything but a proof.
    Invalid,
}

impl Verification {
    pub fn is_valid(self) -> bool {
        self == Verification::Valid
    }

    pub(crate) fn of(valid: bool) -> Verification {
        if valid {
            Verification::Valid
        } else {
            Verification::Invalid
        }
    }
}

/// A signature-verification backend. `key` has already been checked to fit `alg`
/// (`VerificationKey::fits`); an implementation must still answer `Invalid`, never
/// panic, for anything it cannot check.
pub trait SignatureVerifier {
    fn verify(
        &self,
        alg: Alg,
        key: &VerificationKey,
        message: &[u8],
        signature: &[u8],
    ) -> Verification;
}

/// Any jsonwebtoken `CryptoProvider` (ring's `RING`, or a test's counting wrapper).
impl SignatureVerifier for CryptoProvider {
    fn verify(
        &self,
        alg: Alg,
        key: &VerificationKey,
        message: &[u8],
        signature: &[u8],
    ) -> Verification {
        Verification::of(crypto::verify_with(
            self,
            alg.to_jsonwebtoken(),
            &key.decoding,
            message,
            signature,
        ))
    }
}

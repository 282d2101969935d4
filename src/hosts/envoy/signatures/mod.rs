//! SPEC §13 inside Envoy: signatures are checked by Envoy's BoringSSL through the
//! `verify_signature` foreign function (Envoy `source/extensions/common/wasm/foreign.cc`)
//! when the host offers it — ES256, ES384, RS256, RS384, RS512 — and by ring in the wasm
//! module otherwise and for PS*, EdDSA and HS*. BoringSSL in Envoy is 4–11× cheaper than
//! ring compiled to wasm (bench/README.md).
//!
//! Whether the host offers the function is learnt once per plugin start (`probe`): a
//! known-good signature must verify and the same signature over other bytes must not;
//! anything else (NotFound, another status, an answer that does not decode) means ring.
//! A call that fails later for one signature falls back to ring for that signature, so a
//! host failure never turns into an allow nor into a wrong deny.

mod probe;
pub(crate) mod proto;

use super::host::{Host, HostStatus};
use crate::core::keys::alg::Alg;
use crate::core::keys::der::ecdsa_signature_der;
use crate::core::keys::VerificationKey;
use crate::core::verification::backend::{SignatureVerifier, Verification};
use crate::core::verification::crypto::RING;
use proto::{Arguments, VerifyResult};
use std::cell::Cell;

const FOREIGN_FUNCTION: &str = "verify_signature";

/// Which implementation verifies the algorithms the host can take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Envoy's BoringSSL via `verify_signature`.
    Host,
    /// ring, compiled into the module.
    Wasm,
}

impl Backend {
    // The differential test route (feature `test-hooks`) reports which backend answered.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Host => "host",
            Backend::Wasm => "wasm",
        }
    }
}

/// Why the probe chose ring: for the log line at start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ProbeFailure {
    /// The host has no `verify_signature` (not Envoy, or an Envoy without it).
    NotOffered,
    Status(HostStatus),
    Undecodable(proto::DecodeError),
    /// A known-good signature was refused (`error` says why), or a bad one accepted.
    WrongAnswer {
        good: bool,
        bad: bool,
        error: String,
    },
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::NotOffered => write!(f, "the host has no `{FOREIGN_FUNCTION}`"),
            ProbeFailure::Status(s) => write!(f, "`{FOREIGN_FUNCTION}` answered {s}"),
            ProbeFailure::Undecodable(e) => {
                write!(f, "`{FOREIGN_FUNCTION}` answered bytes that do not decode ({e:?})")
            }
            ProbeFailure::WrongAnswer { good, bad, error } => write!(
                f,
                "`{FOREIGN_FUNCTION}` answered {good} for a valid and {bad} for an invalid signature ({error})"
            ),
        }
    }
}

/// Asks the host to verify the probe vector and its altered twin; `Ok` only when it says
/// exactly "valid" and "invalid".
pub(crate) fn probe(host: &impl Host) -> Result<(), ProbeFailure> {
    let ask = |text: &[u8]| -> Result<VerifyResult, ProbeFailure> {
        let arguments = Arguments {
            hash_function: "sha256",
            public_key_der: probe::SPKI,
            signature: probe::SIGNATURE_DER,
            text,
        };
        let bytes = host
            .call_foreign_function(FOREIGN_FUNCTION, &arguments.encode())
            .map_err(|status| match status {
                HostStatus::NOT_FOUND => ProbeFailure::NotOffered,
                other => ProbeFailure::Status(other),
            })?;
        VerifyResult::decode(&bytes).map_err(ProbeFailure::Undecodable)
    };
    let good = ask(probe::MESSAGE)?;
    let bad = ask(probe::OTHER_MESSAGE)?;
    if good.result && !bad.result {
        Ok(())
    } else {
        Err(ProbeFailure::WrongAnswer {
            good: good.result,
            bad: bad.result,
            error: good.error,
        })
    }
}

/// The hash BoringSSL must use for `alg` and, for ECDSA, the scalar width of its curve.
/// Envoy does not check the hash against the key, so the pairing is enforced here: the
/// key already fits `alg` (`VerificationKey::fits`), and `alg` alone names the hash.
fn host_algorithm(alg: Alg) -> Option<(&'static str, Option<usize>)> {
    match alg {
        Alg::ES256 => Some(("sha256", Some(32))),
        Alg::ES384 => Some(("sha384", Some(48))),
        Alg::RS256 => Some(("sha256", None)),
        Alg::RS384 => Some(("sha384", None)),
        Alg::RS512 => Some(("sha512", None)),
        _ => None,
    }
}

/// The verifier the Envoy host passes in `Context::crypto` for one decision, counting
/// what each backend verified (`actwarden.verify.host`, `actwarden.verify.wasm`).
pub(crate) struct EnvoyVerifier<'h, H> {
    host: &'h H,
    backend: Backend,
    by_host: Cell<u64>,
    by_wasm: Cell<u64>,
}

impl<'h, H: Host> EnvoyVerifier<'h, H> {
    pub(crate) fn new(host: &'h H, backend: Backend) -> EnvoyVerifier<'h, H> {
        EnvoyVerifier {
            host,
            backend,
            by_host: Cell::new(0),
            by_wasm: Cell::new(0),
        }
    }

    /// (verified by the host, verified by ring) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.by_host.get(), self.by_wasm.get())
    }

    /// The answer and who gave it.
    pub(crate) fn verify_with_backend(
        &self,
        alg: Alg,
        key: &VerificationKey,
        message: &[u8],
        signature: &[u8],
    ) -> (Verification, Backend) {
        if self.backend == Backend::Host {
            if let Some(answer) = self.on_host(alg, key, message, signature) {
                self.by_host.set(self.by_host.get().saturating_add(1));
                return (answer, Backend::Host);
            }
        }
        self.by_wasm.set(self.by_wasm.get().saturating_add(1));
        (RING.verify(alg, key, message, signature), Backend::Wasm)
    }

    /// BoringSSL's answer; `None` when the host does not take this algorithm or key, or
    /// its call failed (ring answers instead).
    fn on_host(
        &self,
        alg: Alg,
        key: &VerificationKey,
        message: &[u8],
        signature: &[u8],
    ) -> Option<Verification> {
        let (hash_function, ecdsa_scalar) = host_algorithm(alg)?;
        let spki = key.spki.as_deref()?;
        let der;
        let signature = match ecdsa_scalar {
            // A signature of the wrong width or with r or s zero cannot verify (RFC 7518
            // §3.4, SEC 1 §4.1.4): refused here, before any call.
            Some(scalar_len) => match ecdsa_signature_der(signature, scalar_len) {
                Ok(encoded) => {
                    der = encoded;
                    der.as_slice()
                }
                Err(_) => return Some(Verification::Invalid),
            },
            None => signature,
        };
        let arguments = Arguments {
            hash_function,
            public_key_der: spki,
            signature,
            text: message,
        };
        let bytes = self
            .host
            .call_foreign_function(FOREIGN_FUNCTION, &arguments.encode())
            .ok()?;
        let result = VerifyResult::decode(&bytes).ok()?;
        Some(Verification::of(result.result))
    }
}

impl<H: Host> SignatureVerifier for EnvoyVerifier<'_, H> {
    fn verify(
        &self,
        alg: Alg,
        key: &VerificationKey,
        message: &[u8],
        signature: &[u8],
    ) -> Verification {
        self.verify_with_backend(alg, key, message, signature).0
    }
}

#[cfg(test)]
pub(crate) mod fake_boringssl;
#[cfg(test)]
mod tests;

//! The ring-backed `jsonwebtoken::crypto::CryptoProvider` actwarden verifies with.
//!
//! jsonwebtoken 11 separates its JWS logic from the cryptography; it ships aws-lc-rs and
//! RustCrypto backends, neither of which suits both wasm targets and native, so actwarden
//! provides ring 0.17. The provider is passed as an argument to the core (never installed
//! as a process default), so tests and hosts can see exactly which backend decides.
//!
//! Signing lives in `mint` (it needs private JWKs, which jsonwebtoken's `EncodingKey`
//! does not model); this provider's signer factory therefore refuses.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
// jsonwebtoken's verifier trait is the `signature` crate's, re-exported by jsonwebtoken.
use jsonwebtoken::signature::{self as signature_trait, Verifier};

/// actwarden's crypto backend: ring 0.17 for every algorithm of `alg::Alg`.
pub static RING: CryptoProvider = CryptoProvider {
    signer_factory: refuse_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::InvalidKeyFormat.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidKeyFormat.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        compute_digest,
    },
};

fn refuse_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, JwtError> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, JwtError> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}

/// The public part of a key in the form ring consumes, fixed when the key is loaded.
enum RingKey {
    /// (n, e), big-endian, as in the JWK.
    Rsa(Vec<u8>, Vec<u8>),
    /// Uncompressed SEC1 point or raw Ed25519 key.
    Raw(Vec<u8>),
    HmacSecret(Vec<u8>),
}

struct RingVerifier {
    alg: Algorithm,
    key: RingKey,
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, JwtError> {
    use jsonwebtoken::AlgorithmFamily as F;
    // The key's family must be the algorithm's family: this is where HS256-with-an-RSA-key
    // and ES256-with-an-RSA-key confusion dies even if a caller got everything else wrong.
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let ring_key = match (key.family(), key.kind()) {
        (F::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            RingKey::Rsa(n.clone(), e.clone())
        }
        (F::Ec | F::Ed, DecodingKeyKind::SecretOrDer(b)) => RingKey::Raw(b.clone()),
        (F::Hmac, DecodingKeyKind::SecretOrDer(b)) => RingKey::HmacSecret(b.clone()),
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: ring_key,
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature_trait::Error> {
        let ok = verify_raw(self.alg, &self.key, msg, sig);
        if ok {
            Ok(())
        } else {
            Err(signature_trait::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn verify_raw(alg: Algorithm, key: &RingKey, msg: &[u8], sig: &[u8]) -> bool {
    let rsa: Option<&'static signature::RsaParameters> = match alg {
        Algorithm::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
        _ => None,
    };
    match (key, rsa) {
        (RingKey::Rsa(n, e), Some(params)) => RsaPublicKeyComponents { n, e }
            .verify(params, msg, sig)
            .is_ok(),
        (RingKey::Raw(point), None) => {
            let verification: &'static dyn VerificationAlgorithm = match alg {
                Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                Algorithm::EdDSA => &signature::ED25519,
                _ => return false,
            };
            UnparsedPublicKey::new(verification, point)
                .verify(msg, sig)
                .is_ok()
        }
        (RingKey::HmacSecret(secret), None) => {
            let hmac_alg = match alg {
                Algorithm::HS256 => ring::hmac::HMAC_SHA256,
                Algorithm::HS384 => ring::hmac::HMAC_SHA384,
                Algorithm::HS512 => ring::hmac::HMAC_SHA512,
                _ => return false,
            };
            // Constant-time comparison inside ring.
            ring::hmac::verify(&ring::hmac::Key::new(hmac_alg, secret), msg, sig).is_ok()
        }
        _ => false,
    }
}

/// Verifies `sig` over `msg` with `key` under `alg` through `provider`. Any error from the
/// provider — wrong family, bad key — is a failed verification, never a pass.
pub fn verify_with(
    provider: &CryptoProvider,
    alg: Algorithm,
    key: &DecodingKey,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    match (provider.verifier_factory)(&alg, key) {
        Ok(verifier) => verifier.verify(msg, &sig.to_vec()).is_ok(),
        Err(_) => false,
    }
}

/// SHA-256, used for `token_id`, cache keys and certificate thumbprints.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

//! JWS algorithms actwarden knows, and which of them it can verify.

use jsonwebtoken::Algorithm;
use serde::Serialize;

/// A JWS algorithm that actwarden verifies (ring 0.17 backs every one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// What an `alg` name is, before any policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgName {
    Supported(Alg),
    /// Registered for JWS but not verifiable here (ES512: ring has no P-521; ES256K).
    Unsupported,
    /// `none` in any letter case: never accepted.
    None,
    /// Not a JWS signature algorithm at all.
    Unknown,
}

/// A name that is not an algorithm actwarden can use (`Alg::parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlg(pub String);

impl std::fmt::Display for UnknownAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not an algorithm actwarden can use", self.0)
    }
}

impl std::error::Error for UnknownAlg {}

/// The algorithms used when a provider's `algorithms` is absent: every asymmetric one.
pub(crate) const ASYMMETRIC: [Alg; 9] = [
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
];

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Classifies a name exactly as it appears in a header or a configuration.
    /// Names are case-sensitive (RFC 7515 §4.1.1), except that every spelling of `none`
    /// is recognised as `none` so that it can be refused by name.
    pub fn classify(name: &str) -> AlgName {
        if name.eq_ignore_ascii_case("none") {
            return AlgName::None;
        }
        if let Some(alg) = Alg::ALL.iter().copied().find(|a| a.name() == name) {
            return AlgName::Supported(alg);
        }
        match name {
            "ES512" | "ES256K" | "Ed25519" | "Ed448" => AlgName::Unsupported,
            _ => AlgName::Unknown,
        }
    }

    /// A name actwarden can sign and verify with, or why not (`Err` holds the name).
    pub fn parse(name: &str) -> Result<Alg, UnknownAlg> {
        match Alg::classify(name) {
            AlgName::Supported(a) => Ok(a),
            _ => Err(UnknownAlg(name.to_owned())),
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// Minimum HMAC key length in bytes: the hash output size (RFC 7518 §3.2).
    pub fn hmac_min_key_bytes(self) -> Option<usize> {
        match self {
            Alg::HS256 => Some(32),
            Alg::HS384 => Some(48),
            Alg::HS512 => Some(64),
            _ => None,
        }
    }

    pub fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::RS384 => Algorithm::RS384,
            Alg::RS512 => Algorithm::RS512,
            Alg::PS256 => Algorithm::PS256,
            Alg::PS384 => Algorithm::PS384,
            Alg::PS512 => Algorithm::PS512,
            Alg::ES256 => Algorithm::ES256,
            Alg::ES384 => Algorithm::ES384,
            Alg::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

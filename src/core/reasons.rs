//! Reason codes (SPEC §4) and the facts behind a denial.

use crate::core::config::ProviderName;
pub(crate) use crate::core::dpop::ProofProblem;
use crate::core::token::TokenProblem;
use serde::Serialize;

/// The user-facing reason code of a decision. Names and statuses are the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Allowed,
    AllowedAnonymous,
    TokenMissing,
    TokenMalformed,
    TokenTooLarge,
    TypeNotAllowed,
    AlgNotAllowed,
    KidUnknown,
    SignatureInvalid,
    IssuerUnknown,
    AudienceMismatch,
    TokenExpired,
    TokenNotYetValid,
    LifetimeTooLong,
    ClaimInvalid,
    TokenRevoked,
    BindingRequired,
    BindingMismatch,
    StepupRequired,
    ScopeInsufficient,
    ActorScopeExceeded,
    ActorNotAllowed,
    TrustDomainMismatch,
    ChainTooDeep,
    ActorCycle,
    MayActViolation,
    HumanSubjectRequired,
    DelegationRequired,
    DelegationForbidden,
    ClaimMismatch,
    PeerMismatch,
    RouteDenied,
    JwksUnavailable,
    DpopRequired,
    DpopInvalid,
    DpopReplayed,
    // SPEC §9 (MCP).
    McpBodyTooLarge,
    McpMalformed,
    McpHeaderMismatch,
    ArgumentDenied,
    /// Not a denial: the gateway answered the RFC 9728 metadata `GET` itself (200).
    ResourceMetadata,
}

impl Reason {
    pub const ALL: [Reason; 41] = [
        Reason::Allowed,
        Reason::AllowedAnonymous,
        Reason::TokenMissing,
        Reason::TokenMalformed,
        Reason::TokenTooLarge,
        Reason::TypeNotAllowed,
        Reason::AlgNotAllowed,
        Reason::KidUnknown,
        Reason::SignatureInvalid,
        Reason::IssuerUnknown,
        Reason::AudienceMismatch,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::LifetimeTooLong,
        Reason::ClaimInvalid,
        Reason::TokenRevoked,
        Reason::BindingRequired,
        Reason::BindingMismatch,
        Reason::StepupRequired,
        Reason::ScopeInsufficient,
        Reason::ActorScopeExceeded,
        Reason::ActorNotAllowed,
        Reason::TrustDomainMismatch,
        Reason::ChainTooDeep,
        Reason::ActorCycle,
        Reason::MayActViolation,
        Reason::HumanSubjectRequired,
        Reason::DelegationRequired,
        Reason::DelegationForbidden,
        Reason::ClaimMismatch,
        Reason::PeerMismatch,
        Reason::RouteDenied,
        Reason::JwksUnavailable,
        Reason::DpopRequired,
        Reason::DpopInvalid,
        Reason::DpopReplayed,
        Reason::McpBodyTooLarge,
        Reason::McpMalformed,
        Reason::McpHeaderMismatch,
        Reason::ArgumentDenied,
        Reason::ResourceMetadata,
    ];

    pub fn code(self) -> &'static str {
        use Reason::*;
        match self {
            Allowed => "allowed",
            AllowedAnonymous => "allowed_anonymous",
            TokenMissing => "token_missing",
            TokenMalformed => "token_malformed",
            TokenTooLarge => "token_too_large",
            TypeNotAllowed => "type_not_allowed",
            AlgNotAllowed => "alg_not_allowed",
            KidUnknown => "kid_unknown",
            SignatureInvalid => "signature_invalid",
            IssuerUnknown => "issuer_unknown",
            AudienceMismatch => "audience_mismatch",
            TokenExpired => "token_expired",
            TokenNotYetValid => "token_not_yet_valid",
            LifetimeTooLong => "lifetime_too_long",
            ClaimInvalid => "claim_invalid",
            TokenRevoked => "token_revoked",
            BindingRequired => "binding_required",
            BindingMismatch => "binding_mismatch",
            StepupRequired => "stepup_required",
            ScopeInsufficient => "scope_insufficient",
            ActorScopeExceeded => "actor_scope_exceeded",
            ActorNotAllowed => "actor_not_allowed",
            TrustDomainMismatch => "trust_domain_mismatch",
            ChainTooDeep => "chain_too_deep",
            ActorCycle => "actor_cycle",
            MayActViolation => "may_act_violation",
            HumanSubjectRequired => "human_subject_required",
            DelegationRequired => "delegation_required",
            DelegationForbidden => "delegation_forbidden",
            ClaimMismatch => "claim_mismatch",
            PeerMismatch => "peer_mismatch",
            RouteDenied => "route_denied",
            JwksUnavailable => "jwks_unavailable",
            DpopRequired => "dpop_required",
            DpopInvalid => "dpop_invalid",
            DpopReplayed => "dpop_replayed",
            McpBodyTooLarge => "mcp_body_too_large",
            McpMalformed => "mcp_malformed",
            McpHeaderMismatch => "mcp_header_mismatch",
            ArgumentDenied => "argument_denied",
            ResourceMetadata => "resource_metadata",
        }
    }

    /// HTTP status of a denial; `None` for the allow reasons.
    pub fn status(self) -> Option<u16> {
        use Reason::*;
        match self {
            Allowed | AllowedAnonymous => None,
            TokenMissing | TokenMalformed | TokenTooLarge | TypeNotAllowed | AlgNotAllowed
            | KidUnknown | SignatureInvalid | IssuerUnknown | AudienceMismatch | TokenExpired
            | TokenNotYetValid | LifetimeTooLong | ClaimInvalid | TokenRevoked
            | BindingRequired | BindingMismatch | StepupRequired | DpopRequired | DpopInvalid
            | DpopReplayed => Some(401),
            ScopeInsufficient | ActorScopeExceeded | ActorNotAllowed | TrustDomainMismatch
            | ChainTooDeep | ActorCycle | MayActViolation | HumanSubjectRequired
            | DelegationRequired | DelegationForbidden | ClaimMismatch | PeerMismatch
            | RouteDenied => Some(403),
            JwksUnavailable => Some(503),
            McpBodyTooLarge => Some(413),
            McpMalformed | McpHeaderMismatch => Some(400),
            ArgumentDenied => Some(403),
            // The status of the local answer; the decision is not a denial.
            ResourceMetadata => Some(200),
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What went wrong with a `cnf` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingProblem {
    /// The token is bound but the connection presented no client certificate.
    NoPeerCertificate,
    /// `cnf.x5t#S256` names another certificate.
    ThumbprintMismatch,
    /// `cnf` holds only confirmation methods actwarden cannot check here (`jkt`, `jwk`).
    UnsupportedMethod,
}

/// Which revocation list matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Jti,
    Subject,
    Actor(String),
}

/// The facts of a denial. Every variant maps to exactly one `Reason`. Variants that arise
/// before the signature is verified carry nothing the token claims, so a forged token
/// cannot put words into the response or the audit record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Denial {
    RouteDenied,
    PathNotNormalized,
    TokenMissing,
    /// More than one token in the request (a repeated header, or several `from_headers`).
    TokenRepeated {
        count: usize,
    },
    Token(TokenProblem),
    IssuerMissing,
    IssuerUnknown,
    /// The issuer's provider is not one the matched rule accepts.
    ProviderNotForRule {
        provider: ProviderName,
    },
    /// The token came from a header the issuer's provider does not read.
    TokenFromOtherHeader {
        provider: ProviderName,
    },
    TypeMissing {
        provider: ProviderName,
    },
    TypeNotAllowed {
        provider: ProviderName,
    },
    AlgNone,
    /// A registered JWS algorithm actwarden cannot verify (ES512: ring has no P-521).
    AlgUnsupported,
    AlgNotAllowed {
        provider: ProviderName,
    },
    JwksUnavailable {
        provider: ProviderName,
    },
    KidUnknown {
        provider: ProviderName,
    },
    /// The key named by `kid` (or, without one, every key) cannot verify this `alg`.
    KeyDoesNotFitAlg {
        provider: ProviderName,
    },
    SignatureInvalid,
    ClaimInvalid {
        claim: String,
        expected: &'static str,
    },
    AudienceMismatch,
    Expired {
        now: u64,
        exp: f64,
        skew: u64,
    },
    NotYetValid {
        now: u64,
        nbf: f64,
        skew: u64,
    },
    IssuedInFuture {
        now: u64,
        iat: f64,
        skew: u64,
    },
    LifetimeTooLong {
        lifetime: f64,
        max: u64,
    },
    ChainTooDeep {
        depth: usize,
        max: u32,
    },
    ActorCycle {
        identity: String,
    },
    TrustDomainMismatch {
        identity: String,
    },
    ActorNotAllowed {
        actor: String,
    },
    MayActViolation {
        may_act: String,
        actor: String,
    },
    Revoked(Revocation),
    BindingRequired,
    BindingMismatch(BindingProblem),
    PeerMismatch {
        expected: String,
        peer: Option<String>,
    },
    DelegationRequired,
    DelegationForbidden,
    HumanSubjectRequired {
        profile: Option<String>,
    },
    RuleActorNotAllowed {
        actor: Option<String>,
    },
    RuleChainTooDeep {
        depth: usize,
        max: u32,
    },
    ScopeInsufficient {
        missing: Vec<String>,
    },
    ActorScopeExceeded {
        scope: String,
        actor: String,
    },
    ClaimMismatch {
        claim: String,
    },
    StepUpRequired {
        age: Option<f64>,
        max: u64,
    },
    /// SPEC §10: the token came as `Bearer` where DPoP is needed.
    DpopRequired(DpopRequiredBecause),
    /// SPEC §10: the DPoP proof (or its absence, or its tie to the token) is not valid.
    DpopInvalid(ProofProblem),
    /// SPEC §10: a proof with this `jti` was already accepted (or the window is full).
    DpopReplayed {
        /// The window held `replay_window_entries` live proofs (fail closed), rather than
        /// this `jti`.
        window_full: bool,
    },
    // SPEC §9 (MCP). None of these carries body content: a body may hold secrets.
    McpBodyTooLarge {
        size: usize,
        max: usize,
    },
    McpMalformed(crate::core::mcp::McpProblem),
    McpHeaderMismatch {
        header: &'static str,
    },
    /// A `require.arguments` condition failed (the pointer and test, never the value).
    ArgumentDenied {
        pointer: String,
        test: &'static str,
    },
}

/// Why a bearer token was not enough (`dpop_required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopRequiredBecause {
    /// The provider's `dpop.mode` is `required`.
    ModeRequired,
    /// The token is bound to a key (`cnf.jkt`): never a bearer token (RFC 9449 §7.1).
    BoundToken,
}

impl Denial {
    pub fn reason(&self) -> Reason {
        use Denial::*;
        match self {
            RouteDenied | PathNotNormalized => Reason::RouteDenied,
            TokenMissing => Reason::TokenMissing,
            TokenRepeated { .. } => Reason::TokenMalformed,
            Token(TokenProblem::TooLarge { .. }) => Reason::TokenTooLarge,
            Token(_) => Reason::TokenMalformed,
            IssuerMissing
            | IssuerUnknown
            | ProviderNotForRule { .. }
            | TokenFromOtherHeader { .. } => Reason::IssuerUnknown,
            TypeMissing { .. } | TypeNotAllowed { .. } => Reason::TypeNotAllowed,
            AlgNone | AlgUnsupported | AlgNotAllowed { .. } | KeyDoesNotFitAlg { .. } => {
                Reason::AlgNotAllowed
            }
            JwksUnavailable { .. } => Reason::JwksUnavailable,
            KidUnknown { .. } => Reason::KidUnknown,
            SignatureInvalid => Reason::SignatureInvalid,
            ClaimInvalid { .. } => Reason::ClaimInvalid,
            AudienceMismatch => Reason::AudienceMismatch,
            Expired { .. } => Reason::TokenExpired,
            NotYetValid { .. } | IssuedInFuture { .. } => Reason::TokenNotYetValid,
            LifetimeTooLong { .. } => Reason::LifetimeTooLong,
            ChainTooDeep { .. } | RuleChainTooDeep { .. } => Reason::ChainTooDeep,
            ActorCycle { .. } => Reason::ActorCycle,
            TrustDomainMismatch { .. } => Reason::TrustDomainMismatch,
            ActorNotAllowed { .. } | RuleActorNotAllowed { .. } => Reason::ActorNotAllowed,
            MayActViolation { .. } => Reason::MayActViolation,
            Revoked(_) => Reason::TokenRevoked,
            BindingRequired => Reason::BindingRequired,
            BindingMismatch(_) => Reason::BindingMismatch,
            PeerMismatch { .. } => Reason::PeerMismatch,
            DelegationRequired => Reason::DelegationRequired,
            DelegationForbidden => Reason::DelegationForbidden,
            HumanSubjectRequired { .. } => Reason::HumanSubjectRequired,
            ScopeInsufficient { .. } => Reason::ScopeInsufficient,
            ActorScopeExceeded { .. } => Reason::ActorScopeExceeded,
            ClaimMismatch { .. } => Reason::ClaimMismatch,
            StepUpRequired { .. } => Reason::StepupRequired,
            DpopRequired(_) => Reason::DpopRequired,
            DpopInvalid(_) => Reason::DpopInvalid,
            DpopReplayed { .. } => Reason::DpopReplayed,
            McpBodyTooLarge { .. } => Reason::McpBodyTooLarge,
            McpMalformed(_) => Reason::McpMalformed,
            McpHeaderMismatch { .. } => Reason::McpHeaderMismatch,
            ArgumentDenied { .. } => Reason::ArgumentDenied,
        }
    }

    /// One human sentence for the response body and the audit record.
    pub fn detail(&self) -> String {
        use Denial::*;
        match self {
            RouteDenied => "no rule matches this method and path".into(),
            PathNotNormalized => {
                "the path has dot segments, empty segments or encoded separators; send a normalized path".into()
            }
            TokenMissing => "a bearer token is required".into(),
            TokenRepeated { count } => {
                format!("the request carries {count} tokens; exactly one identity is allowed")
            }
            Token(p) => p.describe(),
            IssuerMissing => "the token has no string `iss`".into(),
            IssuerUnknown => "no configured provider has the token's issuer".into(),
            ProviderNotForRule { provider } => {
                format!("provider `{provider}` is not accepted on this route")
            }
            TokenFromOtherHeader { provider } => {
                format!("provider `{provider}` does not read tokens from this header")
            }
            TypeMissing { provider } => {
                format!("the token has no `typ` and provider `{provider}` does not accept `jwt`")
            }
            TypeNotAllowed { provider } => {
                format!("the token `typ` is not one provider `{provider}` accepts")
            }
            AlgNone => "unsigned tokens (`alg: none`) are never accepted".into(),
            AlgUnsupported => "the token `alg` is not supported by actwarden (ES512 and ES256K: ring has no P-521 or secp256k1)".into(),
            AlgNotAllowed { provider } => {
                format!("the token `alg` is not one provider `{provider}` accepts")
            }
            JwksUnavailable { provider } => {
                format!("provider `{provider}` has no usable keys right now")
            }
            KidUnknown { provider } => format!("provider `{provider}` has no key with this `kid`"),
            KeyDoesNotFitAlg { provider } => format!(
                "no key of provider `{provider}` may verify this `alg` (key type, curve or stated `alg` differ)"
            ),
            SignatureInvalid => "the token signature does not verify".into(),
            ClaimInvalid { claim, expected } => format!("claim `{claim}` must be {expected}"),
            AudienceMismatch => "the token is not for this audience".into(),
            Expired { now, exp, skew } => {
                format!("the token expired at {} (now {now}, skew {skew}s)", secs(*exp))
            }
            NotYetValid { now, nbf, skew } => {
                format!("the token is not valid before {} (now {now}, skew {skew}s)", secs(*nbf))
            }
            IssuedInFuture { now, iat, skew } => {
                format!("the token is issued in the future at {} (now {now}, skew {skew}s)", secs(*iat))
            }
            LifetimeTooLong { lifetime, max } => {
                format!("the token lives {}s; the provider allows {max}s", secs(*lifetime))
            }
            ChainTooDeep { depth, max } | RuleChainTooDeep { depth, max } => {
                format!("the delegation chain has {depth} actors; at most {max} are allowed")
            }
            ActorCycle { identity } => {
                format!("`{identity}` appears more than once in the delegation chain")
            }
            TrustDomainMismatch { identity } => {
                format!("`{identity}` is not in a trusted SPIFFE trust domain")
            }
            ActorNotAllowed { actor } => format!("actor `{actor}` is not an allowed agent"),
            RuleActorNotAllowed { actor: Some(actor) } => {
                format!("actor `{actor}` may not call this route")
            }
            RuleActorNotAllowed { actor: None } => {
                "this route needs a listed actor and the token has none".into()
            }
            MayActViolation { may_act, actor } => {
                format!("`may_act` allows `{may_act}` to act, not `{actor}`")
            }
            Revoked(Revocation::Jti) => "the token is revoked".into(),
            Revoked(Revocation::Subject) => "the token subject is revoked".into(),
            Revoked(Revocation::Actor(a)) => format!("actor `{a}` is revoked"),
            BindingRequired => "the token must be bound to a certificate (`cnf`)".into(),
            BindingMismatch(BindingProblem::NoPeerCertificate) => {
                "the token is bound to a certificate and the connection presented none".into()
            }
            BindingMismatch(BindingProblem::ThumbprintMismatch) => {
                "the token is bound to another certificate than the peer's".into()
            }
            BindingMismatch(BindingProblem::UnsupportedMethod) => {
                "the token's `cnf` has no `x5t#S256`; other confirmation methods cannot be checked here".into()
            }
            PeerMismatch { expected, peer: Some(peer) } => {
                format!("the mTLS peer is `{peer}`, not `{expected}`")
            }
            PeerMismatch { expected, peer: None } => {
                format!("the mTLS peer has no URI SAN; `{expected}` was expected")
            }
            DelegationRequired => "this route needs a delegated token (`act`)".into(),
            DelegationForbidden => "this route refuses delegated tokens".into(),
            HumanSubjectRequired { profile: Some(p) } => {
                format!("this route needs a human subject; the subject profile is `{p}`")
            }
            HumanSubjectRequired { profile: None } => {
                "this route needs a human subject; the subject has no `sub_profile`".into()
            }
            ScopeInsufficient { missing } => {
                format!("the token lacks scope `{}`", missing.join(" "))
            }
            ActorScopeExceeded { scope, actor } => format!(
                "scope `{scope}` is in the token but beyond the ceiling of actor `{actor}`"
            ),
            ClaimMismatch { claim } => format!("claim `{claim}` does not have a required value"),
            StepUpRequired { age: Some(age), max } => format!(
                "the user authenticated {}s ago; this route needs authentication within {max}s",
                secs(*age)
            ),
            StepUpRequired { age: None, max } => format!(
                "the token has no `auth_time` or `iat`; this route needs authentication within {max}s"
            ),
            DpopRequired(DpopRequiredBecause::ModeRequired) => {
                "this issuer's tokens must be sent with `Authorization: DPoP` and a DPoP proof".into()
            }
            DpopRequired(DpopRequiredBecause::BoundToken) => {
                "the token is bound to a key (`cnf.jkt`) and cannot be used as a bearer token; send it with `Authorization: DPoP` and a proof".into()
            }
            DpopInvalid(problem) => format!("the DPoP proof is not valid: {}", problem.describe()),
            DpopReplayed { window_full: false } => {
                "this DPoP proof was already used; make a new proof for every request".into()
            }
            DpopReplayed { window_full: true } => {
                "the DPoP replay window is full; the proof cannot be checked for replay and is refused".into()
            }
            // Not the size: a gateway stops reading one byte past the budget, so only
            // "more than max" is a fact every host knows alike.
            McpBodyTooLarge { max, .. } => {
                format!("the MCP message is larger than the {max} bytes allowed")
            }
            McpMalformed(problem) => problem.describe().to_owned(),
            McpHeaderMismatch { header } => {
                format!("the `{header}` header does not say what the MCP body says")
            }
            ArgumentDenied { pointer, test } => {
                format!("tool argument `{pointer}` fails its `{test}` condition")
            }
        }
    }
}

/// A NumericDate or duration for a sentence: whole seconds as integers, anything huge or
/// fractional in short scientific form (a signed `exp: 1e300` must not print 300 digits).
fn secs(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3e}")
    }
}

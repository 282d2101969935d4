//! Load-time errors: what is wrong (`ConfigProblem`, facts with typed context) and where
//! (`ConfigError::path`, the JSON path). Display texts are part of the contract: hosts
//! print them and tests compare them.

use crate::core::keys::alg::Alg;
use crate::core::keys::JwksError;
use crate::core::limits::clip_for_error;
use std::fmt;

/// What is wrong at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The document is not a JSON configuration of the right shape.
    Syntax(SyntaxProblem),
    /// A member name appears twice in one object (serde would keep only the last).
    DuplicateMember(String),
    /// A list, name or cluster that must have content has none.
    Empty,
    /// `none` (any letter case) in `algorithms`.
    NoneAlgorithm,
    /// A registered JWS algorithm that ring cannot verify (the name as written).
    UnsupportedAlgorithm(String),
    /// A name that is not a JWS signature algorithm (as written).
    UnknownAlgorithm(String),
    /// An HMAC algorithm with no `oct` key in the provider's `local_jwks` for it.
    HmacWithoutKey(Alg),
    /// A provider whose keys are all `oct` and whose `algorithms` is absent: HMAC is never
    /// a default.
    HmacNeedsExplicitAlgorithms,
    /// Not exactly one of `local_jwks`/`remote_jwks` (or `inline_string`/`filename`).
    JwksSourceCount,
    /// The host's file reader could not read `local_jwks.filename` (its reason).
    FileUnavailable(String),
    /// `local_jwks.filename` in a host that has no files (Envoy, the playground).
    NoFileAccess,
    /// The configured JWK set is invalid.
    Jwks(JwksError),
    /// A number outside what the field allows.
    OutOfRange { value: u64, min: u64, max: u64 },
    /// A `remote_jwks.http_uri.uri` that is not an http(s) uri (as written).
    NotAUri(String),
    /// A `from_headers` name that is not a header name token or is an identity header.
    BadHeaderName(String),
    /// An `identity.trust_domains` entry that is not a trust domain name.
    BadTrustDomain(String),
    /// An actor that is not a SPIFFE ID in `identity.trust_domains`.
    ActorOutsideTrustDomains(String),
    /// Two providers with the same `issuer`: a token could not say whose it is.
    DuplicateIssuer {
        /// The provider that already uses this issuer.
        other: String,
    },
    /// Two rules with the same `id`.
    DuplicateRuleId(String),
    /// A rule `id` that cannot go into a header, an audit record or a metric name.
    BadRuleId(String),
    /// A rule's `providers` names a provider that does not exist.
    UnknownProvider(String),
    /// Not exactly one of `path_prefix` and `path_exact`.
    PathMatchCount,
    /// A rule path that does not start with `/`.
    PathNotAbsolute(String),
    /// A `methods` entry that is not an upper-case method token.
    BadMethod(String),
    /// A scope that is not an RFC 6749 scope token.
    BadScope(String),
    /// `require` on a rule with `allow_anonymous`.
    AnonymousWithRequire,
    /// A rule that needs a token when no providers are configured.
    NoProviders,
    /// `delegated: false` with `actors` or `max_chain_depth`, or `delegated: true` with
    /// `max_chain_depth: 0`.
    DelegationContradiction,
    /// A `token_types` entry that is not a media type token.
    UnknownTokenType(String),
    /// A value copied into headers or logs, or compared with claims, that is empty, has
    /// control characters or surrounding spaces.
    NotClean(String),
    /// A rule path that no normalized request path can equal.
    PathNeverMatches(String),
    /// A rule's `require.actors` entry that `identity.actors` would refuse.
    ActorNotInAllowlist(String),
    /// An HMAC algorithm in `dpop.algorithms`: a proof key is public (`jwk`), so a shared
    /// secret cannot sign one (RFC 9449 §4.2).
    DpopSymmetricAlgorithm(Alg),
    /// An MCP setting (SPEC §9): the `mcp` block, `match.mcp`, `require.arguments`.
    Mcp(crate::core::mcp::McpConfigProblem),
}

/// Why a document is not a configuration at all, or not of the right shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxProblem {
    /// The plugin configuration bytes are not UTF-8.
    NotUtf8,
    /// The plugin configuration is a JSON string that is not itself a JSON string value
    /// (serde_json's message).
    StringNotJson(String),
    /// Not JSON; serde_json's message (with a line and column) when it has one.
    NotJson(Option<String>),
    /// A type or field error: serde's message (unknown field, wrong type, missing member).
    Shape(String),
}

impl fmt::Display for SyntaxProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxProblem::NotUtf8 => f.write_str("the plugin configuration is not utf-8"),
            SyntaxProblem::StringNotJson(e) => write!(f, "a json string that does not parse: {e}"),
            SyntaxProblem::NotJson(None) => f.write_str("not valid JSON"),
            SyntaxProblem::NotJson(Some(e)) => write!(f, "not valid JSON: {e}"),
            SyntaxProblem::Shape(msg) => f.write_str(msg),
        }
    }
}

/// A configuration refused at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// JSON path, e.g. `rules[1].require.scopes`; empty for the document itself.
    pub path: String,
    /// What is wrong there.
    pub problem: ConfigProblem,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        fmt::Display::fmt(&self.problem, f)
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigProblem::*;
        match self {
            Syntax(s) => write!(f, "{s}"),
            DuplicateMember(name) => write!(f, "member `{name}` appears twice in one object"),
            Empty => f.write_str("must not be empty"),
            NoneAlgorithm => f.write_str("`none` is never accepted"),
            UnsupportedAlgorithm(a) => write!(
                f,
                "algorithm `{a}` is not supported (ring 0.17 has no P-521 or secp256k1)"
            ),
            UnknownAlgorithm(a) => write!(f, "`{a}` is not a JWS signature algorithm"),
            HmacWithoutKey(a) => write!(
                f,
                "`{a}` needs an `oct` key with `\"alg\": \"{a}\"` in this provider's local_jwks"
            ),
            HmacNeedsExplicitAlgorithms => f.write_str(
                "a provider with only `oct` keys must list its HMAC algorithm in `algorithms`",
            ),
            JwksSourceCount => {
                f.write_str("a provider needs exactly one of `local_jwks` and `remote_jwks`")
            }
            FileUnavailable(why) => write!(f, "cannot read the jwks file: {why}"),
            NoFileAccess => f.write_str(
                "cannot read the jwks file: this host has no files; use `inline_string`",
            ),
            Jwks(e) => write!(f, "{e}"),
            OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range; allowed is {min} to {max}")
            }
            NotAUri(u) => write!(f, "`{u}` is not an http:// or https:// uri"),
            BadHeaderName(h) => write!(f, "`{h}` is not a valid header name"),
            BadTrustDomain(t) => write!(
                f,
                "`{t}` is not a trust domain name (lowercase letters, digits, `.`, `-`, `_`)"
            ),
            ActorOutsideTrustDomains(a) => {
                write!(
                    f,
                    "actor `{a}` is not a SPIFFE ID in `identity.trust_domains`"
                )
            }
            DuplicateIssuer { other } => {
                write!(f, "this issuer is already used by provider `{other}`")
            }
            DuplicateRuleId(id) => write!(f, "rule id `{id}` is used twice"),
            BadRuleId(id) => write!(
                f,
                "rule id `{id}` must be 1 to 128 of letters, digits, `.`, `_`, `:`, `-`"
            ),
            UnknownProvider(p) => write!(f, "no provider named `{p}`"),
            PathMatchCount => f.write_str("needs exactly one of `path_prefix` and `path_exact`"),
            PathNotAbsolute(p) => write!(f, "`{p}` must start with `/`"),
            BadMethod(m) => write!(f, "`{m}` is not an upper-case HTTP method token"),
            BadScope(s) => write!(f, "`{s}` is not a scope token (no spaces, not empty)"),
            AnonymousWithRequire => {
                f.write_str("`require` cannot be combined with `allow_anonymous`")
            }
            NoProviders => f.write_str("this rule needs a token but no providers are configured"),
            DelegationContradiction => f.write_str(
                "`actors` or `max_chain_depth` cannot be required with `delegated: false`",
            ),
            UnknownTokenType(t) => write!(f, "`{t}` is not a media type token"),
            NotClean(v) => write!(
                f,
                "`{}` must be non-empty, without control characters or surrounding spaces",
                v.escape_debug()
            ),
            PathNeverMatches(p) => write!(
                f,
                "`{p}` can never match a request: rule paths must be normalized (no `..`, `.`, `//`, `;`, `?`, `#`, needless percent-escapes)"
            ),
            ActorNotInAllowlist(a) => write!(f, "actor `{a}` is not in `identity.actors`"),
            DpopSymmetricAlgorithm(a) => write!(
                f,
                "`{a}` cannot sign a DPoP proof: the proof key is public (RFC 9449 §4.2)"
            ),
            Mcp(p) => write!(f, "{p}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The error for `problem` at `path`, with the user input both carry cut to
/// `limits::MAX_ERROR_INPUT` (a hostile configuration must not write megabytes into a log).
pub(crate) fn err(path: impl Into<String>, problem: ConfigProblem) -> ConfigError {
    ConfigError {
        path: clip_for_error(path.into()),
        problem: problem.clipped(),
    }
}

impl ConfigProblem {
    /// The same problem with the user input it carries cut to `limits::MAX_ERROR_INPUT`.
    fn clipped(self) -> ConfigProblem {
        use ConfigProblem::*;
        let c = clip_for_error;
        match self {
            Syntax(s) => Syntax(s.clipped()),
            DuplicateMember(n) => DuplicateMember(c(n)),
            UnsupportedAlgorithm(a) => UnsupportedAlgorithm(c(a)),
            UnknownAlgorithm(a) => UnknownAlgorithm(c(a)),
            FileUnavailable(w) => FileUnavailable(c(w)),
            Jwks(JwksError::DuplicateKid { index, kid }) => {
                Jwks(JwksError::DuplicateKid { index, kid: c(kid) })
            }
            NotAUri(u) => NotAUri(c(u)),
            BadHeaderName(h) => BadHeaderName(c(h)),
            BadTrustDomain(t) => BadTrustDomain(c(t)),
            ActorOutsideTrustDomains(a) => ActorOutsideTrustDomains(c(a)),
            DuplicateIssuer { other } => DuplicateIssuer { other: c(other) },
            DuplicateRuleId(i) => DuplicateRuleId(c(i)),
            BadRuleId(i) => BadRuleId(c(i)),
            UnknownProvider(p) => UnknownProvider(c(p)),
            PathNotAbsolute(p) => PathNotAbsolute(c(p)),
            BadMethod(m) => BadMethod(c(m)),
            BadScope(s) => BadScope(c(s)),
            UnknownTokenType(t) => UnknownTokenType(c(t)),
            NotClean(v) => NotClean(c(v)),
            PathNeverMatches(p) => PathNeverMatches(c(p)),
            ActorNotInAllowlist(a) => ActorNotInAllowlist(c(a)),
            Mcp(p) => Mcp(p.clipped()),
            other => other,
        }
    }
}

impl SyntaxProblem {
    /// Parser messages can repeat input (an unknown member's name); cut them like the rest.
    fn clipped(self) -> SyntaxProblem {
        match self {
            SyntaxProblem::StringNotJson(e) => SyntaxProblem::StringNotJson(clip_for_error(e)),
            SyntaxProblem::NotJson(e) => SyntaxProblem::NotJson(e.map(clip_for_error)),
            SyntaxProblem::Shape(m) => SyntaxProblem::Shape(clip_for_error(m)),
            SyntaxProblem::NotUtf8 => SyntaxProblem::NotUtf8,
        }
    }
}

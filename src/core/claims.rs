//! Verified claims → strictly typed standard claims and the delegation chain (SPEC §3).
//! Only ever called on claims whose signature verified. A claim of the wrong type is
//! `claim_invalid`, never "absent": `exp: "never"` must not mean "no expiry".

use crate::core::config::Provider;
use crate::core::limits::{MAX_IDENTITY_BYTES, MAX_SCOPES};
use crate::core::reasons::Denial;
use crate::core::time::UnixTime;
use crate::core::token::b64;
use crate::core::token::Object;
use crate::core::trace::{Recorder, Step};
use serde_json::{Map, Value};

/// One actor of the chain (an `act` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub iss: Option<String>,
    pub sub_profile: Option<String>,
}

/// RFC 8693 §4.4 `may_act`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MayAct {
    pub sub: String,
    pub iss: Option<String>,
}

/// RFC 8705 §3.1 / RFC 7800 `cnf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// `x5t#S256`: SHA-256 of the client certificate DER.
    CertificateThumbprint([u8; 32]),
    /// `jkt` (RFC 9449 §6.1): bound to a DPoP key. Checked by the DPoP step (`core::dpop`),
    /// which runs first and lets such a token through only with a valid proof.
    KeyThumbprint,
    /// Only methods actwarden cannot check at the gateway (`jkt`, `jwk`, …).
    Unsupported,
}

#[derive(Debug, Clone)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: f64,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
    pub auth_time: Option<f64>,
    pub jti: Option<String>,
    /// Token scopes in token order, without duplicates.
    pub scopes: Vec<String>,
    pub sub_profile: Option<String>,
    /// `[current, prior1, prior2, …]`; empty when not delegated.
    pub chain: Vec<Actor>,
    pub may_act: Option<MayAct>,
    pub cnf: Option<Confirmation>,
    /// Every claim as written, in token order (rules and tool-argument conditions read
    /// claims by name).
    pub raw: Object,
}

fn invalid(claim: &str, expected: &'static str) -> Denial {
    Denial::ClaimInvalid {
        claim: claim.to_owned(),
        expected,
    }
}

/// A JSON object a claim is looked up in: the claims themselves, or an object inside them
/// (`act`, `may_act`).
trait Lookup {
    fn get(&self, name: &str) -> Option<&Value>;
}

impl Lookup for Object {
    fn get(&self, name: &str) -> Option<&Value> {
        Object::get(self, name)
    }
}

impl Lookup for Map<String, Value> {
    fn get(&self, name: &str) -> Option<&Value> {
        Map::get(self, name)
    }
}

fn number(map: &impl Lookup, name: &str) -> Result<Option<f64>, Denial> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(name, "a number")),
        Some(_) => Err(invalid(name, "a number")),
    }
}

fn string<'a>(map: &'a impl Lookup, name: &str, at: &str) -> Result<Option<&'a str>, Denial> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(at, "a string")),
    }
}

/// Identities end up in headers and logs: bounded, non-empty, no control characters.
fn identity(value: &str, at: &str) -> Result<String, Denial> {
    if !is_clean_identity(value) {
        return Err(invalid(
            at,
            "a non-empty identity without control or invisible characters or surrounding spaces",
        ));
    }
    Ok(value.to_owned())
}

/// An identity shown in headers and logs must read as what it is: bounded, no control
/// characters, no invisible format characters (BOM, zero-width, bidi overrides), and no
/// leading or trailing whitespace (HTTP trims header values: `" spiffe://evil/…"` would
/// reach the upstream as a SPIFFE ID that trust-domain checks never saw).
pub(crate) fn is_clean_identity(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_IDENTITY_BYTES
        && value.trim() == value
        && !value.chars().any(|c| c.is_control() || is_invisible(c))
}

/// Unicode format characters (general category Cf) that render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn scope_token_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn scopes_from(value: &Value, name: &str) -> Result<Vec<String>, Denial> {
    let list: Vec<&str> = match value {
        Value::String(s) => s.split(' ').filter(|t| !t.is_empty()).collect(),
        Value::Array(items) if name == "scp" => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| invalid(name, "a string or an array of strings"))
            })
            .collect::<Result<_, _>>()?,
        _ if name == "scp" => return Err(invalid(name, "a string or an array of strings")),
        _ => return Err(invalid(name, "a space-delimited string")),
    };
    if list.len() > MAX_SCOPES {
        return Err(invalid(name, "at most 256 scopes"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        if s.is_empty() || !scope_token_ok(s) {
            return Err(invalid(name, "scope tokens (RFC 6749 §3.3)"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// Reads and type-checks the standard claims and the chain. `iss` was already read (as
/// untrusted) to pick the provider; here it is the verified value.
pub(crate) fn read(raw: Object) -> Result<Claims, Denial> {
    let iss = string(&raw, "iss", "iss")?
        .ok_or_else(|| invalid("iss", "a string"))?
        .to_owned();
    let exp = number(&raw, "exp")?.ok_or_else(|| invalid("exp", "a number"))?;
    let sub = identity(
        string(&raw, "sub", "sub")?.ok_or_else(|| invalid("sub", "a string"))?,
        "sub",
    )?;
    let nbf = number(&raw, "nbf")?;
    let iat = number(&raw, "iat")?;
    let auth_time = number(&raw, "auth_time")?;
    let jti = string(&raw, "jti", "jti")?.map(str::to_owned);
    let aud = match raw.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("aud", "a string or an array of strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("aud", "a string or an array of strings")),
    };
    let scope = raw
        .get("scope")
        .map(|v| scopes_from(v, "scope"))
        .transpose()?;
    let scp = raw.get("scp").map(|v| scopes_from(v, "scp")).transpose()?;
    let scopes = match (scope, scp) {
        (Some(a), Some(b)) => {
            // Two claims that disagree about what the token may do: refuse, don't pick.
            let same = a.len() == b.len() && a.iter().all(|s| b.contains(s));
            if !same {
                return Err(invalid(
                    "scp",
                    "the same scopes as `scope` when both are present",
                ));
            }
            a
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => Vec::new(),
    };
    let sub_profile = string(&raw, "sub_profile", "sub_profile")?
        .map(|p| identity(p, "sub_profile"))
        .transpose()?;
    let chain = read_chain(&raw)?;
    let may_act = match raw.get("may_act") {
        None => None,
        Some(Value::Object(m)) => Some(MayAct {
            sub: string(m, "sub", "may_act.sub")?
                .ok_or_else(|| invalid("may_act.sub", "a string"))?
                .to_owned(),
            iss: string(m, "iss", "may_act.iss")?.map(str::to_owned),
        }),
        Some(_) => return Err(invalid("may_act", "an object")),
    };
    let cnf = match raw.get("cnf") {
        None => None,
        Some(Value::Object(m)) => match m.get("x5t#S256") {
            Some(Value::String(t)) => Some(Confirmation::CertificateThumbprint(
                b64::decode(t)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| invalid("cnf.x5t#S256", "base64url of a SHA-256 digest"))?,
            )),
            Some(_) => return Err(invalid("cnf.x5t#S256", "a string")),
            None => match m.get("jkt") {
                Some(Value::String(_)) => Some(Confirmation::KeyThumbprint),
                Some(_) => return Err(invalid("cnf.jkt", "a string")),
                None => Some(Confirmation::Unsupported),
            },
        },
        Some(_) => return Err(invalid("cnf", "an object")),
    };
    Ok(Claims {
        iss,
        sub,
        aud,
        exp,
        nbf,
        iat,
        auth_time,
        jti,
        scopes,
        sub_profile,
        chain,
        may_act,
        cnf,
        raw,
    })
}

/// Walks nested `act` objects iteratively (no recursion: JSON depth is already bounded by
/// the parser, and this walk adds no stack).
fn read_chain(raw: &Object) -> Result<Vec<Actor>, Denial> {
    let mut chain = Vec::new();
    let mut next = raw.get("act");
    let mut at = String::from("act");
    while let Some(value) = next {
        let Value::Object(act) = value else {
            return Err(Denial::ClaimInvalid {
                claim: at,
                expected: "an object with a string `sub`",
            });
        };
        let sub = match act.get("sub") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(Denial::ClaimInvalid {
                    claim: format!("{at}.sub"),
                    expected: "a string",
                })
            }
        };
        let sub = identity(sub, &format!("{at}.sub"))?;
        if sub.contains(',') {
            // `x-agent-chain` is comma-separated; an actor may not be able to forge a hop.
            return Err(Denial::ClaimInvalid {
                claim: format!("{at}.sub"),
                expected: "an identity without commas",
            });
        }
        let iss = string(act, "iss", &format!("{at}.iss"))?.map(str::to_owned);
        let sub_profile = string(act, "sub_profile", &format!("{at}.sub_profile"))?
            .map(|p| identity(p, &format!("{at}.sub_profile")))
            .transpose()?;
        chain.push(Actor {
            sub,
            iss,
            sub_profile,
        });
        next = act.get("act");
        at.push_str(".act");
    }
    Ok(chain)
}

/// Whether a `sub_profile` (space-delimited, draft-mora-oauth-entity-profiles) names a
/// human profile.
/// Every listed profile must be human: `"ai_agent user"` is not a human subject.
pub(crate) fn is_human(sub_profile: Option<&str>, human_profiles: &[String]) -> bool {
    sub_profile.is_some_and(|p| {
        let mut profiles = p.split(' ').filter(|one| !one.is_empty()).peekable();
        profiles.peek().is_some() && profiles.all(|one| human_profiles.iter().any(|h| h == one))
    })
}

/// Step 4 (time): `exp`, `nbf`, `iat` against `now` with the provider's skew, then the
/// lifetime.
pub(crate) fn check_time(
    provider: &Provider,
    claims: &Claims,
    now: UnixTime,
    t: &mut Recorder,
) -> Result<(), Denial> {
    let skew = provider.clock_skew_s;
    t.check(Step::ClaimsExp, not_expired(claims, now, skew))?;
    t.check(Step::ClaimsNbfIat, already_valid(claims, now, skew))?;
    t.check(
        Step::ClaimsLifetime,
        lifetime_within(claims, now, provider.max_lifetime_s),
    )
}

/// RFC 7519 §4.1.4: not accepted on or after `exp`.
fn not_expired(claims: &Claims, now: UnixTime, skew: u64) -> Result<(), Denial> {
    if now.secs_f64() >= claims.exp + skew as f64 {
        return Err(Denial::Expired {
            now: now.secs(),
            exp: claims.exp,
            skew,
        });
    }
    Ok(())
}

/// `nbf` reached and `iat` not in the future, both with skew.
fn already_valid(claims: &Claims, now: UnixTime, skew: u64) -> Result<(), Denial> {
    let latest = now.secs_f64() + skew as f64;
    if let Some(nbf) = claims.nbf.filter(|nbf| latest < *nbf) {
        return Err(Denial::NotYetValid {
            now: now.secs(),
            nbf,
            skew,
        });
    }
    if let Some(iat) = claims.iat.filter(|iat| *iat > latest) {
        return Err(Denial::IssuedInFuture {
            now: now.secs(),
            iat,
            skew,
        });
    }
    Ok(())
}

/// `exp` − `iat` (or − now, without `iat`) within the provider's `max_lifetime_s`.
fn lifetime_within(claims: &Claims, now: UnixTime, max: u64) -> Result<(), Denial> {
    let lifetime = claims.exp - claims.iat.unwrap_or(now.secs_f64());
    if lifetime > max as f64 {
        return Err(Denial::LifetimeTooLong { lifetime, max });
    }
    Ok(())
}

//! `providers.<name>.dpop` → `DpopConfig` (SPEC §10, RFC 9449).

use super::raw::{RawDpop, RawDpopMode};
use super::{err, non_empty_list, range, ConfigError, ConfigProblem, FromHeader, JsonPath};
use crate::core::keys::alg::{Alg, AlgName};
use crate::core::limits::{MAX_DPOP_MAX_AGE_S, MAX_DPOP_REPLAY_WINDOW_ENTRIES};

/// Whether a provider's tokens may, or must, come with a DPoP proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// The `DPoP` scheme is not read for this provider. A token bound to a key
    /// (`cnf.jkt`) is still never accepted as a bearer token. The default.
    #[default]
    Off,
    /// `Authorization: DPoP` with a proof, or `Bearer` for tokens without `cnf.jkt`.
    Allowed,
    /// `Authorization: DPoP` with a proof only.
    Required,
}

impl DpopMode {
    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            DpopMode::Off => "off",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }
}

/// `dpop.algorithms` when absent: the two algorithms every DPoP client library offers,
/// both with small keys and fast verification.
pub(crate) const DEFAULT_DPOP_ALGORITHMS: [Alg; 2] = [Alg::ES256, Alg::EdDSA];
/// `dpop.max_age_s` when absent: RFC 9449 §11.1 suggests seconds to minutes.
pub(crate) const DEFAULT_DPOP_MAX_AGE_S: u64 = 60;
/// `dpop.replay_window_entries` when absent.
pub(crate) const DEFAULT_DPOP_REPLAY_WINDOW_ENTRIES: u64 = 65_536;
/// The `DPoP` authorization scheme (RFC 9449 §7.1), read like `Bearer ` (any case).
pub(crate) const DPOP_TOKEN_PREFIX: &str = "DPoP ";
/// The header a proof comes in (RFC 9449 §4.1).
pub(crate) const DPOP_PROOF_HEADER: &str = "dpop";

/// A provider's DPoP settings (`providers.<name>.dpop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    /// Defaults to `DpopMode::Off`.
    pub mode: DpopMode,
    /// The proof `alg` allowlist: asymmetric only, never `none`. Defaults to
    /// `["ES256", "EdDSA"]` (`DEFAULT_DPOP_ALGORITHMS`).
    pub algorithms: Vec<Alg>,
    /// How far a proof's `iat` may be from now (plus `clock_skew_s`), 1 to 3600 s.
    /// Defaults to `60` (`DEFAULT_DPOP_MAX_AGE_S`).
    pub max_age_s: u64,
    /// Live proofs the replay window holds for this provider; when full, new proofs are
    /// refused (`dpop_replayed`). 1 to 1 048 576. Defaults to `65536`.
    pub replay_window_entries: usize,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            mode: DpopMode::Off,
            algorithms: DEFAULT_DPOP_ALGORITHMS.to_vec(),
            max_age_s: DEFAULT_DPOP_MAX_AGE_S,
            replay_window_entries: DEFAULT_DPOP_REPLAY_WINDOW_ENTRIES as usize,
        }
    }
}

impl DpopConfig {
    /// `algs="…"` of a DPoP challenge (RFC 9449 §7.1): space-separated names.
    pub fn algs(&self) -> String {
        let names: Vec<&str> = self.algorithms.iter().map(|a| a.name()).collect();
        names.join(" ")
    }
}

impl super::Policy {
    /// The proof algorithms of every provider with DPoP on, in provider order, each once:
    /// the `algs` of a DPoP challenge, and RFC 9728's `dpop_signing_alg_values_supported`.
    /// Empty when no provider has DPoP on.
    pub fn dpop_signing_algs(&self) -> Vec<Alg> {
        let mut algs: Vec<Alg> = Vec::new();
        for p in self
            .providers
            .iter()
            .filter(|p| p.dpop.mode != DpopMode::Off)
        {
            for alg in &p.dpop.algorithms {
                if !algs.contains(alg) {
                    algs.push(*alg);
                }
            }
        }
        algs
    }
}

impl FromHeader {
    /// Whether this source is the `Authorization: DPoP` scheme.
    pub fn is_dpop(&self) -> bool {
        self.name == super::DEFAULT_TOKEN_HEADER
            && self
                .value_prefix
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(DPOP_TOKEN_PREFIX))
    }

    pub(crate) fn dpop() -> FromHeader {
        FromHeader {
            name: super::DEFAULT_TOKEN_HEADER.to_owned(),
            value_prefix: Some(DPOP_TOKEN_PREFIX.to_owned()),
        }
    }
}

pub(super) fn build(at: &JsonPath, raw: Option<RawDpop>) -> Result<DpopConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(DpopConfig::default());
    };
    let at = JsonPath(format!("{at}.dpop"));
    let mode = match raw.mode {
        None | Some(RawDpopMode::Off) => DpopMode::Off,
        Some(RawDpopMode::Allowed) => DpopMode::Allowed,
        Some(RawDpopMode::Required) => DpopMode::Required,
    };
    let algorithms = match raw.algorithms {
        None => DEFAULT_DPOP_ALGORITHMS.to_vec(),
        Some(names) => algorithms(&at, &names)?,
    };
    let max_age_s = range(
        &at.field("max_age_s"),
        raw.max_age_s.unwrap_or(DEFAULT_DPOP_MAX_AGE_S),
        1,
        MAX_DPOP_MAX_AGE_S,
    )?;
    let entries = range(
        &at.field("replay_window_entries"),
        raw.replay_window_entries
            .unwrap_or(DEFAULT_DPOP_REPLAY_WINDOW_ENTRIES),
        1,
        MAX_DPOP_REPLAY_WINDOW_ENTRIES as u64,
    )?;
    Ok(DpopConfig {
        mode,
        algorithms,
        max_age_s,
        replay_window_entries: usize::try_from(entries).unwrap_or(MAX_DPOP_REPLAY_WINDOW_ENTRIES),
    })
}

/// Asymmetric algorithms only: `none` never, HMAC never (the proof carries its key).
fn algorithms(at: &JsonPath, names: &[String]) -> Result<Vec<Alg>, ConfigError> {
    non_empty_list(&at.field("algorithms"), names)?;
    let mut algs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = at.item("algorithms", i);
        let alg = match Alg::classify(name) {
            AlgName::Supported(a) if a.is_hmac() => {
                return Err(err(path, ConfigProblem::DpopSymmetricAlgorithm(a)))
            }
            AlgName::Supported(a) => a,
            AlgName::None => return Err(err(path, ConfigProblem::NoneAlgorithm)),
            AlgName::Unsupported => {
                return Err(err(path, ConfigProblem::UnsupportedAlgorithm(name.clone())))
            }
            AlgName::Unknown => {
                return Err(err(path, ConfigProblem::UnknownAlgorithm(name.clone())))
            }
        };
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

#[cfg(test)]
mod tests {
    use crate::core::config::{DpopMode, Policy};

    fn with_dpop(dpop: &str) -> Result<Policy, String> {
        let text = format!(
            r#"{{"providers": {{"p": {{"issuer": "https://i", "audiences": ["a"],
                "remote_jwks": {{"http_uri": {{"uri": "http://j/", "cluster": "c"}}}},
                "dpop": {dpop}}}}}, "rules": []}}"#
        );
        Policy::from_json(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_the_dpop_source() {
        let p = with_dpop("{}").unwrap();
        let d = &p.providers[0].dpop;
        assert_eq!(d.mode, DpopMode::Off);
        assert_eq!(d.algs(), "ES256 EdDSA");
        assert_eq!((d.max_age_s, d.replay_window_entries), (60, 65_536));
        assert!(!p.token_sources.iter().any(|s| s.is_dpop()));
        let p = with_dpop(r#"{"mode": "required", "algorithms": ["PS256", "ES256", "PS256"]}"#)
            .unwrap();
        assert_eq!(p.providers[0].dpop.algs(), "PS256 ES256");
        assert!(p.token_sources.iter().any(|s| s.is_dpop()));
        assert!(p.providers[0].from_headers.iter().any(|h| h.is_dpop()));
    }

    #[test]
    fn refused_with_their_path() {
        for (dpop, expected) in [
            (
                r#"{"algorithms": ["HS256"]}"#,
                "providers.p.dpop.algorithms[0]: `HS256` cannot sign a DPoP proof",
            ),
            (
                r#"{"algorithms": ["ES256", "none"]}"#,
                "providers.p.dpop.algorithms[1]: `none` is never accepted",
            ),
            (
                r#"{"algorithms": []}"#,
                "providers.p.dpop.algorithms: must not be empty",
            ),
            (
                r#"{"algorithms": ["ES512"]}"#,
                "providers.p.dpop.algorithms[0]: algorithm `ES512`",
            ),
            (
                r#"{"max_age_s": 0}"#,
                "providers.p.dpop.max_age_s: 0 is out of range",
            ),
            (
                r#"{"replay_window_entries": 2000000}"#,
                "providers.p.dpop.replay_window_entries: 2000000 is out of range",
            ),
            (r#"{"mode": "sometimes"}"#, "providers.p.dpop.mode"),
            (r#"{"nonce": true}"#, "providers.p.dpop"),
            ("null", "providers.p.dpop"),
        ] {
            let err = with_dpop(dpop).unwrap_err();
            assert!(err.starts_with(expected), "{dpop}: {err}");
        }
    }
}

//! The life of one `remote_jwks` provider's keys (SPEC §8), without I/O: hosts say what
//! happened and when, this module says what to do next and which keys may be used.
//!
//! Three parts, because Envoy runs one VM per worker and workers share only bytes:
//! - `SharedJwks`: the fetch state all workers share (Envoy shared data, written with
//!   compare-and-swap): when the last good document was fetched, and the fetch in flight.
//!   Whoever wins the swap fetches. It is a few dozen bytes, so every request can afford
//!   to read it.
//! - `SharedDocument`: the last good document itself (up to 256 KiB), read only when the
//!   state says it is newer than a worker's copy.
//! - `LocalKeys`: one worker's parsed copy of the document.
//!
//! Times are Unix milliseconds from the host's clock.

use crate::core::config::RemoteJwks;
use crate::core::keys::{parse_jwks, JwksError, KeySet, KeySource};
use crate::core::limits::{JWKS_RETRY_MAX_S, KID_REFETCH_INTERVAL_S};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What every worker knows about fetching one JWKS. Serialised as JSON in shared data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharedJwks {
    /// When the last good document (`SharedDocument`) was fetched (0: never).
    pub fetched_at_ms: u64,
    /// When the latest fetch started (0: never), and whether it is still in flight.
    pub attempt_at_ms: u64,
    pub in_flight: bool,
    /// When the latest refetch for an unknown `kid` started (0: never).
    pub kid_refetch_at_ms: u64,
    /// Failed fetches since the last good one.
    pub failures: u32,
}

/// Why a fetched document was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum FetchProblem {
    /// No response within `timeout_ms`, or the cluster refused the call.
    NoResponse,
    /// An HTTP status other than 200.
    Status(u16),
    TooLarge {
        bytes: usize,
        max: usize,
    },
    NotUtf8,
    /// Not a JWKS actwarden accepts — including one without a usable key
    /// (`JwksError::NoKeys`), so that a broken publication does not wipe the last good keys.
    Jwks(JwksError),
}

impl std::fmt::Display for FetchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchProblem::NoResponse => write!(f, "no response (timeout or cluster error)"),
            FetchProblem::Status(s) => write!(f, "http status {s}"),
            FetchProblem::TooLarge { bytes, max } => {
                write!(f, "the document is {bytes} bytes; the limit is {max}")
            }
            FetchProblem::NotUtf8 => write!(f, "the document is not utf-8"),
            FetchProblem::Jwks(e) => write!(f, "not a valid jwks: {e}"),
        }
    }
}

/// Checks a fetched document: what `SharedJwks::fetch_succeeded` may store.
pub(crate) fn check_document(
    status: Option<u16>,
    body: &[u8],
) -> Result<(String, KeySet), FetchProblem> {
    match status {
        None => return Err(FetchProblem::NoResponse),
        Some(200) => {}
        Some(other) => return Err(FetchProblem::Status(other)),
    }
    let max = crate::core::limits::MAX_JWKS_BYTES;
    if body.len() > max {
        return Err(FetchProblem::TooLarge {
            bytes: body.len(),
            max,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| FetchProblem::NotUtf8)?;
    let set = parse_jwks(text, KeySource::Fetched).map_err(FetchProblem::Jwks)?;
    Ok((text.to_owned(), set))
}

/// What to do about a token whose `kid` the current keys do not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownKid {
    /// Start a refetch (this worker won the right to) and let the request wait for it.
    Refetch,
    /// A fetch is already in flight: wait for it until this time.
    Wait { until_ms: u64 },
    /// Refetched recently: decide now (`kid_unknown`).
    DecideNow,
}

fn secs_ms(s: u64) -> u64 {
    s.saturating_mul(1000)
}

impl SharedJwks {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<SharedJwks> {
        serde_json::from_slice(bytes).ok()
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A fetch started at `attempt_at_ms` that has not reported by its timeout (plus a
    /// second for the host to deliver the callback) is taken as lost: a worker that died
    /// mid-fetch must not block the others forever.
    fn fetch_in_flight(&self, config: &RemoteJwks, now_ms: u64) -> bool {
        self.in_flight
            && now_ms
                < self
                    .attempt_at_ms
                    .saturating_add(config.timeout_ms)
                    .saturating_add(1000)
    }

    /// Whether a scheduled fetch is due at `now_ms`: never fetched, or older than
    /// `cache_duration_s` — and no fetch in flight, and a failed one is retried only after
    /// `min(cache_duration_s, JWKS_RETRY_MAX_S)`.
    pub(crate) fn fetch_due(&self, config: &RemoteJwks, now_ms: u64) -> bool {
        if self.fetch_in_flight(config, now_ms) {
            return false;
        }
        let retry_ms = secs_ms(config.cache_duration_s.min(JWKS_RETRY_MAX_S));
        let retry_ok = self.attempt_at_ms == 0
            || self.failures == 0
            || now_ms >= self.attempt_at_ms.saturating_add(retry_ms);
        let stale = self.fetched_at_ms == 0
            || now_ms
                >= self
                    .fetched_at_ms
                    .saturating_add(secs_ms(config.cache_duration_s));
        stale && retry_ok
    }

    /// What a request with an unknown `kid` should do (SPEC §8: at most one refetch per
    /// provider per `KID_REFETCH_INTERVAL_S`, and that request waits for it).
    pub(crate) fn on_unknown_kid(&self, config: &RemoteJwks, now_ms: u64) -> UnknownKid {
        if self.fetch_in_flight(config, now_ms) {
            return UnknownKid::Wait {
                until_ms: self.attempt_at_ms.saturating_add(config.timeout_ms),
            };
        }
        let next = self
            .kid_refetch_at_ms
            .saturating_add(secs_ms(KID_REFETCH_INTERVAL_S));
        if self.kid_refetch_at_ms == 0 || now_ms >= next {
            UnknownKid::Refetch
        } else {
            UnknownKid::DecideNow
        }
    }

    /// The record once this worker starts a fetch (to be written with compare-and-swap;
    /// the worker fetches only if the swap succeeds).
    pub(crate) fn fetch_started(&self, now_ms: u64, for_unknown_kid: bool) -> SharedJwks {
        SharedJwks {
            attempt_at_ms: now_ms,
            in_flight: true,
            kid_refetch_at_ms: if for_unknown_kid {
                now_ms
            } else {
                self.kid_refetch_at_ms
            },
            ..self.clone()
        }
    }

    /// The state once a good document fetched at `now_ms` has been stored (store the
    /// `SharedDocument` first, then this: a worker that sees the new time finds the document).
    pub(crate) fn fetch_succeeded(&self, now_ms: u64) -> SharedJwks {
        SharedJwks {
            fetched_at_ms: now_ms,
            in_flight: false,
            failures: 0,
            ..self.clone()
        }
    }

    pub(crate) fn fetch_failed(&self) -> SharedJwks {
        SharedJwks {
            in_flight: false,
            failures: self.failures.saturating_add(1),
            ..self.clone()
        }
    }
}

/// The last good document, as shared between workers: `<fetched_at_ms>\n<jwks text>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedDocument {
    pub fetched_at_ms: u64,
    pub jwks: String,
}

impl SharedDocument {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        format!("{}\n{}", self.fetched_at_ms, self.jwks).into_bytes()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<SharedDocument> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (time, jwks) = text.split_once('\n')?;
        Some(SharedDocument {
            fetched_at_ms: time.parse().ok()?,
            jwks: jwks.to_owned(),
        })
    }
}

/// One worker's parsed copy of the shared document.
#[derive(Debug, Clone)]
pub(crate) struct LocalKeys {
    pub fetched_at_ms: u64,
    pub set: Arc<KeySet>,
}

impl LocalKeys {
    /// The keys if they may still be used at `now_ms`: until `cache_duration_s +
    /// max_stale_s` after their fetch (fresh, then stale but kept while refreshes fail).
    pub(crate) fn usable(&self, config: &RemoteJwks, now_ms: u64) -> Option<&KeySet> {
        let limit = self.fetched_at_ms.saturating_add(secs_ms(
            config.cache_duration_s.saturating_add(config.max_stale_s),
        ));
        (now_ms < limit).then_some(&*self.set)
    }

    /// The shared document parsed, when it is newer than `current`. A document in shared
    /// data was checked by the worker that stored it; one that no longer parses (a
    /// different build of the filter) is ignored.
    pub(crate) fn adopt(shared: &SharedDocument, current: Option<&LocalKeys>) -> Option<LocalKeys> {
        if current.is_some_and(|c| c.fetched_at_ms >= shared.fetched_at_ms) {
            return None;
        }
        let set = parse_jwks(&shared.jwks, KeySource::Fetched).ok()?;
        Some(LocalKeys {
            fetched_at_ms: shared.fetched_at_ms,
            set: Arc::new(set),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RemoteJwks {
        RemoteJwks {
            uri: "http://sts/jwks".into(),
            cluster: "sts".into(),
            timeout_ms: 2000,
            cache_duration_s: 300,
            max_stale_s: 600,
        }
    }

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    #[test]
    fn first_fetch_then_refresh_every_cache_duration() {
        let c = config();
        let s = SharedJwks::default();
        assert!(s.fetch_due(&c, 1));
        let s = s.fetch_started(1_000, false);
        // In flight: nobody else fetches until it reports (or its timeout passes).
        assert!(!s.fetch_due(&c, 1_500));
        let s = s.fetch_succeeded(1_200);
        assert!(!s.fetch_due(&c, 1_200 + 299_999));
        assert!(s.fetch_due(&c, 1_200 + 300_000));
    }

    #[test]
    fn a_lost_fetch_does_not_block_forever() {
        let c = config();
        let s = SharedJwks::default().fetch_started(1_000, false);
        assert!(!s.fetch_due(&c, 3_999));
        assert!(s.fetch_due(&c, 4_000));
    }

    #[test]
    fn failures_retry_after_a_bounded_wait_and_keep_the_last_good_keys() {
        let c = config();
        let s = SharedJwks::default()
            .fetch_started(1, false)
            .fetch_succeeded(1);
        let s = s.fetch_started(300_001, false).fetch_failed();
        assert_eq!(
            s.fetched_at_ms, 1,
            "a failure keeps the time of the last good fetch"
        );
        assert!(!s.fetch_due(&c, 310_000));
        assert!(s.fetch_due(&c, 310_001));
        let doc = SharedDocument {
            fetched_at_ms: 0,
            jwks: JWKS.into(),
        };
        let local = LocalKeys::adopt(&doc, None).unwrap();
        assert!(local.usable(&c, 899_999).is_some());
        // cache_duration_s + max_stale_s after the good fetch: unavailable.
        assert!(local.usable(&c, 900_000).is_none());
    }

    #[test]
    fn never_fetched_retries_quickly_with_a_short_cache_duration() {
        let c = RemoteJwks {
            cache_duration_s: 2,
            ..config()
        };
        let s = SharedJwks::default()
            .fetch_started(1_000, false)
            .fetch_failed();
        assert!(!s.fetch_due(&c, 2_999));
        assert!(s.fetch_due(&c, 3_000));
    }

    #[test]
    fn unknown_kid_refetches_once_per_interval() {
        let c = config();
        let s = SharedJwks::default()
            .fetch_started(1, false)
            .fetch_succeeded(1);
        assert_eq!(s.on_unknown_kid(&c, 10_000), UnknownKid::Refetch);
        let s = s.fetch_started(10_000, true);
        assert_eq!(
            s.on_unknown_kid(&c, 10_500),
            UnknownKid::Wait { until_ms: 12_000 }
        );
        let s = s.fetch_succeeded(10_700);
        assert_eq!(s.on_unknown_kid(&c, 39_999), UnknownKid::DecideNow);
        assert_eq!(s.on_unknown_kid(&c, 40_000), UnknownKid::Refetch);
    }

    #[test]
    fn documents_are_checked_before_they_are_shared() {
        assert_eq!(
            check_document(None, b"").unwrap_err(),
            FetchProblem::NoResponse
        );
        assert_eq!(
            check_document(Some(503), JWKS.as_bytes()).unwrap_err(),
            FetchProblem::Status(503)
        );
        assert!(matches!(
            check_document(Some(200), b"<html>").unwrap_err(),
            FetchProblem::Jwks(_)
        ));
        assert_eq!(
            check_document(Some(200), br#"{"keys":[{"kty":"XYZ"}]}"#).unwrap_err(),
            FetchProblem::Jwks(JwksError::NoKeys)
        );
        assert_eq!(
            check_document(Some(200), &[0xff, 0xfe]).unwrap_err(),
            FetchProblem::NotUtf8
        );
        let big = vec![b' '; crate::core::limits::MAX_JWKS_BYTES + 1];
        assert!(matches!(
            check_document(Some(200), &big).unwrap_err(),
            FetchProblem::TooLarge { .. }
        ));
        let (text, set) = check_document(Some(200), JWKS.as_bytes()).unwrap();
        assert_eq!(text, JWKS);
        assert_eq!(set.keys.len(), 1);
    }

    #[test]
    fn adopt_only_newer_documents() {
        let doc = SharedDocument {
            fetched_at_ms: 5,
            jwks: JWKS.into(),
        };
        let local = LocalKeys::adopt(&doc, None).unwrap();
        assert_eq!(local.fetched_at_ms, 5);
        assert!(LocalKeys::adopt(&doc, Some(&local)).is_none());
        let newer = SharedDocument {
            fetched_at_ms: 6,
            ..doc.clone()
        };
        assert_eq!(
            LocalKeys::adopt(&newer, Some(&local))
                .unwrap()
                .fetched_at_ms,
            6
        );
        assert_eq!(SharedDocument::from_bytes(&newer.to_bytes()), Some(newer));
        assert!(SharedDocument::from_bytes(b"no newline").is_none());
        assert!(SharedDocument::from_bytes(b"x\n{}").is_none());
        let state = SharedJwks::default().fetch_started(3, true);
        assert!(SharedJwks::from_bytes(b"garbage").is_none());
        assert_eq!(SharedJwks::from_bytes(&state.to_bytes()), Some(state));
    }
}

//! The verified-token cache of SPEC §8: what verifying a token learned that does not depend
//! on the request or the time — its parsed header and claims, which key's signature
//! verified (or failed), and its `token_id` — so that a token seen again costs a hash and
//! a lookup, not a signature verification.
//!
//! Keyed by the token text itself in a std `HashMap`: SipHash with a per-VM random key
//! (so an attacker cannot aim tokens at one bucket), and equality on the whole text, so a
//! hash collision can never lend one token another's entry. This replaced a SHA-256 of
//! the token as the key: a keyed SipHash of a ~1 KB token costs a fraction of a SHA-256 in
//! the wasm VM, and the SHA-256 (for `token_id`) is now computed once, when an entry is
//! filled, and kept in it.
//!
//! Only parsing and the signature are cached. Every request still runs the issuer, rule,
//! header, `typ` and `alg` checks, and everything after the signature (claims, time,
//! chain, revocation, binding, requirements) — those depend on the request and on `now`.
//!
//! An entry never outlives its token (`exp` plus the provider's clock skew) nor the key
//! that verified it: a hit is used only while the provider's *current* key set still holds
//! a key with the same fingerprint that fits the algorithm, so a key that disappears from
//! a JWKS stops verifying at once. Failed signatures are remembered separately, keyed the
//! same way, so replaying a forged token costs no second verification. So are tokens whose
//! signature verified but that had already expired when first seen (they never enter the
//! verified map): their only decision is `token_expired`, which the time check gives on
//! every request, and without this each replay of an expired token would cost a signature
//! verification.
//!
//! A cache belongs to one `Policy` (entries name providers by index): hosts create it with
//! the policy and drop it with the policy. It uses interior mutability for a single-threaded
//! host (one proxy-wasm VM); it is not shared across threads.

use crate::core::claims::Claims;
use crate::core::keys::alg::Alg;
use crate::core::limits::{MAX_CACHED_TOKENS, MAX_CACHED_TOKEN_FAILURES, TOKEN_FAILURE_TTL_S};
use crate::core::time::UnixTime;
use crate::core::token::Header;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// SHA-256 of the token text (the shared table across worker VMs, `token_id`).
pub(crate) type TokenHash = [u8; 32];
/// The token text, as a key (shared by the map and the eviction order).
type TokenKey = Rc<str>;
/// `jwk::VerificationKey::fingerprint`.
pub(crate) type KeyFingerprint = [u8; 32];

/// A token whose signature verified, with its claims read (`claims::read`: they depend on
/// the token only, so a hit skips parsing and reading too).
#[derive(Debug)]
pub struct Verified {
    pub header: Header,
    pub claims: Claims,
    /// `Policy::providers` index of the provider whose key verified it.
    pub provider: usize,
    pub alg: Alg,
    pub key: KeyFingerprint,
    /// Not usable at or after this time: the token's `exp` plus its provider's skew.
    pub expires: UnixTime,
    /// The audit `token_id` (SPEC §6), computed once when the entry was filled.
    pub token_id: String,
    /// SHA-256 of the token text, computed once when the entry was filled: a DPoP proof's
    /// `ath` (SPEC §10) is its base64url.
    pub sha256: TokenHash,
}

/// A token whose signature did not verify under these keys.
#[derive(Debug, Clone)]
pub struct Failed {
    pub provider: usize,
    pub alg: Alg,
    /// Every key the signature was tried against; the failure holds while the provider's
    /// candidate keys are among these.
    pub tried: Vec<KeyFingerprint>,
    pub expires: UnixTime,
    pub token_id: String,
}

/// Hit and miss counts since creation (SPEC §8 `actwarden.cache.hit` / `.miss`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// Bounded first-in-first-out map: the oldest entry leaves when a new one would overflow.
/// FIFO rather than LRU: a token's lifetime is bounded anyway, and FIFO cannot be kept
/// alive by an attacker replaying one token.
#[derive(Debug)]
struct Bounded<V> {
    capacity: usize,
    map: HashMap<TokenKey, V>,
    order: VecDeque<TokenKey>,
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: &str, value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some(old) = self.map.get_mut(key) {
            *old = value;
            return;
        }
        let key: TokenKey = Rc::from(key);
        self.order.push_back(Rc::clone(&key));
        self.map.insert(key, value);
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if self.map.remove(key).is_some() {
            self.order.retain(|k| &**k != key);
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Cached {
    Verified(Rc<Verified>),
    Failed(Failed),
}

impl Cached {
    /// The audit `token_id` kept with the entry.
    pub fn token_id(&self) -> &str {
        match self {
            Cached::Verified(v) => &v.token_id,
            Cached::Failed(f) => &f.token_id,
        }
    }
}

/// What the failure side remembers (bounded and timed out together).
#[derive(Debug)]
enum Negative {
    Signature(Failed),
    /// Verified, but already past `exp` + skew when first seen; remembered until `until`.
    Expired {
        token: Rc<Verified>,
        until: UnixTime,
    },
}

impl Negative {
    fn until(&self) -> UnixTime {
        match self {
            Negative::Signature(f) => f.expires,
            Negative::Expired { until, .. } => *until,
        }
    }
}

#[derive(Debug)]
struct Inner {
    verified: Bounded<Rc<Verified>>,
    failed: Bounded<Negative>,
    stats: CacheStats,
}

/// The cache. `TokenCache::default()` has the sizes of `limits`.
#[derive(Debug)]
pub struct TokenCache {
    inner: RefCell<Inner>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::with_capacity(MAX_CACHED_TOKENS, MAX_CACHED_TOKEN_FAILURES)
    }
}

impl TokenCache {
    pub fn with_capacity(verified: usize, failed: usize) -> Self {
        TokenCache {
            inner: RefCell::new(Inner {
                verified: Bounded::new(verified),
                failed: Bounded::new(failed),
                stats: CacheStats::default(),
            }),
        }
    }

    /// The entry for `token`, if there is one still valid at `now`. Counts a hit or a miss.
    pub fn get(&self, token: &str, now: UnixTime) -> Option<Cached> {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return None;
        };
        let found = if let Some(v) = inner.verified.map.get(token) {
            if now < v.expires {
                Some(Cached::Verified(Rc::clone(v)))
            } else {
                inner.verified.remove(token);
                None
            }
        } else if let Some(f) = inner.failed.map.get(token) {
            if now < f.until() {
                Some(match f {
                    Negative::Signature(f) => Cached::Failed(f.clone()),
                    Negative::Expired { token, .. } => Cached::Verified(Rc::clone(token)),
                })
            } else {
                inner.failed.remove(token);
                None
            }
        } else {
            None
        };
        if found.is_some() {
            inner.stats.hits += 1;
        } else {
            inner.stats.misses += 1;
        }
        found
    }

    /// Keeps a verified token: in the verified map while `now` is before its `expires`,
    /// otherwise (already expired) with the failures, for `TOKEN_FAILURE_TTL_S`.
    pub fn put_verified(&self, token: &str, entry: Rc<Verified>, now: UnixTime) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            if now < entry.expires {
                inner.failed.remove(token);
                inner.verified.insert(token, entry);
            } else {
                let until = TokenCache::failure_expiry(now);
                inner.failed.insert(
                    token,
                    Negative::Expired {
                        token: entry,
                        until,
                    },
                );
            }
        }
    }

    pub fn put_failed(&self, token: &str, entry: Failed) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.failed.insert(token, Negative::Signature(entry));
        }
    }

    /// Forgets an entry whose key is gone (the next request verifies afresh).
    pub fn forget(&self, token: &str) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.verified.remove(token);
            inner.failed.remove(token);
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.inner.try_borrow().map(|i| i.stats).unwrap_or_default()
    }

    /// Entries held now (verified, failed).
    pub fn len(&self) -> (usize, usize) {
        self.inner
            .try_borrow()
            .map(|i| (i.verified.map.len(), i.failed.map.len()))
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// When a failure stops being remembered.
    pub fn failure_expiry(now: UnixTime) -> UnixTime {
        UnixTime::from_secs(now.secs().saturating_add(TOKEN_FAILURE_TTL_S))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(expires: u64) -> Rc<Verified> {
        let raw = serde_json::json!({"iss": "https://i", "sub": "s", "exp": expires});
        let serde_json::Value::Object(raw) = raw else {
            unreachable!()
        };
        Rc::new(Verified {
            header: Header {
                alg: "ES256".into(),
                typ: None,
                kid: None,
            },
            claims: crate::core::claims::read(raw).unwrap(),
            provider: 0,
            alg: Alg::ES256,
            key: [7; 32],
            expires: UnixTime::from_secs(expires),
            token_id: "id".into(),
            sha256: [0; 32],
        })
    }

    #[test]
    fn entries_expire_and_count_hits_and_misses() {
        let cache = TokenCache::default();
        cache.put_verified("t1", verified(100), UnixTime::from_secs(1));
        assert!(matches!(
            cache.get("t1", UnixTime::from_secs(99)),
            Some(Cached::Verified(_))
        ));
        assert!(cache.get("t1", UnixTime::from_secs(100)).is_none());
        // Expired entries are dropped, not kept around.
        assert_eq!(cache.len(), (0, 0));
        assert!(cache.get("t2", UnixTime::from_secs(1)).is_none());
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2 });
    }

    #[test]
    fn bounded_first_in_first_out() {
        let cache = TokenCache::with_capacity(2, 1);
        for i in 0..5u8 {
            cache.put_verified(&format!("t{i}"), verified(1000), UnixTime::from_secs(1));
        }
        assert_eq!(cache.len(), (2, 0));
        assert!(cache.get("t2", UnixTime::from_secs(1)).is_none());
        assert!(cache.get("t4", UnixTime::from_secs(1)).is_some());
        let failed = Failed {
            provider: 0,
            alg: Alg::ES256,
            tried: vec![[7; 32]],
            expires: UnixTime::from_secs(1000),
            token_id: "id".into(),
        };
        cache.put_failed("t8", failed.clone());
        cache.put_failed("t9", failed);
        assert_eq!(cache.len(), (2, 1));
        assert!(matches!(
            cache.get("t9", UnixTime::from_secs(1)),
            Some(Cached::Failed(_))
        ));
    }

    #[test]
    fn a_verified_token_replaces_a_remembered_failure() {
        let cache = TokenCache::default();
        let failed = Failed {
            provider: 0,
            alg: Alg::ES256,
            tried: vec![],
            expires: UnixTime::from_secs(1000),
            token_id: "id".into(),
        };
        cache.put_failed("t1", failed);
        cache.put_verified("t1", verified(1000), UnixTime::from_secs(1));
        assert!(matches!(
            cache.get("t1", UnixTime::from_secs(1)),
            Some(Cached::Verified(_))
        ));
        assert_eq!(cache.len(), (1, 0));
        cache.forget("t1");
        assert!(cache.is_empty());
    }

    #[test]
    fn an_expired_token_is_remembered_with_the_failures() {
        let cache = TokenCache::with_capacity(4, 4);
        // Already expired at insertion: kept on the failure side, for the failure TTL.
        cache.put_verified("t3", verified(100), UnixTime::from_secs(500));
        assert_eq!(cache.len(), (0, 1));
        let hit = cache.get("t3", UnixTime::from_secs(501));
        assert!(matches!(hit, Some(Cached::Verified(ref v)) if v.claims.exp == 100.0));
        let gone = UnixTime::from_secs(500 + TOKEN_FAILURE_TTL_S);
        assert!(cache.get("t3", gone).is_none());
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let cache = TokenCache::with_capacity(0, 0);
        cache.put_verified("t1", verified(1000), UnixTime::from_secs(1));
        assert!(cache.is_empty());
    }

    #[test]
    fn tokens_are_told_apart_by_their_whole_text() {
        let cache = TokenCache::default();
        let long = "a".repeat(2000);
        let other = format!("{}b", &long[..1999]);
        cache.put_verified(&long, verified(1000), UnixTime::from_secs(1));
        assert!(cache.get(&long, UnixTime::from_secs(1)).is_some());
        // Same length, same prefix, one byte apart: a miss, never the other's entry.
        assert!(cache.get(&other, UnixTime::from_secs(1)).is_none());
        assert!(cache.get(&long[..1999], UnixTime::from_secs(1)).is_none());
    }

    #[test]
    fn an_entry_keeps_its_token_id() {
        let cache = TokenCache::default();
        cache.put_verified("t", verified(1000), UnixTime::from_secs(1));
        let hit = cache.get("t", UnixTime::from_secs(1)).unwrap();
        assert_eq!(hit.token_id(), "id");
    }

    #[test]
    fn eviction_forgets_the_oldest_and_a_refill_keeps_the_order() {
        let cache = TokenCache::with_capacity(2, 0);
        cache.put_verified("a", verified(1000), UnixTime::from_secs(1));
        cache.put_verified("b", verified(1000), UnixTime::from_secs(1));
        // Refilling "a" does not make it younger (FIFO, not LRU).
        cache.put_verified("a", verified(1000), UnixTime::from_secs(1));
        cache.put_verified("c", verified(1000), UnixTime::from_secs(1));
        assert!(cache.get("a", UnixTime::from_secs(1)).is_none());
        assert!(cache.get("b", UnixTime::from_secs(1)).is_some());
        assert!(cache.get("c", UnixTime::from_secs(1)).is_some());
    }
}

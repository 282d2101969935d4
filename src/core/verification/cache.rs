//! The verified-token cache of SPEC §8: what verifying a token learned that does not depend
//! on the request or the time — its parsed header and claims, which key's signature
//! verified (or failed), and its `token_id` — so that a token seen again costs a hash and
//! a lookup, not a signature verification.
//!
//! Keyed by the token text: a fast hash seeded at random per cache (foldhash, so an
//! attacker cannot aim tokens at one slot without knowing the seed), computed once per
//! lookup or fill, and equality on the whole text, so a hash collision can never lend one
//! token another's entry. The hash needs no cryptographic strength: the worst a collision
//! can do is make the newer token take the older one's slot, which is no more than
//! sending new tokens already does to a first-in-first-out cache. foldhash replaced a
//! keyed SipHash-1-3, which was a third of a cached decision in the wasm VM (a ~1 KB
//! token); that had replaced a SHA-256 of the token. The SHA-256 (for `token_id`) is
//! computed once, when an entry is filled, and kept in it.
//!
//! Parsing and the signature are cached, and with them what depends on nothing but the
//! token and the policy this cache belongs to: the chain's outcome (step 5), the effective
//! scopes and the identity header values (`Standing`, filled by the entry's first
//! decision). Every request still runs the issuer, rule, header, `typ` and `alg` checks,
//! audience, time, revocation, binding and the rule's requirements (SPEC §8) — those
//! depend on the request, on `now`, or on SPEC §8's word.
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
use crate::core::dpop::ProofHeader;
use crate::core::keys::alg::Alg;
use crate::core::limits::{
    MAX_CACHED_PROOF_HEADERS, MAX_CACHED_TOKENS, MAX_CACHED_TOKEN_FAILURES, TOKEN_FAILURE_TTL_S,
};
use crate::core::standing::Standing;
use crate::core::time::UnixTime;
use crate::core::token::Header;
use foldhash::fast::FoldHasher;
use foldhash::SharedSeed;
use std::cell::{OnceCell, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::rc::Rc;

/// SHA-256 of the token text (the shared table across worker VMs, `token_id`).
pub(crate) type TokenHash = [u8; 32];
/// The token text an entry belongs to.
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
    /// The token's standing under the cache's policy, worked out by the first decision
    /// that reaches step 5 with this entry.
    pub(crate) standing: OnceCell<Rc<Standing>>,
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
///
/// Keyed by the token's seeded hash (`Slot`), computed once per cache call by
/// `TokenCache` and shared by both maps: a miss followed by a fill used to hash the ~1 KB
/// token text six times, which the wasm VM measured at a fifth of a cold request's own
/// work. The entry keeps the whole text and every lookup compares it, so two tokens whose
/// hashes collide never share an entry: the newer one takes the slot.
#[derive(Debug)]
struct Bounded<V> {
    capacity: usize,
    map: HashMap<u64, (TokenKey, V), BuildHasherDefault<Prehashed>>,
    order: VecDeque<u64>,
}

/// A token's text with its keyed hash (`TokenCache::slot`).
#[derive(Clone, Copy)]
struct Slot<'t> {
    hash: u64,
    text: &'t str,
}

/// The map's hasher: the key already is a seeded hash of the text, so it is passed through.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a `u64`); folded in for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            capacity,
            map: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, slot: Slot<'_>) -> Option<&V> {
        self.map
            .get(&slot.hash)
            .filter(|(text, _)| same_text(text, slot.text))
            .map(|(_, value)| value)
    }

    fn insert(&mut self, slot: Slot<'_>, value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some((text, old)) = self.map.get_mut(&slot.hash) {
            if !same_text(text, slot.text) {
                // Another token with the same hash: the newer one takes the slot.
                *text = Rc::from(slot.text);
            }
            *old = value;
            return;
        }
        self.order.push_back(slot.hash);
        self.map.insert(slot.hash, (Rc::from(slot.text), value));
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, slot: Slot<'_>) {
        if self.get(slot).is_some() {
            self.map.remove(&slot.hash);
            self.order.retain(|h| *h != slot.hash);
        }
    }
}

/// Whether two token texts are equal, compared eight bytes at a time: `==` on slices calls
/// the C library's `memcmp`, which in the wasm VM (wasi-libc) compares one byte per loop,
/// and every cached request compares its whole token (~1 KB) with the entry's.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (words_a, words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest = words_a.remainder() == words_b.remainder();
    rest && words_a.zip(words_b).all(|(x, y)| word(x) == word(y))
}

fn word(eight: &[u8]) -> u64 {
    u64::from_ne_bytes(eight.try_into().unwrap_or_default())
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Cached {
    Verified(Rc<Verified>),
    Failed(Failed),
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
    /// DPoP proof headers that passed their checks, by their text (SPEC §10: an agent
    /// sends the same header, key and all, with every proof). Not counted in `stats`.
    proof_headers: Bounded<Rc<ProofHeader>>,
    stats: CacheStats,
}

/// The cache. `TokenCache::default()` has the sizes of `limits`.
#[derive(Debug)]
pub struct TokenCache {
    inner: RefCell<Inner>,
    /// The slot hash's seeds, random per cache (per VM): an attacker cannot aim tokens at
    /// one slot.
    seed: SlotSeed,
}

/// foldhash's two seeds, drawn from std's `RandomState` (the host's entropy: WASI
/// `random_get` in Envoy) rather than foldhash's own, which without `std` is only
/// addresses.
struct SlotSeed {
    per_cache: u64,
    shared: SharedSeed,
}

impl SlotSeed {
    fn random() -> Self {
        let entropy = RandomState::new();
        SlotSeed {
            per_cache: entropy.hash_one(0u8),
            shared: SharedSeed::from_u64(entropy.hash_one(1u8)),
        }
    }
}

impl std::fmt::Debug for SlotSeed {
    /// The seed stays secret, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotSeed(..)")
    }
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
                proof_headers: Bounded::new(MAX_CACHED_PROOF_HEADERS.min(verified)),
                stats: CacheStats::default(),
            }),
            seed: SlotSeed::random(),
        }
    }

    fn slot<'t>(&self, token: &'t str) -> Slot<'t> {
        let mut hasher = FoldHasher::with_seed(self.seed.per_cache, &self.seed.shared);
        hasher.write(token.as_bytes());
        Slot {
            hash: hasher.finish(),
            text: token,
        }
    }

    /// The entry for `token`, if there is one still valid at `now`. Counts a hit or a miss.
    pub fn get(&self, token: &str, now: UnixTime) -> Option<Cached> {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return None;
        };
        let slot = self.slot(token);
        let found = if let Some(v) = inner.verified.get(slot) {
            if now < v.expires {
                Some(Cached::Verified(Rc::clone(v)))
            } else {
                inner.verified.remove(slot);
                None
            }
        } else if let Some(f) = inner.failed.get(slot) {
            if now < f.until() {
                Some(match f {
                    Negative::Signature(f) => Cached::Failed(f.clone()),
                    Negative::Expired { token, .. } => Cached::Verified(Rc::clone(token)),
                })
            } else {
                inner.failed.remove(slot);
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
            let slot = self.slot(token);
            if now < entry.expires {
                inner.failed.remove(slot);
                inner.verified.insert(slot, entry);
            } else {
                let until = TokenCache::failure_expiry(now);
                inner.failed.insert(
                    slot,
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
            let slot = self.slot(token);
            inner.failed.insert(slot, Negative::Signature(entry));
        }
    }

    /// Forgets an entry whose key is gone (the next request verifies afresh).
    pub fn forget(&self, token: &str) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            let slot = self.slot(token);
            inner.verified.remove(slot);
            inner.failed.remove(slot);
        }
    }

    /// A DPoP proof header checked before (`dpop::proof::verify_remembering`).
    pub(crate) fn proof_header(&self, text: &str) -> Option<Rc<ProofHeader>> {
        let inner = self.inner.try_borrow().ok()?;
        inner.proof_headers.get(self.slot(text)).cloned()
    }

    pub(crate) fn put_proof_header(&self, text: &str, header: Rc<ProofHeader>) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            let slot = self.slot(text);
            inner.proof_headers.insert(slot, header);
        }
    }

    #[cfg(test)]
    pub(crate) fn inner_proof_headers(&self) -> usize {
        self.inner.borrow().proof_headers.map.len()
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

    #[test]
    fn same_text_is_equality_at_every_length_and_position() {
        for len in 0..40 {
            let a: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(same_text(&a, &a.clone()), "len {len}");
            assert!(!same_text(&a, &format!("{a}x")), "len {len} vs longer");
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'.';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(&a, &b), "len {len}, differs at {at}");
            }
        }
    }

    #[test]
    fn slot_hash_is_seeded_per_cache() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";
        let (one, two) = (TokenCache::default(), TokenCache::default());
        assert_eq!(one.slot(token).hash, one.slot(token).hash);
        assert_ne!(one.slot(token).hash, two.slot(token).hash);
        assert_eq!(format!("{:?}", one.seed), "SlotSeed(..)");
    }

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
            claims: crate::core::claims::read(raw.into()).unwrap(),
            provider: 0,
            alg: Alg::ES256,
            key: [7; 32],
            expires: UnixTime::from_secs(expires),
            token_id: "id".into(),
            sha256: [0; 32],
            standing: OnceCell::new(),
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
    fn a_hash_collision_never_lends_an_entry_and_the_newer_token_takes_the_slot() {
        let mut map = Bounded::new(4);
        let a = Slot {
            hash: 7,
            text: "token-a",
        };
        let b = Slot {
            hash: 7,
            text: "token-b",
        };
        map.insert(a, 1);
        assert_eq!(map.get(a), Some(&1));
        assert_eq!(map.get(b), None, "same hash, other text");
        map.remove(b);
        assert_eq!(
            map.get(a),
            Some(&1),
            "removing the other token leaves this one"
        );
        map.insert(b, 2);
        assert_eq!(map.get(b), Some(&2));
        assert_eq!(map.get(a), None);
        assert_eq!((map.map.len(), map.order.len()), (1, 1));
    }

    #[test]
    fn an_entry_keeps_its_token_id() {
        let cache = TokenCache::default();
        cache.put_verified("t", verified(1000), UnixTime::from_secs(1));
        let hit = cache.get("t", UnixTime::from_secs(1)).unwrap();
        assert!(matches!(hit, Cached::Verified(v) if v.token_id == "id"));
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

//! The DPoP replay window (SPEC §10): which proof `jti`s each provider accepted recently.
//! The core only asks a window (`ReplayWindow`, lent through `Context`); hosts own it:
//! `MemoryWindow` for the CLI, policy test files and the playground's session, and the
//! Envoy host's shared-data window, whose compact shard encoding is here (pure, so it is
//! tested without a host).
//!
//! Entries are keyed by a 16-byte digest of provider and `jti` (SHA-256, truncated): a
//! fixed 24 bytes per entry whatever the `jti`, and a false "replayed" needs a 2^-128
//! collision per pair.

use crate::core::limits::{DPOP_REPLAY_SHARD_ENTRIES, MAX_DPOP_REPLAY_SHARDS};
use crate::core::verification::crypto::sha256;
use std::collections::HashMap;
use std::sync::Mutex;

/// One proof to record.
#[derive(Debug, Clone, Copy)]
pub struct ReplayEntry<'a> {
    pub provider: &'a str,
    pub jti: &'a str,
    /// Now, in Unix seconds.
    pub now: u64,
    /// Until when (Unix seconds) the proof could still be accepted, so until when a
    /// second use must be caught.
    pub expires: u64,
    /// The provider's `dpop.replay_window_entries`.
    pub capacity: usize,
}

/// What the window says about a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Not seen; now recorded.
    Fresh,
    /// Seen within its lifetime: a replay.
    Replayed,
    /// The window holds `capacity` live entries (or could not be updated): refused, since
    /// a proof that cannot be remembered could be replayed (fail closed).
    Full,
}

/// A replay window a host lends the core. `admit` checks and records in one step, so two
/// requests with the same proof cannot both be fresh.
pub trait ReplayWindow {
    fn admit(&self, entry: ReplayEntry<'_>) -> Admission;
}

/// The digest an entry is kept under.
pub(crate) type EntryKey = [u8; 16];

pub(crate) fn entry_key(provider: &str, jti: &str) -> EntryKey {
    // Length-prefixed, so (`a`, `bc`) and (`ab`, `c`) are different inputs.
    let mut input = Vec::with_capacity(8 + provider.len() + jti.len());
    input.extend_from_slice(&(provider.len() as u64).to_le_bytes());
    input.extend_from_slice(provider.as_bytes());
    input.extend_from_slice(jti.as_bytes());
    let digest = sha256(&input);
    let mut key = [0u8; 16];
    key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    key
}

// ---------------------------------------------------------------------------------------
// In memory: one process, one window per provider.

/// A window in memory (CLI, `actwarden test` — one per file —, the playground's session).
#[derive(Debug, Default)]
pub struct MemoryWindow {
    providers: Mutex<HashMap<String, HashMap<EntryKey, u64>>>,
}

impl MemoryWindow {
    pub fn new() -> MemoryWindow {
        MemoryWindow::default()
    }

    /// Live entries of `provider` at `now`.
    pub fn live(&self, provider: &str, now: u64) -> usize {
        self.providers.lock().map_or(0, |p| {
            p.get(provider)
                .map_or(0, |w| w.values().filter(|e| **e > now).count())
        })
    }

    /// Forgets every proof (the playground's "new session").
    pub fn clear(&self) {
        if let Ok(mut p) = self.providers.lock() {
            p.clear();
        }
    }
}

impl ReplayWindow for MemoryWindow {
    fn admit(&self, e: ReplayEntry<'_>) -> Admission {
        let Ok(mut providers) = self.providers.lock() else {
            return Admission::Full;
        };
        let window = providers.entry(e.provider.to_owned()).or_default();
        let key = entry_key(e.provider, e.jti);
        if window.get(&key).is_some_and(|exp| *exp > e.now) {
            return Admission::Replayed;
        }
        if window.len() >= e.capacity {
            window.retain(|_, exp| *exp > e.now);
            if window.len() >= e.capacity {
                return Admission::Full;
            }
        }
        window.insert(key, e.expires);
        Admission::Fresh
    }
}

// ---------------------------------------------------------------------------------------
// Shards: the encoding of a window split over several shared-data values (Envoy).

/// Version byte of the shard encoding; a shard that does not start with it is not ours.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
const SHARD_VERSION: u8 = 1;
/// One entry: 16-byte key, then the expiry as u64 little-endian seconds.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
const ENTRY_BYTES: usize = 24;

/// How a window of `capacity` entries is split: how many shards, and entries per shard.
/// Small windows are one shard (exact capacity); large ones up to `MAX_DPOP_REPLAY_SHARDS`
/// shards of about `DPOP_REPLAY_SHARD_ENTRIES`. A shard is full on its own, so a window
/// refuses new proofs at most when one shard (capacity / shards entries) is full.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) fn shard_layout(capacity: usize) -> (usize, usize) {
    let capacity = capacity.max(1);
    let shards = capacity
        .div_ceil(DPOP_REPLAY_SHARD_ENTRIES)
        .clamp(1, MAX_DPOP_REPLAY_SHARDS);
    (shards, capacity.div_ceil(shards))
}

/// Which shard an entry lives in.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) fn shard_of(key: &EntryKey, shards: usize) -> usize {
    let head = u16::from_le_bytes([key[0], key[1]]);
    usize::from(head) % shards.max(1)
}

/// An empty shard, as a host creates it before any request (so every later write can be a
/// compare-and-swap).
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) fn empty_shard() -> Vec<u8> {
    vec![SHARD_VERSION]
}

/// Admits `key` into the shard `bytes` (`None`: absent, read as empty). Returns the
/// admission and, when it is `Fresh`, the shard to write back: live entries only, plus the
/// new one. A shard that is not in this encoding is `Full` (fail closed: entries that
/// cannot be read cannot be checked).
#[cfg_attr(not(feature = "proxy"), allow(dead_code))] // Envoy host only
pub(crate) fn admit_in_shard(
    bytes: Option<&[u8]>,
    key: &EntryKey,
    now: u64,
    expires: u64,
    shard_capacity: usize,
) -> (Admission, Option<Vec<u8>>) {
    let body = match bytes {
        None => &[][..],
        Some([SHARD_VERSION, body @ ..]) if body.len() % ENTRY_BYTES == 0 => body,
        Some(_) => return (Admission::Full, None),
    };
    let mut out = Vec::with_capacity(1 + body.len() + ENTRY_BYTES);
    out.push(SHARD_VERSION);
    let mut live = 0usize;
    for entry in body.chunks_exact(ENTRY_BYTES) {
        let (k, exp) = entry.split_at(16);
        let exp = u64::from_le_bytes(exp.try_into().unwrap_or([0; 8]));
        if exp <= now {
            continue;
        }
        if k == key {
            return (Admission::Replayed, None);
        }
        live += 1;
        out.extend_from_slice(entry);
    }
    if live >= shard_capacity {
        return (Admission::Full, None);
    }
    out.extend_from_slice(key);
    out.extend_from_slice(&expires.to_le_bytes());
    (Admission::Fresh, Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(jti: &'a str, now: u64, capacity: usize) -> ReplayEntry<'a> {
        ReplayEntry {
            provider: "p",
            jti,
            now,
            expires: now + 120,
            capacity,
        }
    }

    #[test]
    fn memory_window_fresh_replayed_expired_full() {
        let w = MemoryWindow::new();
        assert_eq!(w.admit(entry("a", 1000, 2)), Admission::Fresh);
        assert_eq!(w.admit(entry("a", 1001, 2)), Admission::Replayed);
        // Same jti, other provider: its own window.
        let other = ReplayEntry {
            provider: "q",
            ..entry("a", 1001, 2)
        };
        assert_eq!(w.admit(other), Admission::Fresh);
        assert_eq!(w.admit(entry("b", 1002, 2)), Admission::Fresh);
        assert_eq!(w.admit(entry("c", 1003, 2)), Admission::Full);
        assert_eq!(w.live("p", 1003), 2);
        // `a` expires at 1120: then it is forgotten, and there is room again.
        assert_eq!(w.admit(entry("c", 1120, 2)), Admission::Fresh);
        assert_eq!(w.admit(entry("a", 1121, 2)), Admission::Full);
        assert_eq!(w.admit(entry("a", 1122, 3)), Admission::Fresh);
    }

    #[test]
    fn shard_encoding_round_trips_and_drops_expired_entries() {
        let a = entry_key("p", "a");
        let b = entry_key("p", "b");
        let (adm, shard) = admit_in_shard(None, &a, 1000, 1100, 2);
        assert_eq!(adm, Admission::Fresh);
        let shard = shard.unwrap();
        assert_eq!(shard.len(), 1 + ENTRY_BYTES);
        assert_eq!(
            admit_in_shard(Some(&shard), &a, 1099, 1200, 2).0,
            Admission::Replayed
        );
        let (_, shard2) = admit_in_shard(Some(&shard), &b, 1000, 1050, 2);
        let shard2 = shard2.unwrap();
        assert_eq!(
            admit_in_shard(Some(&shard2), &entry_key("p", "c"), 1000, 1100, 2).0,
            Admission::Full
        );
        // At 1050 `b` is gone: `c` fits and `b`'s bytes are not written back.
        let (adm, shard3) = admit_in_shard(Some(&shard2), &entry_key("p", "c"), 1050, 1100, 2);
        assert_eq!(adm, Admission::Fresh);
        assert_eq!(shard3.unwrap().len(), 1 + 2 * ENTRY_BYTES);
        // Not our encoding: refused, not overwritten.
        assert_eq!(
            admit_in_shard(Some(&[9, 9]), &a, 0, 1, 2),
            (Admission::Full, None)
        );
        assert_eq!(
            admit_in_shard(Some(&[1, 9]), &a, 0, 1, 2),
            (Admission::Full, None)
        );
        assert_eq!(
            admit_in_shard(Some(&empty_shard()), &a, 0, 1, 1).0,
            Admission::Fresh
        );
    }

    #[test]
    fn shard_layout_is_exact_for_small_windows_and_bounded_for_large() {
        assert_eq!(shard_layout(1), (1, 1));
        assert_eq!(shard_layout(4), (1, 4));
        assert_eq!(shard_layout(128), (1, 128));
        assert_eq!(shard_layout(129), (2, 65));
        assert_eq!(shard_layout(65_536), (512, 128));
        assert_eq!(shard_layout(1 << 20), (8192, 128));
        assert_eq!(shard_layout(1 << 19), (4096, 128));
        let key = entry_key("p", "x");
        assert!(shard_of(&key, 8192) < 8192);
        assert_eq!(shard_of(&key, 1), 0);
    }
}

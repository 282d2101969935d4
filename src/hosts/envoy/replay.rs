//! The DPoP replay window of SPEC §10 in Envoy shared data, so that a proof accepted by
//! one worker VM is a replay on every other. Each provider's window is split into shards
//! (`core::dpop::replay::shard_layout`), one shared-data value each, in the compact
//! encoding of `core::dpop::replay`; a proof is admitted by a compare-and-swap on its
//! shard, retried on contention, and refused (fail closed, counted) when the shard is
//! full or the swap keeps losing.
//!
//! Shards are created empty when the plugin starts (`ensure_shards`), as the JWKS record
//! is, so that every write on the request path is a compare-and-swap: Envoy applies a
//! write to an absent key whatever the token, so two workers creating the same shard at
//! once could each believe its entry was kept.

use super::host::Host;
use super::metrics::Metrics;
use crate::core::config::{DpopMode, Policy};
use crate::core::dpop::replay::{
    admit_in_shard, empty_shard, entry_key, shard_layout, shard_of, EntryKey,
};
use crate::core::dpop::{Admission, ReplayEntry, ReplayWindow};
use crate::core::limits::DPOP_REPLAY_CAS_ATTEMPTS;

/// The shared-data key of one shard. Versioned like the encoding; by provider name, so
/// every plugin and worker with this provider shares its window; and by the number of
/// shards, so that two plugins splitting a provider's window differently (different
/// `replay_window_entries`) never look for one proof in two different shards of one key
/// space.
pub(crate) fn shard_key(provider: &str, shards: usize, shard: usize) -> String {
    format!("actwarden.dpop.v1|{provider}|{shards}|{shard}")
}

/// Creates every shard of every DPoP provider that no worker has created yet.
pub(crate) fn ensure_shards(host: &impl Host, policy: &Policy) {
    for p in policy
        .providers
        .iter()
        .filter(|p| p.dpop.mode != DpopMode::Off)
    {
        let (shards, _) = shard_layout(p.dpop.replay_window_entries);
        for shard in 0..shards {
            let key = shard_key(&p.name, shards, shard);
            if host.shared_data(&key).0.is_none() {
                host.set_shared_data(&key, &empty_shard(), None);
            }
        }
    }
}

/// The window one decision uses: the host's shared data.
pub(crate) struct SharedReplay<'h, H> {
    host: &'h H,
    metrics: &'h Metrics,
}

impl<'h, H: Host> SharedReplay<'h, H> {
    pub(crate) fn new(host: &'h H, metrics: &'h Metrics) -> Self {
        SharedReplay { host, metrics }
    }

    fn admit_in(
        &self,
        key: &str,
        entry: &EntryKey,
        e: &ReplayEntry<'_>,
        per_shard: usize,
    ) -> Admission {
        for _ in 0..DPOP_REPLAY_CAS_ATTEMPTS {
            let (bytes, cas) = self.host.shared_data(key);
            if cas.is_none() {
                // Never created (a shard is made at start): create it, then swap into it.
                self.host.set_shared_data(key, &empty_shard(), None);
                continue;
            }
            let (admission, updated) =
                admit_in_shard(bytes.as_deref(), entry, e.now, e.expires, per_shard);
            let Some(updated) = updated else {
                return admission;
            };
            if self.host.set_shared_data(key, &updated, cas) {
                return admission;
            }
        }
        Admission::Full
    }
}

impl<H: Host> ReplayWindow for SharedReplay<'_, H> {
    fn admit(&self, e: ReplayEntry<'_>) -> Admission {
        let (shards, per_shard) = shard_layout(e.capacity);
        // One SHA-256 per proof: it picks the shard and is the entry.
        let entry = entry_key(e.provider, e.jti);
        let shard = shard_of(&entry, shards);
        let admission = self.admit_in(&shard_key(e.provider, shards, shard), &entry, &e, per_shard);
        if admission == Admission::Full {
            self.metrics.dpop_window_full(self.host);
        }
        admission
    }
}

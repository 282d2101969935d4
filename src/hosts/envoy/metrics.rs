//! SPEC §8 counters. Envoy shows wasm-defined metrics in admin `/stats` under its own
//! prefix for custom wasm stats (e.g. `wasmcustom.actwarden.allow`).

use super::host::Host;
use crate::core::reasons::Reason;

pub(crate) struct Metrics {
    allow: Option<u32>,
    /// Indexed like `Reason::ALL`.
    deny: Vec<(Reason, Option<u32>)>,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    /// DPoP proofs refused because the replay window was full or could not be updated
    /// (SPEC §10: counted, fail closed); also in `actwarden.deny.dpop_replayed`.
    dpop_window_full: Option<u32>,
}

fn add(host: &impl Host, metric: Option<u32>, n: u64) {
    if let (Some(id), Ok(n)) = (metric, i64::try_from(n)) {
        if n > 0 {
            host.increment_counter(id, n);
        }
    }
}

impl Metrics {
    pub(crate) fn define(host: &impl Host) -> Metrics {
        let counter = |name: &str| host.define_counter(name);
        Metrics {
            allow: counter("actwarden.allow"),
            deny: Reason::ALL
                .iter()
                .filter(|r| r.status().is_some())
                .map(|r| (*r, counter(&format!("actwarden.deny.{}", r.code()))))
                .collect(),
            jwks_fetch_ok: counter("actwarden.jwks.fetch_ok"),
            jwks_fetch_failed: counter("actwarden.jwks.fetch_failed"),
            cache_hit: counter("actwarden.cache.hit"),
            cache_miss: counter("actwarden.cache.miss"),
            dpop_window_full: counter("actwarden.dpop.replay_window_full"),
        }
    }

    pub(crate) fn decision(&self, host: &impl Host, allowed: bool, reason: Reason) {
        if allowed {
            add(host, self.allow, 1);
        } else if let Some((_, id)) = self.deny.iter().find(|(r, _)| *r == reason) {
            add(host, *id, 1);
        }
    }

    pub(crate) fn fetch(&self, host: &impl Host, ok: bool) {
        add(
            host,
            if ok {
                self.jwks_fetch_ok
            } else {
                self.jwks_fetch_failed
            },
            1,
        );
    }

    pub(crate) fn dpop_window_full(&self, host: &impl Host) {
        add(host, self.dpop_window_full, 1);
    }

    pub(crate) fn cache(&self, host: &impl Host, hits: u64, misses: u64) {
        add(host, self.cache_hit, hits);
        add(host, self.cache_miss, misses);
    }
}

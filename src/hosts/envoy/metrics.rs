//! SPEC §8 counters. Envoy shows wasm-defined metrics in admin `/stats` under its own
//! prefix for custom wasm stats (e.g. `wasmcustom.actwarden.allow`).

use crate::core::reasons::Reason;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub(crate) struct Metrics {
    allow: Option<u32>,
    /// Indexed like `Reason::ALL`.
    deny: Vec<(Reason, Option<u32>)>,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn add(metric: Option<u32>, n: u64) {
    if let (Some(id), Ok(n)) = (metric, i64::try_from(n)) {
        if n > 0 {
            let _ = hostcalls::increment_metric(id, n);
        }
    }
}

impl Metrics {
    pub(crate) fn define() -> Metrics {
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
        }
    }

    pub(crate) fn decision(&self, allowed: bool, reason: Reason) {
        if allowed {
            add(self.allow, 1);
        } else if let Some((_, id)) = self.deny.iter().find(|(r, _)| *r == reason) {
            add(*id, 1);
        }
    }

    pub(crate) fn fetch(&self, ok: bool) {
        add(
            if ok {
                self.jwks_fetch_ok
            } else {
                self.jwks_fetch_failed
            },
            1,
        );
    }

    pub(crate) fn cache(&self, hits: u64, misses: u64) {
        add(self.cache_hit, hits);
        add(self.cache_miss, misses);
    }
}

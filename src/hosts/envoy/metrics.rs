//! SPEC §8 counters. Envoy shows wasm-defined metrics in admin `/stats` under its own
//! prefix for custom wasm stats (e.g. `wasmcustom.actwarden.allow`).

use super::host::Host;
use crate::core::reasons::Reason;

pub(crate) struct Metrics {
    allow: Option<u32>,
    /// Indexed like `Reason::ALL`.
    deny: Vec<(Reason, Option<u32>)>,
    /// SPEC §11: denials forwarded under shadow mode, in total and by reason (like `deny`).
    shadow_deny: Option<u32>,
    shadow_deny_by_reason: Vec<(Reason, Option<u32>)>,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    verify_host: Option<u32>,
    verify_wasm: Option<u32>,
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

/// One counter `<prefix>.<reason>` for every deny reason.
fn per_deny_reason(host: &impl Host, prefix: &str) -> Vec<(Reason, Option<u32>)> {
    Reason::ALL
        .iter()
        .filter(|r| r.status().is_some())
        .map(|r| (*r, host.define_counter(&format!("{prefix}.{}", r.code()))))
        .collect()
}

impl Metrics {
    pub(crate) fn define(host: &impl Host) -> Metrics {
        let counter = |name: &str| host.define_counter(name);
        Metrics {
            allow: counter("actwarden.allow"),
            deny: per_deny_reason(host, "actwarden.deny"),
            shadow_deny: counter("actwarden.shadow_deny"),
            shadow_deny_by_reason: per_deny_reason(host, "actwarden.shadow_deny"),
            jwks_fetch_ok: counter("actwarden.jwks.fetch_ok"),
            jwks_fetch_failed: counter("actwarden.jwks.fetch_failed"),
            cache_hit: counter("actwarden.cache.hit"),
            cache_miss: counter("actwarden.cache.miss"),
            verify_host: counter("actwarden.verify.host"),
            verify_wasm: counter("actwarden.verify.wasm"),
            dpop_window_full: counter("actwarden.dpop.replay_window_full"),
        }
    }

    /// Counts a decision: `allow`, `deny.<reason>`, or for a denial that shadow mode
    /// forwarded `shadow_deny` and `shadow_deny.<reason>` (never `deny.*`: nothing was denied).
    pub(crate) fn decision(&self, host: &impl Host, allowed: bool, enforced: bool, reason: Reason) {
        let by_reason = |counters: &[(Reason, Option<u32>)]| {
            if let Some((_, id)) = counters.iter().find(|(r, _)| *r == reason) {
                add(host, *id, 1);
            }
        };
        if allowed {
            add(host, self.allow, 1);
        } else if enforced {
            by_reason(&self.deny);
        } else {
            add(host, self.shadow_deny, 1);
            by_reason(&self.shadow_deny_by_reason);
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

    /// SPEC §13: signatures verified by the host (BoringSSL) and by ring in the module.
    pub(crate) fn verifications(&self, host: &impl Host, by_host: u64, by_wasm: u64) {
        add(host, self.verify_host, by_host);
        add(host, self.verify_wasm, by_wasm);
    }
}

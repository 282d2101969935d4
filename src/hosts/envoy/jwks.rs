//! Remote JWKS through Envoy (SPEC §8). The state machine is `remote_jwks`; this file
//! moves its fetch state through shared data (compare-and-swap, so of all workers exactly
//! one fetches per interval), the last good document through a second key, and the
//! fetches through `dispatch_http_call` on the provider's cluster. Fetches run in the root
//! context (on ticks, and when a fetch reports); every decision first adopts a newer
//! document, so a rotation reaches all workers at once.

use super::abi::LogLevel;
use super::host::Host;
use super::metrics::Metrics;
use super::plugin::{Plugin, RemoteProvider};
use crate::core::keys::remote::{
    check_document, LocalKeys, SharedDocument, SharedJwks, UnknownKid,
};
use std::time::Duration;

/// Tick period of every root context. A request waiting for an unknown-`kid` refetch
/// waits at most one tick for it to start; each tick costs one shared-data read per
/// remote provider.
pub(crate) const TICK_MS: u64 = 100;

/// How often a lost compare-and-swap is retried within one step before giving up until
/// the next tick (another worker is writing the same record right now).
const CAS_ATTEMPTS: usize = 4;

pub(crate) fn read_shared(host: &impl Host, remote: &RemoteProvider) -> (SharedJwks, Option<u32>) {
    let (bytes, cas) = host.shared_data(&remote.shared_key);
    let record = bytes
        .as_deref()
        .and_then(SharedJwks::from_bytes)
        .unwrap_or_default();
    (record, cas)
}

/// Creates the shared record if no worker has yet, so that every later write can be a
/// compare-and-swap (Envoy lets anyone create a missing key).
pub(crate) fn ensure_shared(host: &impl Host, remote: &RemoteProvider) {
    if host.shared_data(&remote.shared_key).0.is_none() {
        host.set_shared_data(&remote.shared_key, &SharedJwks::default().to_bytes(), None);
    }
}

/// Shared-data key of the last good document (the state's key holds only the times).
fn document_key(remote: &RemoteProvider) -> String {
    format!("{}|document", remote.shared_key)
}

/// Adopts the shared document when the shared state says it is newer than this worker's
/// keys. Called before every decision (the state is small), so that a key withdrawn from
/// the JWKS stops verifying on every worker at once (SPEC §8), not a tick later.
pub(crate) fn adopt_if_newer(host: &impl Host, remote: &RemoteProvider) -> SharedJwks {
    let (state, _) = read_shared(host, remote);
    let local = remote.keys.borrow().as_ref().map(|k| k.fetched_at_ms);
    if state.fetched_at_ms > 0 && local.is_none_or(|l| state.fetched_at_ms > l) {
        let document = host
            .shared_data(&document_key(remote))
            .0
            .as_deref()
            .and_then(SharedDocument::from_bytes);
        if let Some(document) = document {
            let newer = LocalKeys::adopt(&document, remote.keys.borrow().as_ref());
            if let Some(keys) = newer {
                *remote.keys.borrow_mut() = Some(keys);
            }
        }
    }
    state
}

/// An outstanding fetch: which provider, and when it started.
pub(crate) struct Callout {
    pub token: u32,
    pub provider: usize,
    pub started_ms: u64,
}

/// One tick for every remote provider: adopt, then fetch when due or asked for.
pub(crate) fn tick<H: Host>(plugin: &Plugin<H>, callouts: &mut Vec<Callout>, root_context_id: u32) {
    let host = &plugin.host;
    let now_ms = host.now_millis();
    for (index, remote) in plugin.remotes.iter().enumerate() {
        adopt_if_newer(host, remote);
        let for_kid = remote.kid_refetch_wanted.replace(false);
        if let Some(token) = claim_fetch(host, remote, &plugin.metrics, now_ms, for_kid) {
            callouts.push(Callout {
                token,
                provider: index,
                started_ms: now_ms,
            });
        }
    }
    // Waiters are ready when no fetch for their provider is pending any more (it reported
    // here or in another worker, whose result was adopted above), or at their deadline.
    let pending: Vec<bool> = plugin
        .remotes
        .iter()
        .map(|r| r.kid_refetch_wanted.get() || read_shared(host, r).0.in_flight)
        .collect();
    plugin.wake_waiters(
        |w| now_ms >= w.deadline_ms || !pending.get(w.provider).copied().unwrap_or(false),
        root_context_id,
    );
}

/// Starts a fetch if one is due (or asked for by an unknown `kid`) and this worker wins
/// the compare-and-swap on the shared record. Returns the call's token.
fn claim_fetch(
    host: &impl Host,
    remote: &RemoteProvider,
    metrics: &Metrics,
    now_ms: u64,
    for_kid: bool,
) -> Option<u32> {
    for _ in 0..CAS_ATTEMPTS {
        let (record, cas) = read_shared(host, remote);
        let wanted = record.fetch_due(&remote.config, now_ms)
            || (for_kid && record.on_unknown_kid(&remote.config, now_ms) == UnknownKid::Refetch);
        if !wanted {
            return None;
        }
        let started = record.fetch_started(now_ms, for_kid);
        if !host.set_shared_data(&remote.shared_key, &started.to_bytes(), cas) {
            continue; // another worker wrote first: look again
        }
        return match dispatch(host, remote) {
            Ok(token) => Some(token),
            Err(why) => {
                // A call Envoy refuses (no such cluster) is a failed fetch like any other:
                // logged and counted (SPEC §8).
                finish(host, remote, |r| r.fetch_failed());
                metrics.fetch(host, false);
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "actwarden: jwks {} fetch failed: {why}; {}",
                        remote.name,
                        keeping(remote, now_ms)
                    ),
                );
                None
            }
        };
    }
    None
}

fn dispatch(host: &impl Host, remote: &RemoteProvider) -> Result<u32, String> {
    let (authority, path) = split_uri(&remote.config.uri);
    host.dispatch_http_call(
        &remote.config.cluster,
        &[
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            (
                ":scheme",
                if remote.config.uri.starts_with("https://") {
                    "https"
                } else {
                    "http"
                },
            ),
            ("accept", "application/jwk-set+json, application/json"),
            ("user-agent", "actwarden"),
        ],
        Duration::from_millis(remote.config.timeout_ms),
    )
    .map_err(|status| {
        format!(
            "cluster `{}` refused the call ({status})",
            remote.config.cluster
        )
    })
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`).
fn split_uri(uri: &str) -> (&str, &str) {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .unwrap_or(uri);
    match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    }
}

/// Writes the outcome of a fetch into the shared state (compare-and-swap, retried). If
/// every attempt loses the race, the result stays local to this worker and the in-flight
/// mark expires by its timeout.
fn finish(host: &impl Host, remote: &RemoteProvider, outcome: impl Fn(&SharedJwks) -> SharedJwks) {
    for _ in 0..CAS_ATTEMPTS {
        let (record, cas) = read_shared(host, remote);
        if host.set_shared_data(&remote.shared_key, &outcome(&record).to_bytes(), cas) {
            return;
        }
    }
}

/// What a failed fetch leaves the provider with, for the log line.
fn keeping(remote: &RemoteProvider, now_ms: u64) -> &'static str {
    match remote.keys.borrow().as_ref() {
        Some(k) if k.usable(&remote.config, now_ms).is_some() => "keeping the last good keys",
        Some(_) => "the last good keys are too old: jwks_unavailable",
        None => "no keys yet: jwks_unavailable",
    }
}

/// A fetch reported (`on_http_call_response` of the root context).
pub(crate) fn on_response<H: Host>(
    plugin: &Plugin<H>,
    callouts: &mut Vec<Callout>,
    token: u32,
    body_size: usize,
    root_context_id: u32,
) {
    let Some(position) = callouts.iter().position(|c| c.token == token) else {
        return;
    };
    let callout = callouts.swap_remove(position);
    let Some(remote) = plugin.remotes.get(callout.provider) else {
        return;
    };
    let host = &plugin.host;
    let now_ms = host.now_millis();
    let status = host.http_call_response_status();
    let body = host.http_call_response_body(body_size);
    match check_document(status, &body) {
        Ok((text, set)) => {
            let count = set.keys.len();
            // The document first, then the state that announces it: a worker that sees the
            // new time finds the document.
            let document = SharedDocument {
                fetched_at_ms: now_ms,
                jwks: text,
            };
            host.set_shared_data(&document_key(remote), &document.to_bytes(), None);
            finish(host, remote, |r| r.fetch_succeeded(now_ms));
            *remote.keys.borrow_mut() = Some(LocalKeys {
                fetched_at_ms: now_ms,
                set: std::sync::Arc::new(set),
            });
            plugin.metrics.fetch(host, true);
            host.log(
                LogLevel::Info,
                &format!(
                    "actwarden: jwks {} fetch ok ({count} keys, {} ms)",
                    remote.name,
                    now_ms.saturating_sub(callout.started_ms)
                ),
            );
        }
        Err(problem) => {
            finish(host, remote, |r| r.fetch_failed());
            plugin.metrics.fetch(host, false);
            host.log(
                LogLevel::Warn,
                &format!(
                    "actwarden: jwks {} fetch failed: {problem}; {}",
                    remote.name,
                    keeping(remote, now_ms)
                ),
            );
        }
    }
    let provider = callout.provider;
    plugin.wake_waiters(|w| w.provider == provider, root_context_id);
}

#[cfg(test)]
mod tests {
    use super::split_uri;

    #[test]
    fn uri_split() {
        assert_eq!(
            split_uri("http://sts.internal/jwks"),
            ("sts.internal", "/jwks")
        );
        assert_eq!(split_uri("https://h:8443/a/b?c=d"), ("h:8443", "/a/b?c=d"));
        assert_eq!(split_uri("http://h"), ("h", "/"));
    }
}

//! Remote JWKS through a real Envoy (SPEC §8; README: "In Envoy: keys, caches and counters"): the first fetch, the
//! refresh, the unknown-`kid` refetch with the request waiting, a JWKS server down at start
//! (503, then recovery without restarting Envoy), garbage (the last good keys are kept until
//! `max_stale_s`), one fetch per interval across two workers (counted at the JWKS server),
//! and the rotation drill {k1} → {k1,k2} → {k2}.
//!
//! Each test runs its own Envoy (2 workers, dist/actwarden.wasm: the real clock) with one
//! provider `sts` whose `remote_jwks` points at a JWKS server the test controls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{Envoy, Options};
use actwarden_envoy_tests::fixtures::{bearer_get, claims, decide, mint, Decided, Via};
use actwarden_envoy_tests::http::Request;
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::servers::{EchoServer, JwksServer, Serve};
use ring::rand::SystemRandom;
use serde_json::json;
use std::time::{Duration, Instant};

const PATH: &str = "/jwks";
const ISS: &str = "https://sts.e2e";
const AUD: &str = "api";

struct Rig {
    envoy: Envoy,
    jwks: JwksServer,
    _echo: EchoServer,
    via: Via,
}

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(Alg::ES256, kid, &SystemRandom::new()).unwrap()
}

fn jwks_of(keys: &[&SigningKey]) -> Serve {
    Serve::Jwks(public_jwks(keys).to_string())
}

/// An Envoy whose provider `sts` fetches from the rig's JWKS server, which serves `first`.
fn rig(name: &str, cache_duration_s: u64, max_stale_s: u64, first: Serve) -> Rig {
    rig_through(name, cache_duration_s, max_stale_s, first, "jwks")
}

/// The same, with the provider's `http_uri.cluster` set to `cluster` (the JWKS server's
/// cluster is always named `jwks`).
fn rig_through(
    name: &str,
    cache_duration_s: u64,
    max_stale_s: u64,
    first: Serve,
    cluster: &str,
) -> Rig {
    let wasm = paths::wasm().unwrap();
    let dir = paths::work_dir(&format!("jwks-{name}")).unwrap();
    let echo = EchoServer::start().unwrap();
    let jwks = JwksServer::start().unwrap();
    jwks.set(PATH, first);
    let config = json!({
        "providers": { "sts": {
            "issuer": ISS, "audiences": [AUD],
            "remote_jwks": {
                "http_uri": { "uri": format!("http://sts.e2e{PATH}"), "cluster": cluster, "timeout_ms": 1000 },
                "cache_duration_s": cache_duration_s, "max_stale_s": max_stale_s },
            "algorithms": ["ES256"] } },
        "rules": [{ "id": "any", "match": { "path_prefix": "/" } }]
    });
    let bootstrap = boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            &config.to_string(),
            "actwarden",
            None,
        )],
        vec![
            boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr()),
            boot::cluster("jwks", jwks.addr()),
        ],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let via = Via::Plain(envoy.listener("main").unwrap());
    Rig {
        envoy,
        jwks,
        _echo: echo,
        via,
    }
}

impl Rig {
    fn call(&self, key: &SigningKey) -> Decided {
        let token = mint(key, &claims(ISS, AUD, "user:alice")).unwrap();
        decide(&self.envoy, &self.via, bearer_get("/v1/x", &token)).unwrap()
    }

    fn call_token(&self, token: &str) -> Decided {
        decide(&self.envoy, &self.via, bearer_get("/v1/x", token)).unwrap()
    }

    /// After the first fetch (which every worker adopts before its next decision), poll
    /// until a token of `key` is allowed.
    fn wait_allowed(&self, key: &SigningKey) -> Duration {
        self.until(Duration::from_secs(5), "first keys in every worker", || {
            (0..4).all(|_| self.call(key).allowed())
        })
    }

    fn counter(&self, name: &str) -> u64 {
        self.envoy.counter(name).unwrap()
    }

    fn log(&self) -> String {
        self.envoy.log_path().display().to_string()
    }

    /// Polls `f` every 50 ms until it is true or `timeout` passes; returns the time taken.
    fn until(&self, timeout: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if f() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?} (log {})",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn assert_reason(d: &Decided, reason: &str, status: Option<u16>) {
    assert_eq!(d.reason(), reason, "{}", d.describe());
    match status {
        None => {
            assert!(
                d.upstream.is_some(),
                "allowed but not forwarded: {}",
                d.describe()
            );
        }
        Some(s) => {
            assert_eq!(d.response.status, s, "{}", d.describe());
            assert!(
                d.upstream.is_none(),
                "denied but forwarded: {}",
                d.describe()
            );
        }
    }
}

#[test]
fn first_fetch_then_refresh_once_per_interval_across_workers() {
    let k1 = key("k1");
    let rig = rig("refresh", 1, 300, jwks_of(&[&k1]));
    // First fetch on the first tick after start, through the named cluster, with the
    // uri's host as authority.
    rig.jwks
        .wait_fetches(PATH, 1, Duration::from_secs(10))
        .unwrap();
    let first = rig.jwks.fetches(PATH)[0].clone();
    assert_eq!(first.authority.as_deref(), Some("sts.e2e"));
    rig.envoy
        .wait_log(
            "actwarden: jwks sts fetch ok (1 keys",
            0,
            Duration::from_secs(5),
        )
        .unwrap();
    rig.until(Duration::from_secs(5), "fetch_ok counted", || {
        rig.counter("actwarden.jwks.fetch_ok") >= 1
    });
    let took = rig.wait_allowed(&k1);
    eprintln!("every worker had the first keys {took:?} after fetch_ok was counted");
    assert_reason(&rig.call(&k1), "allowed", None);

    // Refresh every cache_duration_s (1 s) — once per interval for both workers, not once
    // per worker: over 5 s, about 5 fetches, never two within one interval.
    let before = rig.jwks.count(PATH);
    std::thread::sleep(Duration::from_secs(5));
    let fetches = rig.jwks.fetches(PATH);
    let during = fetches.len() - before;
    assert!(
        (3..=6).contains(&during),
        "{during} fetches in 5 s with cache_duration_s 1 (expected about 5; log {})",
        rig.log()
    );
    for pair in fetches.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(700),
            "two fetches {gap:?} apart (one interval is 1 s): workers fetch separately? (log {})",
            rig.log()
        );
    }
    // Every fetch is counted once, as a success.
    let ok = rig.counter("actwarden.jwks.fetch_ok");
    let served = rig.jwks.count(PATH) as u64;
    assert!(
        ok + 1 >= served && ok <= served,
        "fetch_ok {ok}, JWKS server answered {served}"
    );
    assert_eq!(rig.counter("actwarden.jwks.fetch_failed"), 0);
    // Still the same keys, still allowed; a key that was never published is not.
    assert_reason(&rig.call(&k1), "allowed", None);
}

#[test]
fn unknown_kid_refetch_makes_the_request_wait_once_per_30s() {
    let (k1, k2, k3) = (key("k1"), key("k2"), key("k3"));
    // A long cache: any fetch after the first is the unknown-kid refetch.
    let rig = rig("refetch", 300, 3600, jwks_of(&[&k1]));
    rig.envoy
        .wait_log("actwarden: jwks sts fetch ok", 0, Duration::from_secs(10))
        .unwrap();
    rig.wait_allowed(&k1);
    assert_reason(&rig.call(&k1), "allowed", None);
    assert_eq!(rig.jwks.count(PATH), 1);

    // k2 is published now; its first request finds an unknown kid, triggers the refetch,
    // waits for it and is decided with the new keys.
    rig.jwks.set(PATH, jwks_of(&[&k1, &k2]));
    let d = rig.call(&k2);
    assert_reason(&d, "allowed", None);
    assert_eq!(d.audit["kid"], json!("k2"));
    assert_eq!(
        rig.jwks.count(PATH),
        2,
        "exactly one refetch (log {})",
        rig.log()
    );

    // Another unknown kid within 30 s: no second refetch, kid_unknown.
    rig.jwks.set(PATH, jwks_of(&[&k1, &k2, &k3]));
    let d = rig.call(&k3);
    assert_reason(&d, "kid_unknown", Some(401));
    assert_eq!(
        rig.jwks.count(PATH),
        2,
        "a second refetch within 30 s (log {})",
        rig.log()
    );
    assert_reason(&rig.call(&k1), "allowed", None);
}

#[test]
fn jwks_down_at_start_is_503_then_recovers_without_restart() {
    let k1 = key("k1");
    let rig = rig("down", 1, 300, Serve::Status(503));
    let pid = rig.envoy.pid();
    rig.jwks
        .wait_fetches(PATH, 1, Duration::from_secs(10))
        .unwrap();
    rig.until(Duration::from_secs(5), "fetch_failed counted", || {
        rig.counter("actwarden.jwks.fetch_failed") >= 1
    });
    rig.envoy
        .wait_log(
            "actwarden: jwks sts fetch failed",
            0,
            Duration::from_secs(5),
        )
        .unwrap();
    let d = rig.call(&k1);
    assert_reason(&d, "jwks_unavailable", Some(503));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&d.response.body).unwrap()["error"],
        json!("jwks_unavailable")
    );

    // The JWKS comes back: within a refresh or two, tokens verify; same Envoy process.
    rig.jwks.set(PATH, jwks_of(&[&k1]));
    let took = rig.until(
        Duration::from_secs(6),
        "recovery after the JWKS came back",
        || rig.call(&k1).allowed(),
    );
    eprintln!("recovered {took:?} after the JWKS came back");
    assert_eq!(rig.envoy.pid(), pid);
    assert!(rig.counter("actwarden.jwks.fetch_ok") >= 1);
}

/// A cluster name Envoy does not know (Istio's `outbound|PORT||HOST` mistyped, say): every
/// fetch is refused by Envoy before it starts — logged, counted as failed, and tokens are
/// `jwks_unavailable`, never allowed.
#[test]
fn a_cluster_envoy_does_not_know_is_a_counted_failure() {
    let k1 = key("k1");
    let rig = rig_through("nocluster", 1, 300, jwks_of(&[&k1]), "no-such-cluster");
    rig.until(Duration::from_secs(5), "fetch_failed counted", || {
        rig.counter("actwarden.jwks.fetch_failed") >= 1
    });
    rig.envoy
        .wait_log(
            "actwarden: jwks sts fetch failed: cluster `no-such-cluster` refused the call",
            0,
            Duration::from_secs(5),
        )
        .unwrap();
    assert_reason(&rig.call(&k1), "jwks_unavailable", Some(503));
    assert_eq!(rig.jwks.count(PATH), 0, "nothing reached the JWKS server");
    assert_eq!(rig.counter("actwarden.jwks.fetch_ok"), 0);
}

#[test]
fn garbage_keeps_the_last_good_keys_until_max_stale() {
    let k1 = key("k1");
    let cache_s = 1;
    let max_stale_s = 4;
    let rig = rig("garbage", cache_s, max_stale_s, jwks_of(&[&k1]));
    rig.envoy
        .wait_log("actwarden: jwks sts fetch ok", 0, Duration::from_secs(10))
        .unwrap();
    rig.wait_allowed(&k1);
    let token = mint(&k1, &claims(ISS, AUD, "user:alice")).unwrap();
    assert_reason(&rig.call_token(&token), "allowed", None);

    // From now on the JWKS server answers garbage: not JSON, then JSON that is no JWKS.
    rig.jwks
        .set(PATH, Serve::Garbage("<html>oops</html>".into()));
    let last_good = rig
        .jwks
        .fetches(PATH)
        .iter()
        .rev()
        .find(|f| matches!(f.served, Serve::Jwks(_)))
        .map(|f| f.at)
        .unwrap();
    let n = rig.jwks.count(PATH);
    rig.jwks
        .wait_fetches(PATH, n + 1, Duration::from_secs(5))
        .unwrap();
    rig.jwks.set(PATH, Serve::Garbage(r#"{"keys": 5}"#.into()));
    rig.jwks
        .wait_fetches(PATH, n + 2, Duration::from_secs(5))
        .unwrap();
    rig.until(Duration::from_secs(3), "fetch_failed counted", || {
        rig.counter("actwarden.jwks.fetch_failed") >= 2
    });
    // The last good keys still verify (a fresh token, and the cached one).
    let stale_limit = last_good + Duration::from_secs(cache_s + max_stale_s);
    assert!(
        Instant::now() + Duration::from_millis(500) < stale_limit,
        "too slow to check before max_stale"
    );
    assert_reason(&rig.call(&k1), "allowed", None);
    assert_reason(&rig.call_token(&token), "allowed", None);
    assert!(!rig
        .envoy
        .log_grep("actwarden: jwks sts fetch failed")
        .is_empty());

    // After cache_duration_s + max_stale_s without a good fetch: jwks_unavailable.
    let after = stale_limit + Duration::from_millis(800);
    std::thread::sleep(after.saturating_duration_since(Instant::now()));
    assert_reason(&rig.call_token(&token), "jwks_unavailable", Some(503));
    assert_reason(&rig.call(&k1), "jwks_unavailable", Some(503));

    // Good keys again: recovery.
    rig.jwks.set(PATH, jwks_of(&[&k1]));
    rig.until(Duration::from_secs(6), "recovery", || {
        rig.call(&k1).allowed()
    });
}

/// {k1} → {k1,k2} → {k2}: k2 tokens start working and k1 tokens stop within one refresh,
/// and no request in between is wrongly allowed.
#[test]
fn rotation_drill() {
    let (k1, k2) = (key("k1"), key("k2"));
    let cache_s = 1;
    let rig = rig("rotation", cache_s, 300, jwks_of(&[&k1]));
    rig.envoy
        .wait_log("actwarden: jwks sts fetch ok", 0, Duration::from_secs(10))
        .unwrap();
    rig.wait_allowed(&k1);
    // The same token again and again (the verified-token cache must not outlive its key)
    // and a fresh token each time.
    let t1 = mint(&k1, &claims(ISS, AUD, "user:alice")).unwrap();
    let t2 = mint(&k2, &claims(ISS, AUD, "user:alice")).unwrap();

    struct Sent {
        at: Instant,
        key: &'static str,
        d: Decided,
    }
    let mut log: Vec<Sent> = Vec::new();
    let drive = |until: Instant, log: &mut Vec<Sent>| {
        let mut i = 0u32;
        while Instant::now() < until {
            for (name, key, token) in [("k1", &k1, &t1), ("k2", &k2, &t2)] {
                let at = Instant::now();
                let d = if i & 1 == 0 {
                    rig.call_token(token)
                } else {
                    rig.call(key)
                };
                log.push(Sent { at, key: name, d });
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
    };

    // Phase A: {k1}.
    drive(Instant::now() + Duration::from_millis(1500), &mut log);
    // Phase B: {k1, k2}.
    let b_at = Instant::now();
    rig.jwks.set(PATH, jwks_of(&[&k1, &k2]));
    drive(Instant::now() + Duration::from_millis(3000), &mut log);
    // Phase C: {k2}.
    let c_at = Instant::now();
    rig.jwks.set(PATH, jwks_of(&[&k2]));
    drive(Instant::now() + Duration::from_millis(3000), &mut log);

    let fetches = rig.jwks.fetches(PATH);
    let first_served = |kid: &str, since: Instant| {
        fetches
            .iter()
            .find(|f| {
                f.at >= since
                    && matches!(&f.served, Serve::Jwks(doc) if doc.contains(&format!("\"{kid}\"")))
            })
            .map(|f| f.at)
    };
    let k2_published = first_served("k2", b_at).expect("k2 never served");
    let k1_withdrawn = fetches
        .iter()
        .find(|f| f.at >= c_at)
        .map(|f| f.at)
        .expect("no fetch after k1 was withdrawn");
    // One refresh: cache_duration_s, plus a tick to notice and the fetch itself.
    let one_refresh = Duration::from_secs(cache_s) + Duration::from_millis(700);
    let mut problems = Vec::new();
    let mut k2_first_allowed = None;
    let mut k1_last_allowed = None;
    for s in &log {
        let (reason, allowed) = (s.d.reason().to_owned(), s.d.allowed());
        if !matches!(reason.as_str(), "allowed" | "kid_unknown") {
            problems.push(format!(
                "{} at {:?}: unexpected {}",
                s.key,
                s.at,
                s.d.describe()
            ));
        }
        if allowed != s.d.upstream.is_some() {
            problems.push(format!(
                "{}: decision and forwarding disagree: {}",
                s.key,
                s.d.describe()
            ));
        }
        match s.key {
            "k2" if allowed => {
                if s.at < b_at {
                    problems.push("a k2 token allowed before k2 was published".into());
                }
                k2_first_allowed.get_or_insert(s.at);
            }
            "k1" if allowed => {
                // Wrongly allowed: sent after the filter fetched {k2} (plus the time for
                // the answer to reach the filter and be stored: every worker adopts a newer
                // document before its next decision; 300 ms covers a loaded CI machine).
                if s.at > k1_withdrawn + Duration::from_millis(300) {
                    problems.push(format!(
                        "a k1 token allowed {:?} after the JWKS without k1 was fetched",
                        s.at.duration_since(k1_withdrawn)
                    ));
                }
                k1_last_allowed = Some(s.at);
            }
            "k1" if s.at < c_at => {
                problems.push(format!("k1 refused while published: {}", s.d.describe()))
            }
            "k2" if s.at > k2_published + Duration::from_millis(300) => problems.push(format!(
                "k2 refused {:?} after it was fetched: {}",
                s.at.duration_since(k2_published),
                s.d.describe()
            )),
            _ => {}
        }
    }
    match k2_first_allowed {
        None => problems.push("k2 never allowed".into()),
        Some(t) if t.duration_since(b_at) > one_refresh => problems.push(format!(
            "k2 allowed only {:?} after it was published (one refresh is {one_refresh:?})",
            t.duration_since(b_at)
        )),
        _ => {}
    }
    match k1_last_allowed {
        None => problems.push("k1 never allowed".into()),
        Some(t) if t > c_at + one_refresh => problems.push(format!(
            "k1 still allowed {:?} after it was withdrawn (one refresh is {one_refresh:?})",
            t.duration_since(c_at)
        )),
        _ => {}
    }
    // The end state: k2 works, k1 does not.
    let last_k1: Vec<&Sent> = log.iter().filter(|s| s.key == "k1").rev().take(4).collect();
    assert!(last_k1.iter().all(|s| s.d.reason() == "kid_unknown"));
    eprintln!(
        "rotation: {} requests; k2 allowed {:?} after publishing, k1 last allowed {:?} after withdrawal",
        log.len(),
        k2_first_allowed.map(|t| t.duration_since(b_at)),
        k1_last_allowed.map(|t| t.saturating_duration_since(c_at))
    );
    assert!(
        problems.is_empty(),
        "log {}:\n{}",
        rig.log(),
        problems.join("\n")
    );
}

/// A POST whose token's `kid` is unknown waits for the refetch with its headers held; with
/// `allow_on_headers_stop_iteration` its body reaches the filter meanwhile, and must be
/// held too: nothing of the request reaches the upstream before the decision, nothing at
/// all when it is refused, and all of it (body intact, identity set) when it is allowed.
#[test]
fn a_body_sent_while_the_request_waits_for_a_refetch_is_held_until_the_decision() {
    let (k1, k2, k3) = (key("k1"), key("k2"), key("k3"));
    let body = "b".repeat(4000);
    let post = |token: &str| {
        let mut req = Request::new("POST", "/v1/x")
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "text/plain")
            .header("x-agent-subject", "admin");
        req.body = body.clone().into_bytes();
        req
    };
    for (published, signer, allowed) in [(&k2, &k2, true), (&k2, &k3, false)] {
        let rig = rig(
            if allowed { "park-allow" } else { "park-deny" },
            300,
            3600,
            jwks_of(&[&k1]),
        );
        rig.envoy
            .wait_log("actwarden: jwks sts fetch ok", 0, Duration::from_secs(10))
            .unwrap();
        rig.wait_allowed(&k1);
        // The refetch takes 700 ms: the body is long there while the request waits.
        rig.jwks.set(
            PATH,
            Serve::Slow(700, public_jwks(&[&k1, published]).to_string()),
        );
        let token = mint(signer, &claims(ISS, AUD, "user:alice")).unwrap();
        let d = decide(&rig.envoy, &rig.via, post(&token)).unwrap();
        assert_eq!(rig.jwks.count(PATH), 2, "one refetch (log {})", rig.log());
        let seen = rig._echo.received(&d.request_id);
        if allowed {
            assert_reason(&d, "allowed", None);
            assert_eq!(seen.len(), 1, "{}", d.describe());
            assert_eq!(String::from_utf8_lossy(&seen[0].body), body);
            assert_eq!(seen[0].get("x-agent-subject"), Some("user:alice"));
        } else {
            assert_reason(&d, "kid_unknown", Some(401));
            assert!(seen.is_empty(), "a refused request reached the upstream");
        }
    }
}

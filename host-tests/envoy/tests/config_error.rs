//! A configuration error keeps the filter from loading (SPEC §2, fail closed): Envoy
//! refuses the plugin, and its log names the JSON path of the error. With a static
//! listener, Envoy 1.40 refuses the whole bootstrap: it exits with status 1 and never
//! serves a request. The same configuration, corrected, loads (also when given as a JSON
//! string holding the JSON, as `Policy::from_plugin_config` allows).

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
use actwarden_envoy_tests::fixtures::{bearer_get, claims, decide, gateway_bootstrap, mint, Via};
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::servers::EchoServer;
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::time::Duration;

fn good_config(key: &SigningKey) -> Value {
    json!({
        "providers": { "sts": { "issuer": "https://sts.e2e", "audiences": ["api"],
            "local_jwks": { "inline_string": public_jwks(&[key]).to_string() } } },
        "rules": [{ "id": "read", "match": { "path_prefix": "/" },
                    "require": { "scopes": ["invoices:read"] } }]
    })
}

/// Starts Envoy with `config` as the plugin configuration; expects it to refuse the
/// plugin. Returns the log.
fn refused(name: &str, config: &str, json_path: &str) -> String {
    let dir = paths::work_dir(&format!("config-error-{name}")).unwrap();
    let echo = EchoServer::start().unwrap();
    let bootstrap = gateway_bootstrap(config, echo.addr()).unwrap();
    let mut envoy = Envoy::spawn(&dir, &bootstrap, &Options::default()).unwrap();
    let status = envoy.wait_exit(Duration::from_secs(30)).unwrap();
    let log = envoy.log_lines().join("\n");
    let status = status.unwrap_or_else(|| {
        panic!(
            "Envoy still runs with an invalid configuration (log {}):\n{log}",
            envoy.log_path().display()
        )
    });
    assert!(!status.success(), "Envoy exited with {status}");
    let needle = format!("actwarden: configuration: {json_path}");
    let line = envoy
        .log_grep(&needle)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no log line naming {needle:?}:\n{log}"));
    assert!(line.contains("[critical]"), "not at critical: {line}");
    assert!(
        log.contains("Unable to create Wasm plugin actwarden"),
        "Envoy did not refuse the plugin:\n{log}"
    );
    assert_eq!(echo.count(), 0);
    log
}

#[test]
fn wrong_type_deep_inside_is_refused_with_its_path() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let mut config = good_config(&key);
    config["rules"][0]["require"]["scopes"][0] = json!(5);
    refused("type", &config.to_string(), "rules[0].require.scopes[0]");
}

#[test]
fn unknown_field_is_refused_with_its_path() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let mut config = good_config(&key);
    config["providers"]["sts"]["audience"] = json!("api");
    let log = refused("unknown-field", &config.to_string(), "providers.sts");
    assert!(
        log.contains("audience"),
        "the unknown field is not named:\n{log}"
    );
}

#[test]
fn bad_inline_jwks_is_refused_with_its_path() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let mut config = good_config(&key);
    config["providers"]["sts"]["local_jwks"]["inline_string"] = json!("{\"keys\": 5}");
    refused("jwks", &config.to_string(), "providers.sts.local_jwks");
}

#[test]
fn the_corrected_configuration_loads_also_as_a_json_string() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let config = good_config(&key).to_string();
    let wasm = paths::wasm().unwrap();
    let dir = paths::work_dir("config-ok").unwrap();
    let echo = EchoServer::start().unwrap();
    let as_string = Value::String(config.clone()).to_string();
    let bootstrap = boot::bootstrap(
        vec![
            boot::actwarden_listener("object", &wasm, &config, "actwarden", None),
            boot::actwarden_listener("string", &wasm, &as_string, "actwarden", None),
        ],
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr())],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let token = mint(&key, &claims("https://sts.e2e", "api", "user:alice")).unwrap();
    for listener in ["object", "string"] {
        let via = Via::Plain(envoy.listener(listener).unwrap());
        let d = decide(&envoy, &via, bearer_get("/v1/invoices", &token)).unwrap();
        assert_eq!(d.reason(), "allowed", "{listener}: {}", d.describe());
        let d = decide(&envoy, &via, bearer_get("/v1/invoices", "x.y.z")).unwrap();
        assert_eq!(
            d.reason(),
            "token_malformed",
            "{listener}: {}",
            d.describe()
        );
    }
    assert!(envoy.log_grep("actwarden: configuration:").is_empty());
}

//! The Envoy configurations, each one listener on the same port whose route answers
//! directly (no upstream), so the only difference between them is the filter chain.

use crate::workloads::{
    Family, Workload, ACTORS, AUDIENCE, AUTHORITY, ISSUER, MCP_PATH, MCP_TOOL, SCOPE,
};
use serde_json::{json, Value};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// The HTTP connection manager and a direct response: the baseline.
    NoFilter,
    /// A proxy-wasm filter that reads one header and continues (host-tests/wasm-floor).
    WasmFloor,
    /// The same filter verifying one fixed ES256 signature per request through the host's
    /// `verify_signature` (`hot` only): its cost over `wasm_floor` is one host-verified
    /// ES256 verification, the reference of the `dpop` goal (issue 13).
    WasmFloorEs256,
    /// Envoy's `jwt_authn` (iss, aud, exp, signature) + RBAC requiring the scope.
    JwtAuthn,
    /// The same with `jwt_cache_config` (verified tokens cached).
    JwtAuthnCache,
    /// actwarden with the equivalent policy (issuer, audience, expiry, scope).
    Actwarden,
    /// actwarden with a three-actor delegation chain, actor ceilings, a revocation list.
    ActwardenFull,
    /// `jwt_authn` with two workers (`--concurrency 2`), `hot` and `cold` only.
    JwtAuthn2w,
    /// `actwarden` with two workers: tokens verified on one worker are shared with the
    /// other through shared data (SPEC §8).
    Actwarden2w,
}

impl Config {
    pub const ALL: [Config; 9] = [
        Config::NoFilter,
        Config::WasmFloor,
        Config::WasmFloorEs256,
        Config::JwtAuthn,
        Config::JwtAuthnCache,
        Config::Actwarden,
        Config::ActwardenFull,
        Config::JwtAuthn2w,
        Config::Actwarden2w,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Config::NoFilter => "no_filter",
            Config::WasmFloor => "wasm_floor",
            Config::WasmFloorEs256 => "wasm_floor_es256",
            Config::JwtAuthn => "jwt_authn",
            Config::JwtAuthnCache => "jwt_authn_cache",
            Config::Actwarden => "actwarden",
            Config::ActwardenFull => "actwarden_full",
            Config::JwtAuthn2w => "jwt_authn_2w",
            Config::Actwarden2w => "actwarden_2w",
        }
    }

    /// Envoy worker threads. One worker is pinned to CPU 0 (wrk to CPU 1); two workers
    /// share both CPUs with wrk (the machine has no third), so only their ratio means much.
    pub fn concurrency(self) -> u32 {
        match self {
            Config::JwtAuthn2w | Config::Actwarden2w => 2,
            _ => 1,
        }
    }

    /// Whether it runs `workload`: the two-worker points run `hot` and `cold` only; `dpop`
    /// and `mcp` (which only actwarden decides) run on `actwarden` and its baseline;
    /// `wasm_floor_es256` (a reference, not a filter) runs `hot` only.
    pub fn runs(self, workload: Workload) -> bool {
        if self == Config::WasmFloorEs256 {
            return workload == Workload::Hot;
        }
        match workload {
            Workload::Dpop | Workload::Mcp => matches!(self, Config::NoFilter | Config::Actwarden),
            Workload::Hot | Workload::Cold => true,
            _ => self.concurrency() == 1,
        }
    }

    /// Which tokens its workloads carry.
    pub fn family(self) -> Family {
        match self {
            Config::ActwardenFull => Family::Chain,
            _ => Family::Simple,
        }
    }

    /// Whether it decides at all (`no_filter` and the `wasm_floor`s pass every request).
    pub fn decides(self) -> bool {
        !matches!(
            self,
            Config::NoFilter | Config::WasmFloor | Config::WasmFloorEs256
        )
    }
}

pub struct Modules<'a> {
    pub actwarden: &'a Path,
    pub floor: &'a Path,
}

/// The whole bootstrap of `config`: admin on 127.0.0.1:0, the listener on `port`.
pub fn bootstrap(config: Config, port: u16, modules: &Modules<'_>, jwks: &str) -> Value {
    let filters = match config {
        Config::NoFilter => vec![],
        Config::WasmFloor => vec![wasm(modules.floor, "wasm_floor", None)],
        Config::WasmFloorEs256 => vec![wasm(
            modules.floor,
            "wasm_floor_es256",
            Some("verify_es256".into()),
        )],
        Config::JwtAuthn | Config::JwtAuthn2w => vec![jwt_authn(jwks, false), rbac_scope()],
        Config::JwtAuthnCache => vec![jwt_authn(jwks, true), rbac_scope()],
        Config::Actwarden | Config::Actwarden2w => vec![wasm(
            modules.actwarden,
            "actwarden",
            Some(actwarden_policy(jwks, false)),
        )],
        Config::ActwardenFull => vec![wasm(
            modules.actwarden,
            "actwarden",
            Some(actwarden_policy(jwks, true)),
        )],
    };
    let mut http_filters = filters;
    // Every chain ends with Envoy's buffer filter: a POST (the `mcp` workload) reaches the
    // direct response whole. Without it Envoy answers at the headers and, the request
    // unfinished, closes the connection; and a filter that decides on the body must do so
    // before the answer. A GET without a body passes it at once.
    http_filters.push(json!({
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": 65536
        }
    }));
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    let hcm = json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "bench",
            "codec_type": "HTTP1",
            "route_config": {
                "name": "direct",
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{
                        "match": { "prefix": "/" },
                        "direct_response": { "status": 200, "body": { "inline_string": "ok\n" } }
                    }]
                }]
            },
            "http_filters": http_filters
        }
    });
    json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
        "static_resources": {
            "listeners": [{
                "name": "bench",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
                "filter_chains": [{ "filters": [hcm] }]
            }]
        }
    })
}

fn wasm(module: &Path, root_id: &str, configuration: Option<String>) -> Value {
    let mut config = json!({
        "name": root_id,
        "root_id": root_id,
        "fail_open": false,
        // The MCP path holds a message's headers until its body is decided (issue 12).
        "allow_on_headers_stop_iteration": true,
        "vm_config": {
            "vm_id": root_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": module.display().to_string() } }
        }
    });
    if let (Some(text), Some(obj)) = (configuration, config.as_object_mut()) {
        obj.insert(
            "configuration".into(),
            json!({ "@type": "type.googleapis.com/google.protobuf.StringValue", "value": text }),
        );
    }
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": config
        }
    })
}

/// `jwt_authn` checking what actwarden's equivalent policy checks: signature (ES256, the
/// inline JWKS), `iss`, `aud`, `exp`/`nbf` with 60 s skew. The payload goes to dynamic
/// metadata with `scope` split on spaces, for RBAC.
fn jwt_authn(jwks: &str, cache: bool) -> Value {
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": { "inline_string": jwks },
        "clock_skew_seconds": 60,
        "payload_in_metadata": "jwt_payload",
        "normalize_payload_in_metadata": { "space_delimited_claims": ["scope"] }
    });
    if let (true, Some(obj)) = (cache, provider.as_object_mut()) {
        // Envoy's default size, said explicitly: the cold workload cycles through more.
        obj.insert("jwt_cache_config".into(), json!({ "jwt_cache_size": 100 }));
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "bench": provider },
            "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "bench" } }]
        }
    })
}

/// RBAC allowing only requests whose verified payload has `SCOPE` among its scopes.
fn rbac_scope() -> Value {
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "ALLOW",
                "policies": {
                    "scope": {
                        "permissions": [{ "any": true }],
                        "principals": [{ "metadata": {
                            "filter": "envoy.filters.http.jwt_authn",
                            "path": [{ "key": "jwt_payload" }, { "key": "scope" }],
                            "value": { "list_match": { "one_of": { "string_match": { "exact": SCOPE } } } }
                        } }]
                    }
                }
            }
        }
    })
}

/// actwarden's policy (SPEC §2). `full`: the route also requires a human subject acting
/// through the three allowed actors, each with a scope ceiling, a revocation list of
/// realistic size is consulted, and every decision is logged.
pub fn actwarden_policy(jwks: &str, full: bool) -> String {
    let provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": { "inline_string": jwks },
        "algorithms": ["ES256", "RS256"],
        "clock_skew_s": 60,
        "max_lifetime_s": 86400,
        // The `dpop` workload (issue 13): DPoP accepted, bearer tokens too. The window
        // holds every proof of a point (up to BENCH_DPOP_RPS × 12 s) without filling.
        "dpop": { "mode": "allowed", "algorithms": ["ES256"], "max_age_s": 60,
                  "replay_window_entries": 1_048_576 }
    });
    // jwt_authn writes nothing per request; the equivalent policy logs denials only
    // (`audit.log`), `actwarden_full` every decision (the default). The `mcp` workload's
    // tool call (issue 12) is allowed by a rule of its own with an argument cap.
    let mut policy = json!({
        "providers": { "bench": provider },
        "mcp": { "endpoints": [MCP_PATH], "resource": format!("https://{AUTHORITY}{MCP_PATH}") },
        "rules": [
            { "id": "tools", "match": { "mcp": { "methods": ["tools/call"], "names": [MCP_TOOL] } },
              "providers": ["bench"],
              "require": { "scopes": [SCOPE], "arguments": [{ "pointer": "/limit", "max": 100 }] } },
            { "id": "invoices", "match": { "path_prefix": "/" }, "providers": ["bench"],
              "require": { "scopes": [SCOPE] } }
        ],
        "on_no_match": "deny",
        "audit": { "log": "denials" }
    });
    if full {
        let actors: serde_json::Map<String, Value> = ACTORS
            .iter()
            .map(|a| {
                (
                    (*a).to_owned(),
                    json!({ "max_scopes": [SCOPE, "invoices:write"] }),
                )
            })
            .collect();
        let revoked_jti: Vec<String> = (0..256).map(|n| format!("revoked-{n}")).collect();
        let revoked_subjects: Vec<String> =
            (0..64).map(|n| format!("gone-{n}@bench.example")).collect();
        policy["identity"] = json!({
            "trust_domains": ["prod.bench.example"],
            "human_profiles": ["user"],
            "max_chain_depth": 4,
            "actors": actors
        });
        policy["audit"] = json!({ "log": "all" });
        policy["revoked"] = json!({
            "jti": revoked_jti,
            "subjects": revoked_subjects,
            "actors": ["spiffe://prod.bench.example/agent/retired"]
        });
        policy["rules"] = json!([{
            "id": "invoices", "match": { "path_prefix": "/", "methods": ["GET"] },
            "providers": ["bench"],
            "require": { "scopes": [SCOPE], "human_subject": true, "delegated": true,
                         "actors": ACTORS, "max_chain_depth": 3 }
        }]);
    }
    policy.to_string()
}

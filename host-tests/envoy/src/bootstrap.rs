//! Envoy bootstrap documents with the actwarden filter. Every listener and the admin
//! interface bind 127.0.0.1 port 0; [`crate::envoy::Envoy`] learns the ports from admin
//! `/listeners`, so tests running in parallel never race for a port.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

/// The name of the cluster of the echo upstream in every bootstrap built here.
pub const UPSTREAM_CLUSTER: &str = "upstream";

/// The actwarden HTTP filter (README: "Running actwarden in Envoy and Istio"): `config` is the SPEC §2 JSON text.
pub fn wasm_filter(wasm: &Path, config: &str, vm_id: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "actwarden",
                "root_id": "actwarden",
                "fail_open": false,
                "allow_on_headers_stop_iteration": true,
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": wasm.display().to_string() } }
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config
                }
            }
        }
    })
}

/// An HTTP connection manager routing everything to [`UPSTREAM_CLUSTER`] through `filters`
/// (the router is appended). Request headers up to 96 KiB (the oversized-token cases).
pub fn http_connection_manager(stat_prefix: &str, filters: Vec<Value>) -> Value {
    let mut http_filters = filters;
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "max_request_headers_kb": 96,
            "preserve_external_request_id": true,
            "route_config": {
                "name": "all",
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{ "match": { "prefix": "/" },
                                 "route": { "cluster": UPSTREAM_CLUSTER, "timeout": "10s" } }]
                }]
            },
            "http_filters": http_filters
        }
    })
}

/// A TLS transport socket for a listener: the server certificate, and when `client_ca` is
/// given, client certificates are requested and verified against it (required or not).
pub fn downstream_tls(
    cert_pem: &str,
    key_pem: &str,
    client_ca: Option<&str>,
    require_client_certificate: bool,
) -> Value {
    let mut common = json!({
        "tls_certificates": [{
            "certificate_chain": { "inline_string": cert_pem },
            "private_key": { "inline_string": key_pem }
        }]
    });
    if let (Some(ca), Some(obj)) = (client_ca, common.as_object_mut()) {
        obj.insert(
            "validation_context".into(),
            json!({ "trusted_ca": { "inline_string": ca } }),
        );
    }
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": require_client_certificate,
            "common_tls_context": common
        }
    })
}

/// A listener on 127.0.0.1, port 0.
pub fn listener(name: &str, hcm: Value, tls: Option<Value>) -> Value {
    let mut chain = json!({ "filters": [hcm] });
    if let (Some(tls), Some(obj)) = (tls, chain.as_object_mut()) {
        obj.insert("transport_socket".into(), tls);
    }
    json!({
        "name": name,
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
        "filter_chains": [chain]
    })
}

/// A listener with the actwarden filter (plain HTTP, or TLS with `tls`).
pub fn actwarden_listener(
    name: &str,
    wasm: &Path,
    config: &str,
    vm_id: &str,
    tls: Option<Value>,
) -> Value {
    listener(
        name,
        http_connection_manager(name, vec![wasm_filter(wasm, config, vm_id)]),
        tls,
    )
}

/// The listener with its HTTP connection manager's `max_request_headers_kb` set to `kb`
/// (Envoy allows up to 8192).
pub fn with_max_request_headers_kb(mut listener: Value, kb: u32) -> Value {
    if let Some(chains) = listener
        .get_mut("filter_chains")
        .and_then(Value::as_array_mut)
    {
        for chain in chains {
            for filter in chain
                .get_mut("filters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(tc) = filter
                    .get_mut("typed_config")
                    .and_then(Value::as_object_mut)
                {
                    if tc.contains_key("max_request_headers_kb") {
                        tc.insert("max_request_headers_kb".into(), json!(kb));
                    }
                }
            }
        }
    }
    listener
}

/// A static cluster of one endpoint.
pub fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                "address": addr.ip().to_string(), "port_value": addr.port() } } } }] }]
        }
    })
}

/// The whole bootstrap: admin on 127.0.0.1:0, these listeners and clusters.
pub fn bootstrap(listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
        "static_resources": { "listeners": listeners, "clusters": clusters }
    })
}

#!/usr/bin/env python3
"""Validate everything under gateway-configs/envoy/ and gateway-configs/istio/.

    .venv/bin/python host-tests/configs/check_gateway_configs.py [--wasm FILE]

(`make check-gateway-configs` runs it after `make setup-envoy wasm`.) Needs PyYAML and
jsonschema (in .venv, installed by scripts/setup-envoy.sh), Envoy at .venv/bin/envoy (or
$ENVOY_BIN), dist/actwarden.wasm (`make wasm`) and the CLI target/debug/actwarden (built
here with cargo when missing). One line per check, then
`gateway-config checks: N passed, M failed`; exit 1 when any check failed.

What is checked:

(a) Envoy: `envoy --mode validate -c FILE` for every gateway-configs/envoy/*.yaml, run from
    the repository root because the configs use repository-relative paths. Validate mode
    DOES load the wasm module and calls its on_configure (Envoy 1.40: a missing file is
    "Invalid path: dist/actwarden.wasm"; a module that refuses its configuration makes
    validation fail with "Unable to create Wasm plugin actwarden"), so dist/actwarden.wasm
    must exist and be the real filter. Negative controls: a config routing to an undefined
    cluster, one with an unknown field, and one whose pluginConfig is invalid (the filter
    must refuse it and log `actwarden: configuration: on_no_match: ...`) must all FAIL
    validation. `--wasm FILE` runs Envoy from a scratch directory whose
    dist/actwarden.wasm is FILE (to try a build without touching dist/).
    Also: the structure the README promises (listeners, mTLS that requires a client
    certificate, wasm filter before the router, clusters named by remote_jwks exist, access
    log fields) and the demo PKI (chain, SANs, key/cert pairs, validity), checked with an
    in-memory TLS handshake using only the standard library.
(b) Istio: every document in gateway-configs/istio/*.yaml validated with jsonschema against
    the openAPIV3Schema of the CRD with the same group, version and kind, from
    host-tests/configs/istio-crds/crds.yaml. The CRD schema is made a JSON Schema the way
    the API server reads it: objects with `properties` and without
    `x-kubernetes-preserve-unknown-fields` reject unknown fields (as `kubectl apply
    --validate=strict`, kubectl's default, does), `nullable: true` admits null, other
    `x-kubernetes-*` keys are dropped. CEL rules (`x-kubernetes-validations`) cannot be run
    by jsonschema; the ones on the paths our manifests use are re-implemented in
    CEL_RULES (matched by their message) and an unknown rule on such a path fails the
    check, so a CRD update cannot silently skip one. Negative controls prove the validator
    rejects what the API server would (bad enum, unknown field, wrong type, a CEL rule).
(c) The pluginConfig JSON: envoy.yaml embeds exactly gateway-configs/envoy/actwarden.json
    (parsed JSON equality), the WasmPlugin carries the same document except for the JWKS
    cluster/uri, which must be Istio's `outbound|PORT||HOST` of the ServiceEntry, and each
    of them passes `actwarden lint`.
(d) The WasmPlugin runs in phase AUTHN with failStrategy FAIL_CLOSE (and the other settings
    its README relies on).
(f) gateway-configs/mcp/ (SPEC §9, an MCP server behind actwarden): envoy.yaml passes
    `envoy --mode validate` and embeds exactly mcp/actwarden.json, which passes `actwarden
    lint` without warnings (its `mcp.resource` is a provider audience) and gives RFC 9728
    metadata (`actwarden metadata`); envoyfilter.yaml (Istio; the WasmPlugin API cannot set
    `allow_on_headers_stop_iteration`) has the two patches of the ECDS pattern, carries the
    same document modulo the JWKS cluster with the flag set, and its Wasm filter passes
    `envoy --mode validate` with the module as a local file.
(e) scripts/wasm_imports.py: its unit tests (host-tests/configs/test_wasm_imports.py), and
    the import check on dist/actwarden.wasm when it exists.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import traceback
import unittest
from urllib.parse import urlsplit

import jsonschema
import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENVOY_DIR = os.path.join(ROOT, "gateway-configs", "envoy")
ISTIO_DIR = os.path.join(ROOT, "gateway-configs", "istio")
CERTS = os.path.join(ENVOY_DIR, "certs")
CRDS = os.path.join(HERE, "istio-crds", "crds.yaml")
ACTWARDEN_JSON = os.path.join(ENVOY_DIR, "actwarden.json")
ENVOY_YAML = os.path.join(ENVOY_DIR, "envoy.yaml")
MCP_DIR = os.path.join(ROOT, "gateway-configs", "mcp")
WASMPLUGIN_YAML = os.path.join(ISTIO_DIR, "wasmplugin.yaml")
DIST_WASM = "dist/actwarden.wasm"  # as written in envoy.yaml, relative to the repo root
WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager")
ISTIO_JWKS_CLUSTER = "outbound|80||sts.example.internal"

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))


class CheckFailed(Exception):
    pass


def expect(cond: bool, why: str) -> None:
    if not cond:
        raise CheckFailed(why)


# --- reporting ---------------------------------------------------------------------------
RESULTS: list[tuple[str, bool]] = []


def check(name: str):
    """Decorator-free runner: check(name)(fn) runs fn, prints one line, records the result."""
    def run(fn, *args):
        try:
            note = fn(*args)
            RESULTS.append((name, True))
            print(f"ok    {name}" + (f" ({note})" if note else ""))
        except CheckFailed as e:
            RESULTS.append((name, False))
            print(f"FAIL  {name}: {e}")
        except Exception as e:  # a bug in the check itself is a failure too, never a pass
            RESULTS.append((name, False))
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3, file=sys.stdout)
        sys.stdout.flush()
    return run


# --- helpers -----------------------------------------------------------------------------
def load_yaml_docs(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def walk(node, fn, path="$"):
    """Call fn(node, path) on every dict in a parsed YAML/JSON tree."""
    if isinstance(node, dict):
        fn(node, path)
        for k, v in node.items():
            walk(v, fn, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, fn, f"{path}[{i}]")


def wasm_filters(envoy_cfg) -> list[tuple[str, dict]]:
    found = []
    walk(envoy_cfg, lambda d, p: found.append((p, d["typed_config"]))
         if d.get("name") == "envoy.filters.http.wasm"
         and isinstance(d.get("typed_config"), dict) else None)
    return found


def plugin_json(filter_typed_config: dict):
    conf = filter_typed_config["config"]["configuration"]
    expect(conf.get("@type") == "type.googleapis.com/google.protobuf.StringValue",
           f"configuration @type is {conf.get('@type')!r}, want google.protobuf.StringValue")
    return json.loads(conf["value"])


def remote_jwks(cfg) -> dict[str, dict]:
    return {name: p["remote_jwks"]["http_uri"]
            for name, p in cfg.get("providers", {}).items() if "remote_jwks" in p}


class Env:
    envoy = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv", "bin", "envoy")
    actwarden = os.path.join(ROOT, "target", "debug", "actwarden")
    cwd = ROOT  # where Envoy runs (repo root, or a scratch root with --wasm)
    tmp = ""


def envoy_validate(config_path: str) -> tuple[int, str]:
    cmd = [Env.envoy, "--mode", "validate", "-c", config_path, "--disable-hot-restart",
           "-l", "info"]
    res = subprocess.run(cmd, cwd=Env.cwd, capture_output=True, text=True, timeout=180)
    return res.returncode, res.stdout + res.stderr


def last_errors(log: str, n: int = 3) -> str:
    lines = [l for l in log.splitlines() if "[critical]" in l or "[error]" in l]
    return " | ".join(l.split("] ", 3)[-1] for l in lines[-n:]) or log.strip()[-400:]


def write_tmp(name: str, text: str) -> str:
    path = os.path.join(Env.tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def lint(cfg, label: str) -> str:
    path = write_tmp(f"lint-{label}.json", json.dumps(cfg))
    res = subprocess.run([Env.actwarden, "lint", "--config", path], capture_output=True, text=True)
    expect(res.returncode == 0, f"actwarden lint exit {res.returncode}: {res.stderr.strip()}")
    return res.stdout.strip()


# --- (a) Envoy ---------------------------------------------------------------------------
def check_envoy_validate(path: str):
    wasm = os.path.join(Env.cwd, DIST_WASM)
    expect(os.path.isfile(wasm), f"{wasm} missing: run `make wasm` first (validate mode loads it)")
    rc, log = envoy_validate(os.path.relpath(path, ROOT))
    expect(rc == 0, f"envoy --mode validate exit {rc}: {last_errors(log)}")
    expect(re.search(r"^configuration '.*' OK$", log, re.M), "no `configuration '...' OK` line")


def envoy_text_with(replace_from: str, replace_to: str) -> str:
    with open(ENVOY_YAML, encoding="utf-8") as f:
        text = f.read()
    expect(replace_from in text, f"{replace_from!r} not in envoy.yaml (update the negative control)")
    return text.replace(replace_from, replace_to, 1)


def check_envoy_rejects(label: str, text: str, must_mention: str):
    rc, log = envoy_validate(write_tmp(f"broken-{label}.yaml", text))
    expect(rc != 0, "Envoy ACCEPTED the broken config (exit 0)")
    expect(must_mention in log, f"rejected, but not for the planted fault (want {must_mention!r} "
                                f"in the log): {last_errors(log)}")


def check_envoy_structure():
    cfg = load_yaml_docs(ENVOY_YAML)[0]
    admin = cfg["admin"]["address"]["socket_address"]
    expect((admin["address"], admin["port_value"]) == ("127.0.0.1", 9901), f"admin at {admin}")
    listeners = {l["name"]: l for l in cfg["static_resources"]["listeners"]}
    ports = {n: (l["address"]["socket_address"]["address"], l["address"]["socket_address"]["port_value"])
             for n, l in listeners.items()}
    expect(ports == {"http": ("127.0.0.1", 10000), "mtls": ("127.0.0.1", 10443)}, f"listeners {ports}")
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    for name, port in (("upstream", 18080), ("sts", 18081)):
        expect(name in clusters, f"cluster {name} missing")
        addr = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        expect(addr["socket_address"] == {"address": "127.0.0.1", "port_value": port},
               f"cluster {name} -> {addr}")
    # mTLS listener: a client certificate is required and validated against the demo CA.
    ts = listeners["mtls"]["filter_chains"][0]["transport_socket"]["typed_config"]
    expect(ts.get("require_client_certificate") is True, "mtls: require_client_certificate is not true")
    vc = ts["common_tls_context"]["validation_context"]
    expect(vc.get("trusted_ca", {}).get("filename") == "gateway-configs/envoy/certs/ca.pem",
           f"mtls: trusted_ca {vc.get('trusted_ca')}")
    expect("transport_socket" not in listeners["http"]["filter_chains"][0], "http listener has TLS")
    # Every HCM: headers limit, access log fields, wasm filter first and the router last.
    hcms = []
    walk(cfg, lambda d, p: hcms.append((p, d)) if d.get("@type") == HCM_TYPE else None)
    expect(len(hcms) == 2, f"{len(hcms)} http_connection_managers, want 2")
    for p, hcm in hcms:
        expect(hcm.get("max_request_headers_kb") == 96, f"{p}: max_request_headers_kb")
        names = [f["name"] for f in hcm["http_filters"]]
        expect(names == ["envoy.filters.http.wasm", "envoy.filters.http.router"], f"{p}: filters {names}")
        fmt = json.dumps(hcm["access_log"])
        for field in ("%RESPONSE_CODE%", "%RESPONSE_CODE_DETAILS%", "%REQ(X-AGENT-SUBJECT)%"):
            expect(field in fmt, f"{p}: access log lacks {field}")
    # Every wasm filter: the shipped module, fail closed, one shared VM.
    filters = wasm_filters(cfg)
    expect(len(filters) == 2, f"{len(filters)} wasm filters, want 2 (one per listener)")
    for p, tc in filters:
        expect(tc.get("@type") == WASM_FILTER_TYPE, f"{p}: @type {tc.get('@type')}")
        c = tc["config"]
        vm = c["vm_config"]
        got = (c.get("name"), c.get("root_id"), c.get("fail_open", False), vm.get("vm_id"),
               vm.get("runtime"), vm["code"]["local"].get("filename"))
        want = ("actwarden", "actwarden", False, "actwarden", "envoy.wasm.runtime.v8", DIST_WASM)
        expect(got == want, f"{p}: {got} != {want}")
        expect(c.get("allow_on_headers_stop_iteration") is True,
               f"{p}: allow_on_headers_stop_iteration is not true (MCP messages need it)")
        for provider, uri in remote_jwks(plugin_json(tc)).items():
            expect(uri["cluster"] in clusters,
                   f"{p}: provider {provider} fetches its JWKS through cluster "
                   f"{uri['cluster']!r}, which envoy.yaml does not define")
    return f"{len(filters)} wasm filters, {len(clusters)} clusters"


def check_demo_pki():
    """Chain, SANs, key pairs and lifetime of the demo certificates; stdlib only."""
    def decode(name):
        return ssl._ssl._test_decode_cert(os.path.join(CERTS, name))  # pylint: disable=protected-access

    def lifetime_years(info):
        a = dt.datetime.strptime(info["notBefore"], "%b %d %H:%M:%S %Y %Z")
        b = dt.datetime.strptime(info["notAfter"], "%b %d %H:%M:%S %Y %Z")
        return (b - a).days / 365.25, a, b

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    want_sans = {
        "server.pem": {("DNS", "localhost"), ("IP Address", "127.0.0.1")},
        "orchestrator.pem": {("URI", "spiffe://prod.example.com/agent/orchestrator")},
        "billing.pem": {("URI", "spiffe://prod.example.com/agent/billing")},
    }
    for name in ["ca.pem", *want_sans]:
        info = decode(name)
        years, a, b = lifetime_years(info)
        expect(years >= 20, f"{name}: valid {years:.1f} years, want >= 20")
        expect(a <= now < b, f"{name}: not valid now ({a} .. {b})")
        if name in want_sans:
            expect(set(info.get("subjectAltName", ())) == want_sans[name],
                   f"{name}: SANs {info.get('subjectAltName')}")
    # An in-memory mTLS handshake per client: server.pem + its key, client cert + its key,
    # both verified against ca.pem, hostname localhost. Fails on any mismatch.
    ca = os.path.join(CERTS, "ca.pem")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(CERTS, "server.pem"), os.path.join(CERTS, "server.DEMO-ONLY.key.pem"))
    server.load_verify_locations(ca)
    server.verify_mode = ssl.CERT_REQUIRED
    for agent in ("orchestrator", "billing"):
        client = ssl.create_default_context(cafile=ca)
        client.load_cert_chain(os.path.join(CERTS, f"{agent}.pem"),
                               os.path.join(CERTS, f"{agent}.DEMO-ONLY.key.pem"))
        peer = handshake(client, server, "localhost")
        uris = [v for k, v in peer.get("subjectAltName", ()) if k == "URI"]
        expect(uris == [f"spiffe://prod.example.com/agent/{agent}"], f"{agent}: peer SANs {uris}")
    # And the negative: a client without a certificate is refused by a server requiring one.
    try:
        handshake(ssl.create_default_context(cafile=ca), server, "localhost")
        raise CheckFailed("handshake without a client certificate succeeded")
    except ssl.SSLError:
        pass
    return "CA, server and 2 SPIFFE client certificates; mTLS handshakes verified"


def handshake(client_ctx, server_ctx, hostname):
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done_c = done_s = False
    for _ in range(20):
        for side, name in ((c, "c"), (s, "s")):
            if (name == "c" and done_c) or (name == "s" and done_s):
                continue
            try:
                side.do_handshake()
                if name == "c":
                    done_c = True
                else:
                    done_s = True
            except ssl.SSLWantReadError:
                pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if done_c and done_s:
            # TLS 1.3: the server verifies the client certificate after the client finished;
            # a round trip of application data surfaces a rejection on both sides.
            c.write(b"ping")
            s_in.write(c_out.read())
            expect(s.read(4) == b"ping", "no data after handshake")
            return s.getpeercert()
    raise CheckFailed("TLS handshake did not complete")


# --- (b) Istio CRD schemas ---------------------------------------------------------------
def k8s_schema(node):
    """A CRD structural schema as the API server applies it, as a JSON Schema."""
    if isinstance(node, list):
        return [k8s_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k.startswith("x-kubernetes-") or k == "nullable":
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {name: k8s_schema(s) for name, s in v.items()}
        elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[k] = k8s_schema(v)
        else:
            out[k] = v
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def load_crds() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> the version's openAPIV3Schema (original, with x-kubernetes-*)."""
    out = {}
    for crd in load_yaml_docs(CRDS):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served", True):
                out[(group, v["name"], kind)] = v["schema"]["openAPIV3Schema"]
    return out


def manifest_schema(crd_schema: dict) -> dict:
    schema = k8s_schema(crd_schema)
    schema["properties"] = dict(schema.get("properties", {}))
    schema["properties"].update({
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "minLength": 1},
                                    "namespace": {"type": "string"},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "annotations": {"type": "object",
                                                    "additionalProperties": {"type": "string"}}}},
    })
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["additionalProperties"] = False
    return schema


def _port_ok(v):
    return isinstance(v, int) and 0 < v <= 65535


def _url_scheme_ok(v):
    scheme = urlsplit(v).scheme if "://" in v else ""
    return scheme in ("", "http", "https", "oci", "file")


# CEL rules (x-kubernetes-validations) re-implemented, keyed by their message.
CEL_RULES = {
    "only one of targetRefs or selector can be set":
        lambda s: sum(k in s for k in ("selector", "targetRef", "targetRefs")) <= 1,
    "url must have schema one of [http, https, file, oci]": _url_scheme_ok,
    "wildcard not allowed in label value match": lambda s: "*" not in s,
    "wildcard not allowed in label key match": lambda s: all("*" not in k for k in s),
    "key must not be empty": lambda s: all(k != "" for k in s),
    "port must be between 1-65535": _port_ok,
    "port number cannot be duplicated":
        lambda s: len({p.get("number") for p in s}) == len(s),
    "only one of WorkloadSelector or Endpoints can be set":
        lambda s: not ("workloadSelector" in s and "endpoints" in s),
    "CIDR addresses are allowed only for NONE/STATIC resolution types":
        lambda s: not (any("/" in a for a in s.get("addresses", []))
                       and s.get("resolution", "NONE") not in ("STATIC", "NONE")),
    "NONE mode cannot set endpoints":
        lambda s: s.get("resolution", "NONE") != "NONE" or "endpoints" not in s,
    "DNS_ROUND_ROBIN mode cannot have multiple endpoints":
        lambda s: s.get("resolution", "") != "DNS_ROUND_ROBIN" or len(s.get("endpoints", [])) <= 1,
    "hostname cannot be wildcard": lambda s: s != "*",
}


def cel_errors(schema, inst, path="$") -> list[str]:
    errs = []
    for rule in schema.get("x-kubernetes-validations", []) or []:
        fn = CEL_RULES.get(rule.get("message"))
        if fn is None:
            errs.append(f"{path}: CEL rule not implemented by this checker: {rule}")
        elif not fn(inst):
            errs.append(f"{path}: {rule['message']}")
    if isinstance(inst, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in inst.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                errs += cel_errors(sub, v, f"{path}.{k}")
    elif isinstance(inst, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(inst):
            errs += cel_errors(schema["items"], v, f"{path}[{i}]")
    return errs


def istio_errors(doc, crds) -> list[str]:
    group, _, version = doc.get("apiVersion", "").rpartition("/")
    key = (group, version, doc.get("kind"))
    if key not in crds:
        return [f"no CRD for {doc.get('apiVersion')} {doc.get('kind')} in {os.path.relpath(CRDS, ROOT)}"]
    validator = jsonschema.Draft7Validator(manifest_schema(crds[key]))
    errs = [f"{'.'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))]
    return errs + cel_errors(crds[key], doc)


def check_istio_manifest(path, index, doc, crds):
    errs = istio_errors(doc, crds)
    expect(not errs, "; ".join(errs[:5]))
    return f"{doc['apiVersion']} {doc['kind']} {doc['metadata']['name']}"


def check_istio_rejects(doc, crds, mutate, want_in_error):
    bad = copy.deepcopy(doc)
    mutate(bad)
    errs = istio_errors(bad, crds)
    expect(errs, "the validator ACCEPTED an invalid manifest: it is vacuous")
    expect(any(want_in_error in e for e in errs), f"rejected, but not for the planted fault: {errs[:3]}")
    return errs[0][:100]


# --- (c) pluginConfig --------------------------------------------------------------------
def check_envoy_plugin_config_equal():
    want = load_json(ACTWARDEN_JSON)
    filters = wasm_filters(load_yaml_docs(ENVOY_YAML)[0])
    expect(filters, "no wasm filter in envoy.yaml")
    for p, tc in filters:
        expect(plugin_json(tc) == want, f"{p}: configuration differs from actwarden.json")
    return f"{len(filters)} filters embed actwarden.json"


def check_istio_plugin_config(istio_docs):
    envoy_cfg = load_json(ACTWARDEN_JSON)
    wp = find_kind(istio_docs, "WasmPlugin")
    cfg = copy.deepcopy(wp["spec"]["pluginConfig"])
    istio_uris, envoy_uris = remote_jwks(cfg), remote_jwks(envoy_cfg)
    expect(istio_uris.keys() == envoy_uris.keys() and istio_uris,
           f"remote_jwks providers differ: {sorted(istio_uris)} vs {sorted(envoy_uris)}")
    se = find_kind(istio_docs, "ServiceEntry")
    for name, uri in istio_uris.items():
        m = re.fullmatch(r"outbound\|(\d+)\|([^|]*)\|(.+)", uri["cluster"])
        expect(m is not None, f"{name}: cluster {uri['cluster']!r} is not outbound|PORT|SUBSET|HOST")
        port, host = int(m.group(1)), m.group(3)
        expect(uri["cluster"] == ISTIO_JWKS_CLUSTER, f"{name}: cluster {uri['cluster']}")
        expect(host in se["spec"]["hosts"], f"{name}: {host} not a ServiceEntry host")
        se_ports = {p["number"]: p for p in se["spec"]["ports"]}
        expect(port in se_ports and se_ports[port].get("protocol") == "HTTP",
               f"{name}: ServiceEntry has no HTTP port {port}")
        expect(urlsplit(uri["uri"]).hostname == host, f"{name}: uri host of {uri['uri']} != {host}")
        # Modulo the JWKS cluster and uri, the document is the Envoy one.
        uri["cluster"], uri["uri"] = envoy_uris[name]["cluster"], envoy_uris[name]["uri"]
    expect(cfg == envoy_cfg, "WasmPlugin pluginConfig differs from gateway-configs/envoy/actwarden.json "
                             "beyond the JWKS cluster/uri")
    return f"same as actwarden.json except cluster {ISTIO_JWKS_CLUSTER}"


def check_istio_cluster_visible(istio_docs):
    """The cluster exists in the proxies running the plugin; TLS is originated for it."""
    wp, se, dr = (find_kind(istio_docs, k) for k in ("WasmPlugin", "ServiceEntry", "DestinationRule"))
    ns = wp["metadata"]["namespace"]
    for obj in (se, dr):
        export = obj["spec"].get("exportTo", ["*"])
        visible = "*" in export or ns in export or ("." in export and obj["metadata"]["namespace"] == ns)
        expect(visible, f"{obj['kind']} {obj['metadata']['name']} not exported to namespace {ns}")
    expect(se["spec"].get("location") == "MESH_EXTERNAL" and se["spec"].get("resolution") == "DNS",
           "ServiceEntry should be MESH_EXTERNAL with DNS resolution")
    expect(dr["spec"]["host"] in se["spec"]["hosts"], "DestinationRule host is not the ServiceEntry host")
    tls = {s["port"]["number"]: s["tls"] for s in dr["spec"]["trafficPolicy"]["portLevelSettings"]}
    port = int(ISTIO_JWKS_CLUSTER.split("|")[1])
    expect(tls.get(port, {}).get("mode") == "SIMPLE", f"no TLS origination on port {port}")
    se_port = {p["number"]: p for p in se["spec"]["ports"]}[port]
    expect(se_port.get("targetPort") == 443, "ServiceEntry port 80 does not target 443")
    return f"namespace {ns}; port {port} -> TLS to 443"


def find_kind(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    expect(len(found) == 1, f"{len(found)} {kind} documents in gateway-configs/istio/, want 1")
    return found[0]


# --- (d) WasmPlugin settings -------------------------------------------------------------
def check_wasmplugin_settings(istio_docs):
    spec = find_kind(istio_docs, "WasmPlugin")["spec"]
    expect(spec.get("phase") == "AUTHN", f"phase {spec.get('phase')!r}, want AUTHN")
    expect(spec.get("failStrategy") == "FAIL_CLOSE", f"failStrategy {spec.get('failStrategy')!r}, want FAIL_CLOSE")
    expect(spec.get("url", "").startswith("oci://"), f"url {spec.get('url')}")
    expect(spec.get("imagePullPolicy") == "IfNotPresent", "imagePullPolicy")
    expect(spec.get("selector", {}).get("matchLabels") == {"app": "payments-api"}, "selector")
    expect(spec.get("pluginName") == "actwarden", "pluginName (Envoy root_id) is not actwarden")
    expect(spec.get("match") == [{"mode": "SERVER"}], "match should be [{mode: SERVER}] (inbound only)")
    return "AUTHN, FAIL_CLOSE, inbound only"


# --- (e) wasm imports --------------------------------------------------------------------
def run_wasm_import_tests():
    import test_wasm_imports  # noqa: E402  (host-tests/configs/)
    suite = unittest.defaultTestLoader.loadTestsFromModule(test_wasm_imports)
    for test in iter_tests(suite):
        name = f"wasm_imports: {test.id().rsplit('.', 1)[-1]}"

        def run_one(t=test):
            res = unittest.TestResult()
            t.run(res)
            problems = res.failures + res.errors
            expect(not problems, problems[0][1].strip().splitlines()[-1] if problems else "")
            if res.skipped:
                return f"skipped: {res.skipped[0][1]}"
            return None
        check(name)(run_one)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def check_dist_imports():
    import wasm_imports  # noqa: E402  (scripts/)
    with open(os.path.join(Env.cwd, DIST_WASM), "rb") as f:
        imports = wasm_imports.parse_imports(f.read())
    bad = wasm_imports.offenders(imports)
    expect(not bad, "disallowed imports: " + ", ".join(map(str, bad)))
    return f"{len(imports)} imports"


# --- main --------------------------------------------------------------------------------
def ensure_cli():
    if not os.access(Env.actwarden, os.X_OK):
        print("building target/debug/actwarden (cargo build --features cli)")
        subprocess.run(["cargo", "build", "-q", "--features", "cli"], cwd=ROOT, check=False)


# --- (f) gateway-configs/mcp/ -------------------------------------------------------------
def check_mcp_example(crds, expect_envoy):
    cfg_path = os.path.join(MCP_DIR, "actwarden.json")
    envoy_path = os.path.join(MCP_DIR, "envoy.yaml")
    want = load_json(cfg_path)
    if expect_envoy:
        check("envoy --mode validate gateway-configs/mcp/envoy.yaml")(check_envoy_validate, envoy_path)

    def embeds():
        filters = wasm_filters(load_yaml_docs(envoy_path)[0])
        expect(filters, "no wasm filter in mcp/envoy.yaml")
        for p, tc in filters:
            expect(plugin_json(tc) == want, f"{p}: configuration differs from mcp/actwarden.json")
            expect(tc["config"].get("allow_on_headers_stop_iteration") is True,
                   f"{p}: allow_on_headers_stop_iteration is not true")
        return f"{len(filters)} filter(s)"

    check("mcp/envoy.yaml embeds exactly gateway-configs/mcp/actwarden.json")(embeds)
    if expect_envoy:
        # Envoy knows the flag: the same file with its name misspelled is refused.
        text = open(envoy_path, encoding="utf-8").read()
        check("envoy rejects a misspelled allow_on_headers_stop_iteration (negative control)")(
            check_envoy_rejects, "mcp-flag", text.replace("allow_on_headers_stop_iteration:",
                                                          "allow_on_headers_stop_iteratio:"),
            "allow_on_headers_stop_iteratio")

    def lint_clean():
        r = subprocess.run([Env.actwarden, "lint", "--config", cfg_path], capture_output=True, text=True)
        expect(r.returncode == 0, f"lint exit {r.returncode}: {r.stderr}")
        expect("warning" not in r.stderr, f"lint warns: {r.stderr}")
        m = subprocess.run([Env.actwarden, "metadata", "--config", cfg_path], capture_output=True, text=True)
        expect(m.returncode == 0, f"metadata exit {m.returncode}: {m.stderr}")
        doc = json.loads(m.stdout)
        expect(doc["resource"] == want["mcp"]["resource"], f"metadata resource {doc['resource']}")
        return f"scopes_supported {doc['scopes_supported']}"

    check("actwarden lint + metadata gateway-configs/mcp/actwarden.json")(lint_clean)
    # Istio: an EnvoyFilter (the WasmPlugin API cannot set allow_on_headers_stop_iteration).
    ef_path = os.path.join(MCP_DIR, "envoyfilter.yaml")
    ef_docs = load_yaml_docs(ef_path)
    check("mcp/envoyfilter.yaml: EXTENSION_CONFIG ADD + HTTP_FILTER INSERT_FIRST, inbound, same name")(
        check_mcp_envoyfilter_shape, ef_docs)

    def same_config():
        c = mcp_envoyfilter_wasm(ef_docs)["config"]
        cfg = json.loads(c["configuration"]["value"])
        for name, uri in remote_jwks(cfg).items():
            expect(uri["cluster"] == ISTIO_JWKS_CLUSTER, f"{name}: cluster {uri['cluster']}")
            uri["cluster"] = remote_jwks(want)[name]["cluster"]
        expect(cfg == want, "configuration differs from mcp/actwarden.json beyond the JWKS cluster")
        got = (c.get("name"), c.get("root_id"), c.get("fail_open"), c.get("allow_on_headers_stop_iteration"))
        expect(got == ("actwarden", "actwarden", False, True),
               f"name/root_id/fail_open/allow_on_headers_stop_iteration: {got}")
        return "same document, fail closed, flag set"

    check("mcp/envoyfilter.yaml configuration == mcp/actwarden.json modulo JWKS cluster")(same_config)
    if expect_envoy:
        check("envoy --mode validate the Wasm filter of mcp/envoyfilter.yaml (module as a local file)")(
            check_envoyfilter_wasm_validates, ef_docs)


def mcp_envoyfilter_wasm(docs):
    ef = find_kind(docs, "EnvoyFilter")
    ext = [p for p in ef["spec"]["configPatches"] if p.get("applyTo") == "EXTENSION_CONFIG"]
    expect(len(ext) == 1, f"{len(ext)} EXTENSION_CONFIG patches, want 1")
    return ext[0]["patch"]["value"]["typed_config"]


# EnvoyFilter enums (istio/api networking/v1alpha3/envoy_filter.proto); no EnvoyFilter CRD
# schema is vendored in istio-crds/, so the shape is checked here field by field.
ENVOYFILTER_APPLY_TO = {"LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER", "ROUTE_CONFIGURATION",
                        "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG", "BOOTSTRAP",
                        "LISTENER_FILTER"}
ENVOYFILTER_CONTEXTS = {"ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"}
ENVOYFILTER_OPERATIONS = {"MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"}


def check_mcp_envoyfilter_shape(docs):
    expect(len(docs) == 1, f"{len(docs)} documents, want 1")
    ef = docs[0]
    expect(ef.get("apiVersion") == "networking.istio.io/v1alpha3", f"apiVersion {ef.get('apiVersion')}")
    expect(ef.get("kind") == "EnvoyFilter", f"kind {ef.get('kind')}")
    expect(set(ef) == {"apiVersion", "kind", "metadata", "spec"}, f"top-level keys {sorted(ef)}")
    expect(ef["metadata"].get("name") and ef["metadata"].get("namespace") == "payments", "metadata")
    spec = ef["spec"]
    expect(set(spec) == {"workloadSelector", "configPatches"}, f"spec keys {sorted(spec)}")
    expect(spec["workloadSelector"] == {"labels": {"app": "payments-mcp"}}, "workloadSelector")
    patches = spec["configPatches"]
    for i, p in enumerate(patches):
        expect(set(p) <= {"applyTo", "match", "patch"}, f"configPatches[{i}] keys {sorted(p)}")
        expect(p["applyTo"] in ENVOYFILTER_APPLY_TO, f"configPatches[{i}].applyTo {p['applyTo']}")
        expect(p["match"].get("context") == "SIDECAR_INBOUND", f"configPatches[{i}]: inbound only")
        expect(p["match"]["context"] in ENVOYFILTER_CONTEXTS, f"configPatches[{i}].match.context")
        expect(p["patch"]["operation"] in ENVOYFILTER_OPERATIONS, f"configPatches[{i}].patch.operation")
    kinds = [(p["applyTo"], p["patch"]["operation"]) for p in patches]
    expect(kinds == [("EXTENSION_CONFIG", "ADD"), ("HTTP_FILTER", "INSERT_FIRST")], f"patches {kinds}")
    ext, flt = (p["patch"]["value"] for p in patches)
    expect(ext["name"] == flt["name"], f"ECDS name {ext['name']} != filter name {flt['name']}")
    hcm = patches[1]["match"]["listener"]["filterChain"]["filter"]["name"]
    expect(hcm == "envoy.filters.network.http_connection_manager", f"HTTP_FILTER match {hcm}")
    cd = flt["config_discovery"]
    expect(cd["config_source"].get("ads") == {} and cd["config_source"].get("initial_fetch_timeout") == "0s",
           "config_discovery: ads, initial_fetch_timeout 0s (no request before the filter is there)")
    expect(cd["type_urls"] == [ext["typed_config"]["@type"]] == [WASM_FILTER_TYPE], "type_urls")
    remote = ext["typed_config"]["config"]["vm_config"]["code"]["remote"]
    expect(remote["http_uri"]["uri"].startswith(("oci://", "https://")), "module url")
    expect(re.fullmatch(r"[0-9a-f]{64}", remote["sha256"]), "sha256: 64 hex digits")
    return "2 patches"


def check_envoyfilter_wasm_validates(docs):
    """The ECDS Wasm filter as Envoy would get it from Istio's agent (the module a local
    file), in a listener of its own, through `envoy --mode validate`."""
    tc = copy.deepcopy(mcp_envoyfilter_wasm(docs))
    tc["config"]["vm_config"]["code"] = {"local": {"filename": DIST_WASM}}
    cfg = json.loads(tc["config"]["configuration"]["value"])
    boot = {
        "static_resources": {
            "listeners": [{
                "name": "inbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
                                 ".v3.HttpConnectionManager",
                        "stat_prefix": "inbound",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "route": {"cluster": ISTIO_JWKS_CLUSTER}}]}]},
                        "http_filters": [
                            {"name": "payments.actwarden-mcp", "typed_config": tc},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    }}]}],
            }],
            "clusters": [{"name": ISTIO_JWKS_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
                          "load_assignment": {"cluster_name": ISTIO_JWKS_CLUSTER, "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": {"socket_address": {
                                  "address": "127.0.0.1", "port_value": 80}}}}]}]}}],
        }
    }
    expect(remote_jwks(cfg), "no remote_jwks provider (the cluster check would be vacuous)")
    rc, log = envoy_validate(write_tmp("mcp-envoyfilter-wasm.yaml", json.dumps(boot)))
    expect(rc == 0, f"envoy --mode validate exit {rc}: {last_errors(log)}")
    return "OK"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", help="use this module as dist/actwarden.wasm (Envoy runs from a scratch root)")
    args = ap.parse_args()
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="actwarden-configs-") as tmp:
        Env.tmp = tmp
        if args.wasm:
            Env.cwd = os.path.join(tmp, "root")
            os.makedirs(os.path.join(Env.cwd, "dist"))
            os.symlink(os.path.join(ROOT, "gateway-configs"), os.path.join(Env.cwd, "gateway-configs"))
            shutil.copyfile(args.wasm, os.path.join(Env.cwd, DIST_WASM))
            print(f"note: Envoy runs from {Env.cwd} with dist/actwarden.wasm = {args.wasm}")
        ensure_cli()
        expect_envoy = os.access(Env.envoy, os.X_OK)

        # (a) Envoy
        for path in sorted(p for p in os.listdir(ENVOY_DIR) if p.endswith((".yaml", ".yml"))):
            full = os.path.join(ENVOY_DIR, path)
            if expect_envoy:
                check(f"envoy --mode validate gateway-configs/envoy/{path}")(check_envoy_validate, full)
            else:
                check(f"envoy --mode validate gateway-configs/envoy/{path}")(
                    lambda: expect(False, f"{Env.envoy} not found: run `make setup-envoy`"))
        if expect_envoy:
            check("envoy validate rejects: route to an undefined cluster (negative control)")(
                lambda: check_envoy_rejects("cluster", envoy_text_with(
                    "route: { cluster: upstream }", "route: { cluster: no_such_cluster }"), "no_such_cluster"))
            check("envoy validate rejects: unknown field (negative control)")(
                lambda: check_envoy_rejects("field", envoy_text_with(
                    "max_request_headers_kb: 96", "max_request_header_kb: 96"), "max_request_header_kb"))
            check("envoy validate rejects: invalid pluginConfig, filter refuses it (negative control)")(
                lambda: check_envoy_rejects("pluginconfig", envoy_text_with(
                    '"on_no_match": "deny"', '"on_no_match": "maybe"'), "actwarden: configuration: on_no_match"))
        check("envoy.yaml structure (listeners, mTLS, filters, clusters, access log)")(check_envoy_structure)
        check("demo PKI gateway-configs/envoy/certs/ (chain, SANs, keys, >= 20 years)")(check_demo_pki)

        # (b) Istio
        crds = load_crds()
        istio_docs = []
        for path in sorted(p for p in os.listdir(ISTIO_DIR) if p.endswith((".yaml", ".yml"))):
            for i, doc in enumerate(load_yaml_docs(os.path.join(ISTIO_DIR, path))):
                istio_docs.append(doc)
                check(f"istio schema gateway-configs/istio/{path}#{i}")(
                    check_istio_manifest, path, i, doc, crds)
        by_kind = {d.get("kind"): d for d in istio_docs}
        wp, se, dr = by_kind.get("WasmPlugin"), by_kind.get("ServiceEntry"), by_kind.get("DestinationRule")
        negatives = [
            ("WasmPlugin failStrategy FAIL_SOMETIMES", wp,
             lambda d: d["spec"].update(failStrategy="FAIL_SOMETIMES"), "FAIL_SOMETIMES"),
            ("WasmPlugin unknown field spec.failStrategyy", wp,
             lambda d: d["spec"].update(failStrategyy="FAIL_CLOSE"), "failStrategyy"),
            ("WasmPlugin priority of the wrong type", wp,
             lambda d: d["spec"].update(priority="high"), "priority"),
            ("WasmPlugin without url (required)", wp, lambda d: d["spec"].pop("url"), "'url' is a required"),
            ("WasmPlugin selector and targetRefs (CEL)", wp,
             lambda d: d["spec"].update(targetRefs=[{"kind": "Gateway", "name": "gw"}]), "only one of"),
            ("WasmPlugin url scheme ftp:// (CEL)", wp,
             lambda d: d["spec"].update(url="ftp://example.com/x.wasm"), "url must have schema"),
            ("ServiceEntry port 0 (CEL)", se, lambda d: d["spec"]["ports"][0].update(number=0), "1-65535"),
            ("ServiceEntry host \"*\" (CEL)", se, lambda d: d["spec"].update(hosts=["*"]), "wildcard"),
            ("ServiceEntry port without name", se, lambda d: d["spec"]["ports"][0].pop("name"), "'name'"),
            ("DestinationRule tls mode STRICT", dr,
             lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="STRICT"), "STRICT"),
            ("manifest without metadata.name", wp, lambda d: d["metadata"].pop("name"), "'name'"),
        ]
        for label, doc, mutate, want in negatives:
            check(f"istio schema rejects: {label} (negative control)")(
                lambda doc=doc, mutate=mutate, want=want: (
                    expect(doc is not None, "manifest missing") or check_istio_rejects(doc, crds, mutate, want)))

        # (c) pluginConfig
        check("envoy.yaml embeds exactly gateway-configs/envoy/actwarden.json")(check_envoy_plugin_config_equal)
        check("istio pluginConfig == actwarden.json modulo JWKS cluster/uri")(check_istio_plugin_config, istio_docs)
        check("istio JWKS cluster exists where the plugin runs, TLS originated")(
            check_istio_cluster_visible, istio_docs)
        check("actwarden lint gateway-configs/envoy/actwarden.json")(lambda: lint(load_json(ACTWARDEN_JSON), "file"))
        check("actwarden lint envoy.yaml pluginConfig")(lambda: lint(
            plugin_json(wasm_filters(load_yaml_docs(ENVOY_YAML)[0])[0][1]), "envoy"))
        check("actwarden lint istio WasmPlugin pluginConfig")(lambda: lint(
            find_kind(istio_docs, "WasmPlugin")["spec"]["pluginConfig"], "istio"))
        check("actwarden lint rejects an invalid pluginConfig (negative control)")(lambda: expect(
            subprocess.run([Env.actwarden, "lint", "--config", write_tmp("bad.json", json.dumps(
                {**load_json(ACTWARDEN_JSON), "on_no_match": "maybe"}))], capture_output=True).returncode == 2,
            "lint accepted on_no_match: maybe"))

        # (f) the MCP example
        check_mcp_example(crds, expect_envoy)

        # (d) WasmPlugin settings
        check("istio WasmPlugin phase AUTHN, failStrategy FAIL_CLOSE")(check_wasmplugin_settings, istio_docs)

        # (e) wasm imports
        run_wasm_import_tests()
        if os.path.isfile(os.path.join(Env.cwd, DIST_WASM)):
            check("dist/actwarden.wasm imports only env.proxy_* / wasi_snapshot_preview1.*")(check_dist_imports)

    passed = sum(ok for _, ok in RESULTS)
    failed = len(RESULTS) - passed
    print(f"gateway-config checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

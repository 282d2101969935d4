// The actwarden playground. Every decision is made by the wasm-bindgen module
// (pkg/actwarden.js) built from the same Rust core as the Envoy filter and the CLI; this
// file only moves text between the page and the module. Nothing is sent anywhere: the
// state lives in the page and, when shared, in the URL fragment (never sent to a server).

import init, * as ag from './pkg/actwarden.js';
import { SCENARIOS, buildScenario, NOW } from './scenarios.js';
import { renderMatrix, testCase } from './rollout.js';

const $ = (id) => document.getElementById(id);
const parse = (text) => JSON.parse(text);

const state = {
  scenario: null,
  variant: 0,
  config: '',
  token: '',
  request: { method: 'GET', path: '/', authority: 'api.example.com', protocol: 'http', peer_uri: '', peer_digest: '', headers: {}, body: '' },
  now: NOW,
  remoteJwks: '',
  // SPEC §9: the MCP server's answer to a tools/list, filtered per caller.
  mcpResponse: '',
  keys: [],
};
let last = null; // the last check result
let exportFormat = 'envoy';
let humanClaims = null; // claims of the token being built (mint panel)
// DPoP (SPEC §10): the agent's private key, whether requests use the DPoP scheme, the proof
// of the last decision, and whether the next decision re-sends it (a replay).
const dpop = { key: null, on: false, proof: '', replayNext: false };

// --- request ------------------------------------------------------------------------------

/// SPEC §7 REQUEST.json from the page's state.
function requestJson() {
  const r = state.request;
  const headers = { ...(r.headers || {}) };
  if (r.protocol === 'grpc') headers['content-type'] = 'application/grpc';
  if (state.token.trim()) {
    const scheme = dpop.on ? 'DPoP' : 'Bearer';
    headers.authorization = `${scheme} ${state.token.trim()}`;
    if (dpop.on && dpop.proof) headers.dpop = dpop.proof;
  }
  const out = { method: r.method, path: r.path, authority: r.authority || undefined, headers };
  // SPEC §9: an MCP message is decided on its JSON-RPC body.
  if (r.body) out.body = r.body;
  if (r.peer_uri.trim() || r.peer_digest.trim()) {
    out.peer = {};
    if (r.peer_uri.trim()) out.peer.uri_san = r.peer_uri.trim();
    if (r.peer_digest.trim()) out.peer.sha256_digest_hex = r.peer_digest.trim().toLowerCase();
  }
  return JSON.stringify(out);
}

/// What the CLI needs to decide the same thing: config, request, now, remote JWKS.
function inputs() {
  let remote = null;
  if (state.remoteJwks.trim()) {
    try {
      remote = parse(state.remoteJwks);
    } catch {
      remote = null;
    }
  }
  const mcp = state.mcpResponse.trim() ? state.mcpResponse : undefined;
  return { config: state.config, request: requestJson(), now: state.now, remote_jwks: remote, mcp_response: mcp };
}

// --- decide and render ----------------------------------------------------------------------

let seq = 0;
let timer = null;
function decide() {
  // A decision now makes a pending debounced one obsolete; left to fire, it would decide
  // again with a fresh DPoP proof and replace, say, a replay's answer with an allow.
  clearTimeout(timer);
  seq += 1;
  const lint = parse(ag.lint(state.config));
  renderLint(lint);
  const remote = state.remoteJwks.trim() ? state.remoteJwks : undefined;
  freshProof();
  const mcp = state.mcpResponse.trim() ? state.mcpResponse : undefined;
  const result = parse(ag.check(state.config, requestJson(), Number(state.now), remote, mcp));
  last = result;
  renderDecision(result);
  renderDecoded();
  renderExport();
  renderRollout(result);
  document.body.dataset.seq = String(seq);
}

function decideSoon() {
  clearTimeout(timer);
  timer = setTimeout(decide, 120);
}

function text(el, value) {
  el.textContent = value == null || value === '' ? '—' : String(value);
}

function renderDecision(result) {
  const verdict = $('verdict');
  const badge = $('verdict-badge');
  const err = $('check-error');
  if (!result.ok) {
    const e = result.error;
    verdict.dataset.decision = 'error';
    verdict.dataset.reason = '';
    badge.textContent = 'ERROR';
    badge.className = 'badge error';
    text($('verdict-reason'), e.kind === 'config' ? 'configuration refused' : `${e.kind} error`);
    text($('verdict-status'), '');
    $('verdict-detail').textContent = (e.path ? `${e.path}: ` : '') + e.message;
    err.hidden = true;
    for (const id of ['fact-rule', 'fact-mcp', 'fact-response', 'fact-www', 'fact-eval', 'fact-filtered']) text($(id), '');
    $('checks').replaceChildren();
    $('chain').replaceChildren(note('No decision.'));
    $('fwd-headers').replaceChildren(row(['none']));
    $('audit').textContent = '';
    return;
  }
  err.hidden = true;
  const rep = result.report;
  verdict.dataset.decision = rep.decision;
  verdict.dataset.reason = rep.reason;
  badge.textContent = rep.decision === 'allow' ? 'ALLOW' : 'DENY';
  badge.className = `badge ${rep.decision}`;
  // Shadow mode (SPEC §11): the real decision, but a denial is forwarded anyway.
  $('verdict-mode').hidden = rep.enforced !== false;
  verdict.dataset.enforced = String(rep.enforced !== false);
  $('verdict-reason').textContent = rep.reason;
  text($('verdict-status'), rep.status ? `HTTP ${rep.status}` : '');
  $('verdict-detail').textContent = rep.detail || (rep.decision === 'allow' ? 'Every check passed.' : '');
  text($('fact-rule'), rep.rule);
  text($('fact-mcp'), rep.mcp_method ? `${rep.mcp_method}${rep.mcp_name ? ` ${rep.mcp_name}` : ''}` : 'not an MCP message');
  const f = rep.filtered_response;
  text($('fact-filtered'), f ? `HTTP ${f.status}: ${f.body}` : '');
  const resp = rep.response;
  if (resp) {
    const grpc = resp.headers['grpc-status'];
    const reply = grpc ? `HTTP ${resp.status}, grpc-status ${grpc} (${resp.headers['grpc-message']})` : `HTTP ${resp.status} ${resp.body}`;
    text($('fact-response'), rep.enforced === false ? `forwarded upstream without identity (shadow mode; enforce would reply ${reply})` : reply);
    text($('fact-www'), resp.headers['www-authenticate']);
  } else {
    text($('fact-response'), 'forwarded upstream');
    text($('fact-www'), '');
  }
  text($('fact-eval'), rep.eval_us != null ? `${rep.eval_us} µs in this browser` : '');
  renderChecks(result.checks);
  renderChain(result.chain, rep);
  const hdrs = Object.entries(rep.headers);
  $('fwd-headers').replaceChildren(...(hdrs.length ? hdrs.map(([k, v]) => row([k, v], true)) : [row(['none (nothing is forwarded as identity)'])]));
  const stripped = rep.stripped_headers || [];
  if (stripped.length) $('fwd-headers').append(row([`removed inbound: ${stripped.join(', ')}`]));
  $('audit').textContent = JSON.stringify(stripForAudit(rep), null, 2);
}

/// The auth matrix of the policy, and the scenario as a test case (www/rollout.js).
function renderRollout(result) {
  const m = parse(ag.matrix(state.config));
  if (m.ok) renderMatrix($('matrix'), m.matrix);
  else $('matrix').replaceChildren(note(`No matrix: ${m.error.path ? `${m.error.path}: ` : ''}${m.error.message}`));
  const i = inputs();
  $('test-case').textContent = result.ok
    ? JSON.stringify(testCase(JSON.parse(i.request), i.now, i.remote_jwks, result.report), null, 2)
    : '';
}

/// The audit record (SPEC §6): the report without the host extensions.
function stripForAudit(rep) {
  const { headers, response, stripped_headers, filtered_response, ...audit } = rep; // eslint-disable-line no-unused-vars
  return audit;
}

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content != null) e.textContent = content;
  return e;
}
const note = (t) => el('p', 'muted', t);

function row(cells, code = false) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = el('td');
    if (code) td.append(el('code', null, c));
    else td.textContent = c;
    tr.append(td);
  }
  return tr;
}

const ICON = { pass: '✓', fail: '✗', not_reached: '·', not_applicable: '–' };
const STAGE = ['', 'Rule', 'Token', 'Verify', 'Claims & time', 'Chain', 'Revocation', 'Binding', 'Rule requires'];

function renderChecks(checks) {
  const list = $('checks');
  const items = [];
  let stage = 0;
  for (const c of checks) {
    if (c.stage !== stage) {
      stage = c.stage;
      items.push(el('li', 'stage', `${stage}. ${STAGE[stage]}`));
    }
    const li = el('li', `check ${c.status}`);
    li.dataset.check = c.id;
    li.dataset.status = c.status;
    const icon = el('span', 'icon', ICON[c.status] || '?');
    icon.setAttribute('aria-hidden', 'true');
    li.append(icon, el('span', 'sr-only', `${c.status.replace('_', ' ')}: `), el('span', 'label', c.label));
    const meta = c.status === 'fail' ? c.note : c.note || (c.status === 'not_reached' ? 'not reached' : '');
    if (meta) li.append(el('span', 'meta', meta));
    items.push(li);
  }
  list.replaceChildren(...items);
}

function chips(list, cls) {
  const wrap = el('span', 'chips');
  if (!list || !list.length) wrap.append(el('span', 'chip none', 'none'));
  else for (const s of list) wrap.append(el('span', `chip ${cls || ''}`, s));
  return wrap;
}

function renderChain(chain, rep) {
  const box = $('chain');
  if (!chain) {
    box.replaceChildren(note(state.token.trim() ? 'The token could not be read.' : 'No token: nobody acts for anyone.'));
    return;
  }
  const nodes = [];
  const subj = el('div', 'node subject');
  subj.append(el('div', 'kind', `subject${chain.subject.profile ? ` · ${chain.subject.profile}` : ''}`));
  subj.append(el('div', 'who', chain.subject.id ?? '(no sub)'));
  const held = el('div', 'line');
  held.append(el('span', 'k', 'token scopes'), chips(chain.subject.scopes));
  subj.append(held);
  nodes.push(subj);
  chain.actors.forEach((a, i) => {
    nodes.push(el('div', 'arrow', '↓ delegates to (token exchange)'));
    const current = i === chain.actors.length - 1;
    const n = el('div', `node actor${current ? ' current' : ''}`);
    n.append(el('div', 'kind', `${current ? 'current actor' : 'prior actor'}${a.profile ? ` · ${a.profile}` : ''}`));
    n.append(el('div', 'who', a.id));
    const c = el('div', 'line');
    c.append(el('span', 'k', 'ceiling'), a.ceiling ? chips(a.ceiling) : el('span', 'chip none', a.in_allowlist === false ? 'not in allowlist' : 'no ceiling'));
    n.append(c);
    const r = el('div', 'line');
    r.append(el('span', 'k', 'removed'), chips(a.removed, 'removed'));
    n.append(r);
    nodes.push(n);
  });
  const eff = el('div', 'effective');
  eff.append(el('span', 'k', 'effective scopes'), chips(chain.effective, 'effective'));
  const head = el('p', chain.verified ? 'muted small' : 'warn small', chain.verified ? `Verified. Depth ${chain.actors.length}.` : 'Signature not verified: this is what the token claims.');
  box.replaceChildren(head, el('div', 'flow'), eff);
  box.querySelector('.flow').append(...nodes);
  if (chain.verified && rep.scopes) eff.dataset.core = rep.scopes.join(' ');
}

function renderDecoded() {
  const t = state.token.trim();
  if (!t) {
    $('decoded').textContent = '(no token)';
    return;
  }
  const d = parse(ag.decode(t));
  const shown = d.ok ? JSON.stringify({ header: d.header, claims: d.claims }, null, 2) : d.error.message;
  $('decoded').textContent = shown;
  const hidden = d.ok && hiddenNote('the token', shown);
  if (hidden) $('chain').prepend(el('p', 'warn small hidden-chars', hidden));
}

// --- lint: errors at their JSON path ---------------------------------------------------------

/// Offsets of every value in a JSON text, by path (`rules[0].require.scopes[0]`).
function jsonPaths(src) {
  const paths = new Map();
  let i = 0;
  const ws = () => {
    while (i < src.length && ' \t\r\n'.includes(src[i])) i++;
  };
  const str = () => {
    const start = i++;
    while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
    i++;
    try {
      return JSON.parse(src.slice(start, i));
    } catch {
      return '';
    }
  };
  const value = (path) => {
    ws();
    paths.set(path, i);
    if (src[i] === '{') {
      i++;
      ws();
      if (src[i] === '}') return i++;
      while (i < src.length) {
        ws();
        if (src[i] !== '"') throw new Error('key');
        const keyAt = i;
        const key = str();
        const p = path ? `${path}.${key}` : key;
        paths.set(`${p}#key`, keyAt);
        ws();
        if (src[i++] !== ':') throw new Error(':');
        value(p);
        ws();
        if (src[i] === ',') i++;
        else if (src[i] === '}') return i++;
        else throw new Error(',');
      }
    } else if (src[i] === '[') {
      i++;
      ws();
      if (src[i] === ']') return i++;
      for (let n = 0; i < src.length; n++) {
        value(`${path}[${n}]`);
        ws();
        if (src[i] === ',') i++;
        else if (src[i] === ']') return i++;
        else throw new Error(',');
      }
    } else if (src[i] === '"') {
      str();
    } else {
      while (i < src.length && !',]} \t\r\n'.includes(src[i])) i++;
    }
    return i;
  };
  try {
    value('');
  } catch {
    /* partial map is still useful */
  }
  return paths;
}

function locate(src, path) {
  const paths = jsonPaths(src);
  let p = path;
  while (p) {
    if (paths.has(`${p}#key`)) return paths.get(`${p}#key`);
    if (paths.has(p)) return paths.get(p);
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut > 0 ? p.slice(0, cut) : '';
  }
  return 0;
}

function lineCol(src, offset) {
  const before = src.slice(0, offset).split('\n');
  return { line: before.length, col: before[before.length - 1].length + 1 };
}

/// Invisible and bidirectional-control characters (Trojan Source): a shared policy or token
/// holding them does not read as what is decided.
const HIDDEN = /[\u0085\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff]/;

function hiddenNote(what, src) {
  const m = HIDDEN.exec(src);
  if (!m) return null;
  const code = `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const { line, col } = lineCol(src, m.index);
  return `warning: ${what} holds an invisible or direction-changing character (${code} at line ${line}:${col}): what you read is not what is decided.`;
}

function renderLint(lint) {
  const list = $('lint-errors');
  const pill = $('lint-status');
  const hidden = hiddenNote('the policy', state.config);
  if (lint.ok) {
    pill.textContent = `valid · ${lint.providers.length} provider(s), ${lint.rules.length} rule(s)`;
    pill.className = 'pill ok';
    list.replaceChildren(...lint.notes.map((n) => el('li', 'note', `note: ${n}`)));
    if (hidden) list.append(el('li', 'note hidden-chars', hidden));
    $('config').removeAttribute('aria-invalid');
    return;
  }
  const e = lint.error;
  pill.textContent = 'refused';
  pill.className = 'pill bad';
  $('config').setAttribute('aria-invalid', 'true');
  let offset = 0;
  const m = /line (\d+) column (\d+)/.exec(e.message);
  if (!e.path && m) {
    const lines = state.config.split('\n');
    offset = lines.slice(0, Number(m[1]) - 1).reduce((a, l) => a + l.length + 1, 0) + Number(m[2]) - 1;
  } else {
    offset = locate(state.config, e.path);
  }
  const { line, col } = lineCol(state.config, offset);
  const li = el('li', 'error');
  li.dataset.path = e.path;
  const btn = el('button', 'link', `line ${line}:${col}`);
  btn.type = 'button';
  btn.title = 'Go to the error';
  btn.setAttribute('aria-label', `Go to the error, line ${line} column ${col}`);
  btn.addEventListener('click', () => {
    const ta = $('config');
    ta.focus();
    ta.setSelectionRange(offset, Math.min(state.config.length, offset + 1));
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 16;
    ta.scrollTop = Math.max(0, (line - 4) * lh);
  });
  li.append(el('code', 'path', e.path || '(document)'), el('span', null, ` ${e.message} `), btn);
  list.replaceChildren(li);
  if (hidden) list.append(el('li', 'note hidden-chars', hidden));
}

// --- export --------------------------------------------------------------------------------

/// The policy for a YAML export: re-serialised JSON with every character outside printable
/// ASCII escaped as \uXXXX (the same JSON value). A policy text is attacker-controlled (a
/// shared link): a raw CR, NEL, U+2028/U+2029 or DEL is a line break or an error for some
/// YAML parsers and would let it end the block and inject keys or documents. Text that is
/// not JSON is not exported at all.
function exportJson() {
  let value;
  try {
    value = parse(state.config);
  } catch {
    return null;
  }
  return JSON.stringify(value, null, 2).replace(/[^\x20-\x7e\n]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
const NOT_JSON = '# The policy is not valid JSON: fix it to export it.\n';
const indent = (s, n) => s.split('\n').map((l) => ' '.repeat(n) + l).join('\n');

function envoySnippet() {
  const json = exportJson();
  if (json == null) return NOT_JSON;
  return `# http_filters entry (before envoy.filters.http.router). actwarden fails closed:
# a configuration it refuses makes Envoy refuse the filter.
- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: actwarden
      root_id: actwarden
      fail_open: false
      allow_on_headers_stop_iteration: true   # Envoy >= 1.35; MCP messages need it
      vm_config:
        vm_id: actwarden
        runtime: envoy.wasm.runtime.v8
        code:
          local:
            filename: /etc/envoy/actwarden.wasm
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: |
${indent(json, 10)}
`;
}

// A WasmPlugin cannot set allow_on_headers_stop_iteration, which MCP messages need.
const ISTIO_MCP_NOTE = `# This policy has MCP endpoints: a WasmPlugin cannot set the filter's
# allow_on_headers_stop_iteration, so every MCP message would be answered 500. For MCP use
# an EnvoyFilter as in gateway-configs/mcp/envoyfilter.yaml (the rest works as below).
`;

function istioSnippet() {
  const json = exportJson();
  if (json == null) return NOT_JSON;
  const mcp = JSON.parse(json).mcp != null;
  return `${mcp ? ISTIO_MCP_NOTE : ''}apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: actwarden
  namespace: my-namespace            # where the workload runs
spec:
  selector:
    matchLabels:
      app: my-api                    # the workloads to protect
  url: oci://registry.example/actwarden:0.1.0   # publish dist/actwarden.wasm yourself
  imagePullPolicy: IfNotPresent
  phase: AUTHN
  failStrategy: FAIL_CLOSE
  type: HTTP
  pluginName: actwarden
  match:
  - mode: SERVER
  pluginConfig:
${indent(json, 4)}
`;
}

function renderExport() {
  $('export-text').value = exportFormat === 'envoy' ? envoySnippet() : istioSnippet();
}

// --- sharing (URL fragment) ------------------------------------------------------------------

function b64url(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
function unb64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

function shareable() {
  // Private keys stay out of links; the public parts are in the policy when trusted.
  const { keys, ...rest } = state; // eslint-disable-line no-unused-vars
  return { v: 1, ...rest };
}

async function shareUrl() {
  const bytes = new TextEncoder().encode(JSON.stringify(shareable()));
  const packed = await pipe(bytes, new CompressionStream('deflate-raw'));
  return `${location.origin}${location.pathname}#s=${b64url(packed)}`;
}

// A link is attacker-controlled input. Its state is refused beyond these sizes: a deflate
// "bomb" (a few hundred KB that unpack to gigabytes) must not freeze or crash the tab.
const MAX_FRAGMENT_CHARS = 1 << 21; // what Chromium keeps of a URL anyway
const MAX_STATE_BYTES = 1 << 20; // unpacked: 1 MiB is far more than any real state

class LinkError extends Error {}

/// Inflates at most `cap` bytes: the input is fed in small pieces (a deflate stream expands
/// at most ~1032×, so a 1 KiB piece yields at most ~1 MiB) and reading stops as soon as the
/// output passes `cap`.
async function inflateCapped(bytes, cap) {
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  const feed = (async () => {
    try {
      for (let i = 0; i < bytes.length; i += 1024) {
        await writer.ready;
        writer.write(bytes.subarray(i, i + 1024)).catch(() => {});
      }
      await writer.close();
    } catch {
      /* aborted or the input is not deflate: reported by the reader */
    }
  })();
  const parts = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > cap) throw new LinkError(`it unpacks to more than ${cap >> 20} MiB`);
      parts.push(value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    writer.abort().catch(() => {});
    if (e instanceof LinkError) throw e;
    throw new LinkError('it is not a packed state');
  }
  await feed;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const asText = (v, fallback = '') => (typeof v === 'string' ? v : isObject(v) || Array.isArray(v) ? JSON.stringify(v, null, 2) : fallback);
const asString = (v, fallback = '') => (typeof v === 'string' ? v : fallback);

/// A link's state, type by type: only the known fields, each of its type, in fresh objects
/// (`Object.fromEntries` defines `__proto__` as a plain key, it never sets a prototype).
/// Anything else in the link is ignored.
function sanitizeState(s) {
  if (!isObject(s)) throw new LinkError('it is not a state object');
  const r = isObject(s.request) ? s.request : {};
  const d = state.request;
  const request = {
    method: asString(r.method, d.method),
    path: asString(r.path, d.path),
    authority: asString(r.authority, d.authority),
    protocol: r.protocol === 'grpc' ? 'grpc' : 'http',
    peer_uri: asString(r.peer_uri),
    peer_digest: asString(r.peer_digest),
    headers: isObject(r.headers) ? Object.fromEntries(Object.entries(r.headers)) : {},
    body: asString(r.body),
  };
  const now = typeof s.now === 'number' || typeof s.now === 'string' ? Number(s.now) : NOW;
  const out = {
    scenario: null,
    variant: 0,
    config: asText(s.config),
    token: asString(s.token).trim(),
    request,
    now: Number.isFinite(now) ? now : NOW,
    remoteJwks: asText(s.remoteJwks),
    mcpResponse: asString(s.mcpResponse),
  };
  // A scenario is shown as selected only when the link holds exactly that scenario: a
  // link must not present an edited policy or token under a scenario's name.
  const sc = SCENARIOS.find((x) => x.id === s.scenario);
  const v = Number.isInteger(s.variant) ? s.variant : 0;
  if (sc && v >= 0 && v < sc.variants.length) {
    const built = buildScenario(ag, sc, v);
    const same = ['config', 'token', 'now', 'remoteJwks', 'mcpResponse'].every((k) => built[k] === out[k]) && sameRequest(built.request, out.request);
    if (same) Object.assign(out, { scenario: sc.id, variant: v });
  }
  return out;
}

function sameRequest(a, b) {
  const keys = ['method', 'path', 'authority', 'protocol', 'peer_uri', 'peer_digest', 'body'];
  return keys.every((k) => (a[k] ?? '') === (b[k] ?? '')) && JSON.stringify(a.headers || {}) === JSON.stringify(b.headers || {});
}

let loadedHash = '';

/// Restores the state of a `#s=…` link; false (with a message) when there is none or it is
/// refused.
async function loadFromHash() {
  const hash = location.hash;
  if (!hash.startsWith('#s=')) return false;
  loadedHash = hash;
  try {
    if (hash.length > MAX_FRAGMENT_CHARS) throw new LinkError('it is too long');
    if (!/^#s=[A-Za-z0-9_-]+$/.test(hash)) throw new LinkError('it is not base64url');
    let packed;
    try {
      packed = unb64url(hash.slice(3));
    } catch {
      throw new LinkError('it is not base64url');
    }
    const bytes = await inflateCapped(packed, MAX_STATE_BYTES);
    let s;
    try {
      s = parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new LinkError('it is not JSON');
    }
    Object.assign(state, sanitizeState(s));
    humanClaims = null;
    $('fatal').hidden = true;
    return true;
  } catch (e) {
    const why = e instanceof LinkError ? e.message : 'it could not be read';
    showFatal(`The link's state was refused (${why}); starting fresh.`, false);
    return false;
  }
}

// --- state → form and back -----------------------------------------------------------------

function toForm() {
  $('config').value = state.config;
  $('token').value = state.token;
  $('remote-jwks').value = state.remoteJwks;
  const r = state.request;
  const method = $('req-method');
  if (![...method.options].some((o) => o.value === r.method)) method.append(el('option', null, r.method));
  method.value = r.method;
  $('req-protocol').value = r.protocol;
  $('req-path').value = r.path;
  $('req-authority').value = r.authority;
  $('req-peer-uri').value = r.peer_uri;
  $('req-peer-digest').value = r.peer_digest;
  $('req-headers').value = Object.keys(r.headers || {}).length ? JSON.stringify(r.headers) : '';
  $('req-body').value = r.body || '';
  $('mcp-response').value = state.mcpResponse;
  $('now').value = String(state.now);
  renderNow();
  renderScenarios();
  prefillMint();
}

function renderNow() {
  const n = Number(state.now);
  $('now-human').textContent = Number.isFinite(n) && n >= 0 && n < 253402300800 ? new Date(n * 1000).toISOString().replace('.000Z', 'Z') : 'invalid time';
}

function fromRequestForm() {
  const r = state.request;
  r.method = $('req-method').value;
  r.protocol = $('req-protocol').value;
  r.path = $('req-path').value;
  r.authority = $('req-authority').value;
  r.peer_uri = $('req-peer-uri').value;
  r.peer_digest = $('req-peer-digest').value;
  r.body = $('req-body').value;
  const h = $('req-headers').value.trim();
  const errEl = $('request-error');
  errEl.hidden = true;
  $('req-headers').removeAttribute('aria-invalid');
  if (!h) r.headers = {};
  else {
    try {
      const v = parse(h);
      if (typeof v !== 'object' || Array.isArray(v) || v === null) throw new Error('an object is expected');
      r.headers = v;
    } catch (e) {
      errEl.textContent = `Other headers: ${e.message}`;
      errEl.hidden = false;
      $('req-headers').setAttribute('aria-invalid', 'true');
    }
  }
}

// --- scenarios -----------------------------------------------------------------------------

function renderScenarios() {
  const list = $('scenarios');
  list.replaceChildren(
    ...SCENARIOS.map((s, i) => {
      const li = el('li');
      const b = el('button', 'scenario');
      b.type = 'button';
      b.dataset.scenario = s.id;
      b.setAttribute('aria-pressed', String(state.scenario === s.id));
      if (i < 9) b.setAttribute('aria-keyshortcuts', `Alt+${i + 1} ${i + 1}`);
      b.append(el('span', 'num', String(i + 1)), el('span', null, s.title));
      b.addEventListener('click', () => {
        $('fatal').hidden = true; // a refused link's message is stale once a scenario is picked
        loadScenario(s.id, 0);
      });
      li.append(b);
      return li;
    }),
  );
  const s = SCENARIOS.find((x) => x.id === state.scenario);
  $('scenario-detail').hidden = !s;
  if (!s) return;
  $('scenario-story').textContent = s.story;
  $('variants').replaceChildren(
    el('span', 'muted small', 'What if:'),
    ...s.variants.map((v, i) => {
      const b = el('button', 'variant');
      b.type = 'button';
      b.dataset.variant = String(i);
      b.setAttribute('aria-pressed', String(state.variant === i));
      b.append(el('span', null, v.label), el('code', `expect ${v.expect === 'allowed' ? 'allow' : 'deny'}`, v.expect));
      b.addEventListener('click', () => loadScenario(s.id, i));
      return b;
    }),
  );
}

function loadScenario(id, variant = 0) {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) return;
  const built = buildScenario(ag, s, variant);
  Object.assign(state, built, { scenario: id, variant });
  humanClaims = null;
  Object.assign(dpop, { key: null, on: false, proof: '', replayNext: false });
  $('dpop-on').checked = false;
  $('dpop-on').disabled = true;
  $('dpop-replay').disabled = true;
  toForm();
  prefillMint(true);
  decide();
}

// --- minting -------------------------------------------------------------------------------

function firstLocalProvider(cfg) {
  for (const [name, p] of Object.entries(cfg.providers || {})) if (p.local_jwks) return [name, p];
  return [null, null];
}

/// Fills the mint form from the policy: its first issuer and audience, its first actor.
function prefillMint(force = false) {
  try {
    const cfg = parse(state.config);
    const [, p] = Object.entries(cfg.providers || {})[0] || [];
    if (p) {
      if (force || !$('m-iss').value) $('m-iss').value = p.issuer || '';
      if (force || !$('m-aud').value) $('m-aud').value = (p.audiences || [])[0] || '';
    }
    const actor = Object.keys(cfg.identity?.actors || {})[0];
    if (actor && force) $('x-actor').value = actor;
  } catch {
    /* the policy is being edited */
  }
}

function renderKeys() {
  $('keys').replaceChildren(
    ...state.keys.map((k, i) => {
      const li = el('li', 'key');
      li.append(el('code', null, k.kid), el('span', 'muted small', `${k.alg} · ${k.kty}${k.crv ? ` ${k.crv}` : ''}`));
      const trust = el('button', 'secondary', 'Trust in policy');
      trust.type = 'button';
      trust.setAttribute('aria-label', `Trust key ${k.kid} in the policy`);
      trust.dataset.trust = String(i);
      trust.addEventListener('click', () => trustKey(i));
      li.append(trust);
      return li;
    }),
  );
  $('m-key').replaceChildren(
    ...state.keys.map((k, i) => {
      const o = el('option', null, `${k.kid} (${k.alg})`);
      o.value = String(i);
      return o;
    }),
  );
  if (state.keys.length) {
    $('m-key').value = String(state.keys.length - 1);
    const j = parse(ag.publicJwks(JSON.stringify(state.keys)));
    $('keys-jwks').value = j.ok ? JSON.stringify(j.jwks, null, 2) : j.error.message;
  } else $('keys-jwks').value = '';
}

function mintStatus(msg, bad = false) {
  const s = $('mint-status');
  s.textContent = msg;
  s.className = bad ? 'error-text small' : 'muted small';
}

function generateKey() {
  const alg = $('key-alg').value;
  const kid = $('key-kid').value.trim() || `key-${state.keys.length + 1}`;
  const out = parse(ag.generateKey(alg, kid));
  if (!out.ok) return mintStatus(out.error.message, true);
  state.keys.push(out.private_jwk);
  $('key-kid').value = `my-key-${state.keys.length + 1}`;
  renderKeys();
  mintStatus(`Generated ${alg} key “${kid}” (private part stays in this page).`);
}

function trustKey(i) {
  const key = state.keys[i];
  let cfg;
  try {
    cfg = parse(state.config);
  } catch {
    return mintStatus('Fix the policy JSON first.', true);
  }
  const [name, p] = firstLocalProvider(cfg);
  if (!p) return mintStatus('No provider with local_jwks to add the key to.', true);
  let jwks = { keys: [] };
  try {
    jwks = p.local_jwks.inline_string ? parse(p.local_jwks.inline_string) : jwks;
  } catch {
    /* replaced below */
  }
  const pub = parse(ag.publicJwks(JSON.stringify([key]))).jwks.keys[0];
  jwks.keys = (jwks.keys || []).filter((k) => k.kid !== pub.kid).concat([pub]);
  p.local_jwks = { inline_string: JSON.stringify(jwks) };
  if (Array.isArray(p.algorithms) && !p.algorithms.includes(key.alg)) p.algorithms.push(key.alg);
  state.config = JSON.stringify(cfg, null, 2);
  $('config').value = state.config;
  mintStatus(`Key “${pub.kid}” is now trusted by provider “${name}”.`);
  decide();
}

function signClaims(claims) {
  const idx = Number($('m-key').value);
  const key = state.keys[idx];
  if (!key) return mintStatus('Generate a key first.', true) || false;
  const out = parse(ag.signToken(JSON.stringify(key), JSON.stringify(claims)));
  if (!out.ok) return mintStatus(out.error.message, true) || false;
  state.token = out.token;
  $('token').value = state.token;
  return true;
}

function signHuman() {
  const now = Math.floor(Number(state.now));
  const ttl = Math.max(1, Number($('m-ttl').value) || 600);
  humanClaims = {
    iss: $('m-iss').value.trim(),
    sub: $('m-sub').value.trim(),
    aud: $('m-aud').value.trim(),
    scope: $('m-scope').value.trim(),
    iat: now,
    auth_time: now,
    exp: now + ttl,
    jti: `tok-${Math.random().toString(16).slice(2, 10)}`,
  };
  const prof = $('m-profile').value.trim();
  if (prof) humanClaims.sub_profile = prof;
  if (signClaims(humanClaims)) {
    mintStatus(`Signed a token for ${humanClaims.sub}. Now exchange it to an agent.`);
    decide();
  }
}

function exchange() {
  const base = humanClaims || (() => {
    const d = parse(ag.decode(state.token.trim() || 'x'));
    return d.ok ? d.claims : null;
  })();
  if (!base) return mintStatus('Sign a token first.', true);
  const out = parse(ag.delegate(JSON.stringify(base), $('x-actor').value.trim(), $('x-profile').value.trim()));
  if (!out.ok) return mintStatus(out.error.message, true);
  humanClaims = out.claims;
  if (signClaims(humanClaims)) {
    const chain = [];
    for (let a = humanClaims.act; a; a = a.act) chain.unshift(a.sub);
    mintStatus(`Exchanged: ${[humanClaims.sub, ...chain].join(' → ')}`);
    decide();
  }
}

// --- DPoP ----------------------------------------------------------------------------------

/// A new proof for this decision (`https://authority/path`, the request method, the page's
/// time), unless the user asked to send the last one again.
function freshProof() {
  if (!dpop.on || !dpop.key || !state.token.trim()) return;
  if (dpop.replayNext && dpop.proof) {
    dpop.replayNext = false;
    return;
  }
  const r = state.request;
  const path = (r.path || '/').split(/[?#]/)[0];
  const htu = `https://${r.authority || ''}${path}`;
  const out = parse(ag.dpopProof(JSON.stringify(dpop.key), r.method, htu, Number(state.now), state.token.trim()));
  dpop.proof = out.ok ? out.proof : '';
  if (!out.ok) mintStatus(out.error.message, true);
}

function dpopBind() {
  const base = humanClaims || (() => {
    const d = parse(ag.decode(state.token.trim() || 'x'));
    return d.ok ? d.claims : null;
  })();
  if (!base) return mintStatus('Sign a token first.', true);
  const key = parse(ag.generateKey('ES256', 'agent-dpop'));
  if (!key.ok) return mintStatus(key.error.message, true);
  const jkt = parse(ag.jwkThumbprint(JSON.stringify(key.public_jwk)));
  if (!jkt.ok) return mintStatus(jkt.error.message, true);
  humanClaims = { ...base, cnf: { jkt: jkt.jkt } };
  if (!signClaims(humanClaims)) return;
  // The issuer's provider must read the DPoP scheme: turn it on when it is off.
  try {
    const cfg = parse(state.config);
    const p = Object.values(cfg.providers || {}).find((x) => x.issuer === humanClaims.iss);
    if (p && (!p.dpop || (p.dpop.mode || 'off') === 'off')) {
      p.dpop = { ...(p.dpop || {}), mode: 'allowed' };
      state.config = JSON.stringify(cfg, null, 2);
      $('config').value = state.config;
    }
  } catch {
    /* the policy is being edited: the decision will say what is wrong */
  }
  dpop.key = key.private_jwk;
  dpop.on = true;
  dpop.proof = '';
  $('dpop-on').disabled = false;
  $('dpop-on').checked = true;
  $('dpop-replay').disabled = false;
  mintStatus(`Token bound to the agent's key (cnf.jkt ${jkt.jkt.slice(0, 8)}…); each decision sends a fresh proof.`);
  decide();
}

// --- wiring --------------------------------------------------------------------------------

function showFatal(msg, fatal = true) {
  const f = $('fatal');
  f.textContent = msg;
  f.hidden = false;
  if (fatal) $('loading').hidden = true;
}

function wireDpop() {
  $('dpop-bind').addEventListener('click', dpopBind);
  $('dpop-on').addEventListener('change', () => {
    dpop.on = $('dpop-on').checked;
    mintStatus(dpop.on ? 'Sent as DPoP with a proof.' : 'Sent as a bearer token, without the agent\'s key.');
    decide();
  });
  $('dpop-replay').addEventListener('click', () => {
    dpop.replayNext = true;
    decide();
  });
  $('dpop-reset').addEventListener('click', () => {
    ag.resetReplayWindow();
    mintStatus('New session: no proof has been seen.');
    decide();
  });
}

function wire() {
  wireDpop();
  $('config').addEventListener('input', () => {
    state.config = $('config').value;
    decideSoon();
  });
  $('token').addEventListener('input', () => {
    state.token = $('token').value;
    humanClaims = null;
    decideSoon();
  });
  $('remote-jwks').addEventListener('input', () => {
    state.remoteJwks = $('remote-jwks').value;
    decideSoon();
  });
  $('mcp-response').addEventListener('input', () => {
    state.mcpResponse = $('mcp-response').value;
    decideSoon();
  });
  for (const id of ['req-method', 'req-protocol', 'req-path', 'req-authority', 'req-peer-uri', 'req-peer-digest', 'req-headers', 'req-body']) {
    $(id).addEventListener('input', () => {
      fromRequestForm();
      decideSoon();
    });
  }
  $('now').addEventListener('input', () => {
    state.now = Number($('now').value);
    renderNow();
    decideSoon();
  });
  $('now-clock').addEventListener('click', () => {
    state.now = Math.floor(Date.now() / 1000);
    $('now').value = String(state.now);
    renderNow();
    decide();
  });
  $('key-generate').addEventListener('click', generateKey);
  $('m-sign').addEventListener('click', signHuman);
  $('x-exchange').addEventListener('click', exchange);
  $('tab-envoy').addEventListener('click', () => setTab('envoy'));
  $('tab-istio').addEventListener('click', () => setTab('istio'));
  for (const t of ['tab-envoy', 'tab-istio']) {
    $(t).addEventListener('keydown', (e) => {
      const to = { ArrowRight: null, ArrowLeft: null, Home: 'envoy', End: 'istio' }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      setTab(to || (exportFormat === 'envoy' ? 'istio' : 'envoy'));
      $(`tab-${exportFormat}`).focus();
    });
  }
  $('copy-export').addEventListener('click', () => copy($('export-text').value, $('copy-export')));
  $('copy-audit').addEventListener('click', () => copy($('audit').textContent, $('copy-audit')));
  $('copy-test-case').addEventListener('click', () => copy($('test-case').textContent, $('copy-test-case')));
  $('share').addEventListener('click', async () => {
    const url = await shareUrl();
    history.replaceState(null, '', url);
    loadedHash = new URL(url).hash;
    copy(url, $('share'), 'Link copied', 'The link holds the policy, the token and the request (not your keys): share only test tokens.');
  });
  document.addEventListener('keydown', (e) => {
    // A digit loads a scenario: with Alt anywhere, or alone outside a text field (Chrome on
    // Linux keeps Alt+digit for switching browser tabs).
    const typing = e.target instanceof Element && e.target.closest('input, textarea, select, [contenteditable]');
    if (!e.ctrlKey && !e.metaKey && /^[1-9]$/.test(e.key) && (e.altKey || (!typing && !e.shiftKey))) {
      const s = SCENARIOS[Number(e.key) - 1];
      if (s) {
        e.preventDefault();
        loadScenario(s.id, 0);
        document.querySelector(`[data-scenario="${s.id}"]`).focus();
      }
    } else if (e.ctrlKey && e.key === 'Enter') {
      e.preventDefault();
      decide();
    }
  });
}

function setTab(fmt) {
  exportFormat = fmt;
  $('tab-envoy').setAttribute('aria-selected', String(fmt === 'envoy'));
  $('tab-istio').setAttribute('aria-selected', String(fmt === 'istio'));
  // Roving tabindex (ARIA tabs): Tab reaches the selected tab, the arrows switch.
  $('tab-envoy').tabIndex = fmt === 'envoy' ? 0 : -1;
  $('tab-istio').tabIndex = fmt === 'istio' ? 0 : -1;
  $('export-text').setAttribute('aria-labelledby', `tab-${fmt}`);
  renderExport();
}

/// Screen readers hear what a button did (its own text changes are not always announced).
function announce(msg) {
  $('announce').textContent = msg;
}

async function copy(textValue, button, done = 'Copied', more = '') {
  const was = button.dataset.label || button.textContent;
  button.dataset.label = was;
  try {
    await navigator.clipboard.writeText(textValue);
    button.textContent = done;
    announce(`${done}. ${more}`.trim());
  } catch {
    button.textContent = 'Select and copy (clipboard blocked)';
    announce(`The clipboard is blocked: select the text and copy it. ${more}`.trim());
  }
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => (button.textContent = was), 1500);
}

async function restore(initial = true) {
  if (await loadFromHash()) {
    try {
      toForm();
      decide();
      return;
    } catch (e) {
      showFatal(`The link's state could not be shown (${e.message}); starting fresh.`, false);
    }
  }
  if (initial) loadScenario(SCENARIOS[0].id, 0); // a refused link later keeps what is on the page
}

async function main() {
  try {
    await init();
  } catch (e) {
    showFatal(`The actwarden module did not load: ${e.message}. Build it with \`make web\` and serve www/ over http.`);
    throw e;
  }
  $('version').textContent = `core ${ag.version()}`;
  wire();
  await restore();
  window.addEventListener('hashchange', () => {
    // A share link pasted into this tab's address bar (same page, new fragment). Other
    // fragments (the skip link) and the link already shown are left alone.
    if (location.hash.startsWith('#s=') && location.hash !== loadedHash) restore(false);
  });
  renderKeys();
  $('loading').hidden = true;
  document.body.dataset.ready = 'true';
}

// For the browser tests and for experiments in the console.
window.playground = {
  module: ag,
  scenarios: SCENARIOS.map((s) => ({ id: s.id, title: s.title, variants: s.variants.map((v) => ({ label: v.label, expect: v.expect })) })),
  inputs,
  result: () => last,
  state: () => JSON.parse(JSON.stringify(state)),
  loadScenario,
  shareUrl,
  ready: main(),
};

// Rolling a policy out, in the playground: the auth matrix (SPEC §12, the same JSON as
// `actwarden matrix --format json`) and the current scenario as a policy test case
// (`actwarden test`). DOM built with textContent only (the page's CSP has Trusted Types).

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content != null) e.textContent = content;
  return e;
}

/// A table cell of lines.
function cell(lines) {
  const td = el('td');
  lines.filter((l) => l != null && l !== '').forEach((line, i) => {
    if (i) td.append(el('br'));
    td.append(document.createTextNode(line));
  });
  return td;
}

function credentialLines(row) {
  const c = row.credential;
  const lines = row.anonymous ? ['none needed (a present token is still verified)'] : [];
  for (const p of c.providers) {
    lines.push(`${p.name} (${p.issuer}) aud ${p.audiences.join(', ')}`);
    lines.push(`alg ${p.algorithms.join(', ')}; typ ${p.token_types.join(', ')}`);
  }
  lines.push(`cert binding: ${c.cert_binding}`);
  if (c.peer_is_actor) lines.push('mTLS peer = actor');
  return lines;
}

function whoLines(row) {
  if (row.anonymous) return ['anyone'];
  const w = row.who;
  const lines = [`subject: ${w.human_subject ? 'human' : 'any'}`, `delegation: ${w.delegation}`];
  if (w.actors_from === 'any') lines.push('actors: any');
  for (const a of w.actors) lines.push(a.max_scopes ? `${a.actor} ≤ {${a.max_scopes.join(' ')}}` : a.actor);
  lines.push(`depth ≤ ${w.max_chain_depth}`);
  if (w.trust_domains) lines.push(`trust domains: ${w.trust_domains.join(', ')}`);
  return lines;
}

function requireLines(row) {
  const lines = [row.scopes.length ? `scopes: ${row.scopes.join(' ')}` : 'scopes: none'];
  for (const [claim, values] of Object.entries(row.claims)) lines.push(`${claim} ∈ ${JSON.stringify(values)}`);
  if (row.fresh_auth_s != null) lines.push(`auth within ${row.fresh_auth_s} s`);
  return lines;
}

function keysLines(row) {
  const r = row.revocation;
  const lines = row.credential.providers.map((p) => (p.keys.source === 'remote'
    ? `${p.name}: ${p.keys.uri} every ${p.keys.refresh_s} s, stale ≤ ${p.keys.max_stale_s} s`
    : `${p.name}: ${p.keys.count} local key(s)`));
  lines.push(`revoked: jti ${r.jti}, subjects ${r.subjects}, actors ${r.actors}`);
  return lines;
}

function failureLines(row) {
  const f = row.on_failure;
  return [f.on_deny === 'deny' ? 'deny (401/403)' : 'forward, logged (shadow)', `no keys: ${f.keys_unavailable}`, 'never a fallback'];
}

const COLUMNS = ['Rule', 'Matches', 'Mode', 'Credential', 'Who may call', 'Requires', 'Keys & revocation', 'On failure'];

/// Renders `matrix` (the JSON of `actwarden matrix --format json`) into `container`.
export function renderMatrix(container, matrix) {
  const table = el('table', 'matrix');
  const head = el('tr');
  for (const c of COLUMNS) head.append(el('th', null, c));
  table.append(el('thead'));
  table.tHead.append(head);
  const body = el('tbody');
  for (const row of matrix.rules) {
    const tr = el('tr');
    tr.dataset.rule = row.rule;
    const m = row.matches;
    tr.append(
      cell([row.rule]),
      cell([`${m.path_kind} ${m.path}`, m.methods ? m.methods.join(', ') : 'any method']),
      cell([row.mode]),
      cell(credentialLines(row)),
      cell(whoLines(row)),
      cell(requireLines(row)),
      cell(keysLines(row)),
      cell(failureLines(row)),
    );
    body.append(tr);
  }
  table.append(body);
  const n = matrix.on_no_match;
  const foot = el('p', 'muted small', `No rule matches: ${n.action} (${n.reason}${n.status ? `, ${n.status}` : ''}), mode ${n.mode}.`);
  container.replaceChildren(table, foot);
}

/// The current scenario as one case of a policy test file (`actwarden test`): the request
/// with its literal token, the decision time, and what was decided, as the expectation.
export function testCase(request, now, remoteJwks, report) {
  const audit = { rule: report.rule, enforced: report.enforced };
  for (const k of ['sub', 'actor']) if (report[k] != null) audit[k] = report[k];
  const expect = { reason: report.reason, decision: report.decision, status: report.status, headers: report.headers, audit };
  const name = `${report.rule || 'no rule'}: ${report.reason}`;
  const out = { name, request, now: Number(now) };
  if (remoteJwks && Object.keys(remoteJwks).length) {
    // Inline JWKS objects: in a test file a string would be a file name.
    out.remote_jwks = Object.fromEntries(Object.entries(remoteJwks).map(([p, j]) => [p, typeof j === 'string' ? JSON.parse(j) : j]));
  }
  out.expect = expect;
  return out;
}

// Browser tests of the playground: headless Debian Chromium (/usr/bin/chromium) driven by
// playwright-core, against www/ served from loopback. Compares every decision the page
// makes with the CLI's (target/debug/actwarden) for the same configuration, request, time
// and keys. Prints `browser tests: N passed, M failed` and exits non-zero on a failure.
//
//   node host-tests/browser/run.mjs          (after `make web cli`; `make test-browser`)
//   FILTER=corpus node host-tests/browser/run.mjs     only the tests whose name has "corpus"

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { adversarial } from './adversarial.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const CLI = process.env.ACTWARDEN || path.join(root, 'target/debug/actwarden');
const MATERIALIZED = path.join(root, 'target/corpus-materialized.json');
const SCREENSHOT = path.join(root, 'target/playground.png');
const FILTER = process.env.FILTER || '';

let passed = 0;
let failed = 0;
const failures = [];
function ok(name) {
  passed += 1;
  console.log(`ok   ${name}`);
}
function fail(name, why) {
  failed += 1;
  failures.push(`${name}: ${why}`);
  console.log(`FAIL ${name}: ${why}`);
}
function check(name, cond, why) {
  if (cond) ok(name);
  else fail(name, why);
}

// --- the CLI -----------------------------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'actwarden-browser-'));
let fileNo = 0;
function tmpFile(content) {
  fileNo += 1;
  const f = path.join(work, `f${fileNo}.json`);
  fs.writeFileSync(f, content);
  return f;
}

function run(args) {
  return new Promise((resolve) => {
    execFile(CLI, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/// `actwarden check` for page inputs {config, request, now, remote_jwks}.
async function cliCheck(inp) {
  const args = ['check', '--config', tmpFile(inp.config), '--request', tmpFile(inp.request), '--now', String(inp.now)];
  for (const [name, jwks] of Object.entries(inp.remote_jwks || {})) {
    args.push('--jwks', `${name}=${tmpFile(typeof jwks === 'string' ? jwks : JSON.stringify(jwks))}`);
  }
  if (inp.mcp_response != null) args.push('--mcp-response', tmpFile(inp.mcp_response));
  const out = await run(args);
  let report = null;
  try {
    report = JSON.parse(out.stdout);
  } catch {
    /* reported by the caller */
  }
  return { ...out, report };
}

/// Canonical JSON without `eval_us` (measured, so it differs by host).
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => k !== 'eval_us')
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function diff(a, b) {
  const keys = new Set([...Object.keys(a || {}), ...Object.keys(b || {})]);
  const out = [];
  for (const k of keys) {
    if (k === 'eval_us') continue;
    if (canon(a?.[k]) !== canon(b?.[k])) out.push(`${k}: browser ${JSON.stringify(a?.[k])} vs cli ${JSON.stringify(b?.[k])}`);
  }
  return out.join('; ');
}

async function pool(items, n, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

// --- the browser ---------------------------------------------------------------------------------

const server = await serve(path.join(root, 'www'));
const origin = new URL(server.url).origin;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'actwarden-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-quic',
    '--disable-sync',
  ],
  viewport: { width: 1560, height: 1000 },
});

// Every request any page makes, to prove the page never leaves its own origin.
const foreign = [];
let requests = 0;
context.on('request', (r) => {
  requests += 1;
  const u = r.url();
  if (u.startsWith('data:') || u.startsWith('blob:')) return;
  if (new URL(u).origin !== origin) foreign.push(u);
});
const consoleErrors = [];

async function openPage(url = server.url) {
  const page = await context.newPage();
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  return page;
}

const want = (name) => !FILTER || name.includes(FILTER);
const started = Date.now();

try {
  const page = await openPage();
  const scenarios = await page.evaluate(() => window.playground.scenarios);

  // 1. Every scenario and variant: what the screen shows = what was expected = the CLI.
  if (want('scenario')) {
    check('scenario: six scenarios are offered', scenarios.length >= 6, `only ${scenarios.length}`);
    for (const s of scenarios) {
      for (let i = 0; i < s.variants.length; i++) {
        const v = s.variants[i];
        const name = `scenario ${s.id} / ${v.label}`;
        await page.click(`button[data-scenario="${s.id}"]`);
        await page.click(`button[data-variant="${i}"]`);
        const shown = await page.evaluate(() => ({
          badge: document.getElementById('verdict-badge').textContent,
          reason: document.getElementById('verdict-reason').textContent,
          failing: [...document.querySelectorAll('#checks li.check.fail')].map((li) => li.dataset.check),
          report: window.playground.result()?.report,
          inputs: window.playground.inputs(),
        }));
        const cli = await cliCheck(shown.inputs);
        const expectAllow = v.expect === 'allowed';
        const problems = [];
        if (shown.reason !== v.expect) problems.push(`screen says ${shown.reason}, expected ${v.expect}`);
        if (shown.badge !== (expectAllow ? 'ALLOW' : 'DENY')) problems.push(`badge ${shown.badge}`);
        if (!cli.report) problems.push(`cli printed no report (exit ${cli.code}): ${cli.stderr}`);
        else {
          if (cli.report.reason !== shown.reason) problems.push(`cli says ${cli.report.reason}`);
          if (cli.code !== (expectAllow ? 0 : 1)) problems.push(`cli exit ${cli.code}`);
          const d = diff(shown.report, cli.report);
          if (d) problems.push(`report differs: ${d}`);
        }
        if (expectAllow ? shown.failing.length !== 0 : shown.failing.length !== 1) {
          problems.push(`checks list shows ${shown.failing.length} failing checks`);
        }
        check(name, problems.length === 0, problems.join('; '));
      }
    }
  }

  // 2. Lint errors are shown at their JSON path, the CLI names the same path.
  if (want('lint')) {
    await page.click('button[data-scenario="procurement"]');
    const bad = await page.evaluate(() => {
      const c = JSON.parse(document.getElementById('config').value);
      c.rules[1].require.scopes = ['po:draft', 7];
      return JSON.stringify(c, null, 2);
    });
    await page.fill('#config', bad);
    await page.waitForSelector('#lint-errors li.error', { timeout: 5000 });
    const shown = await page.evaluate(() => {
      const li = document.querySelector('#lint-errors li.error');
      return { path: li.dataset.path, text: li.textContent, badge: document.getElementById('verdict-badge').textContent };
    });
    const cli = await run(['lint', '--config', tmpFile(bad)]);
    check(
      'lint: error shown at rules[1].require.scopes[1]',
      shown.path === 'rules[1].require.scopes[1]' && /line \d+:\d+/.test(shown.text) && shown.badge === 'ERROR',
      JSON.stringify(shown),
    );
    check('lint: the CLI refuses it at the same path', cli.code === 2 && cli.stderr.includes('rules[1].require.scopes[1]'), `exit ${cli.code}: ${cli.stderr}`);
    // Clicking the location moves the cursor to the offending value.
    await page.click('#lint-errors li.error button');
    const sel = await page.evaluate(() => {
      const ta = document.getElementById('config');
      return ta.value.slice(ta.selectionStart, ta.selectionStart + 1);
    });
    check('lint: the error link selects the offending value', sel === '7', `selected ${JSON.stringify(sel)}`);
  }

  // 3. Keys and tokens minted in the browser are accepted by the CLI.
  if (want('mint')) {
    for (const [alg, actors, method, reqPath, expect] of [
      ['ES256', ['spiffe://prod.acme.example/agent/orchestrator'], 'POST', '/v1/payments', 'allowed'],
      ['EdDSA', ['spiffe://prod.acme.example/agent/orchestrator', 'spiffe://prod.acme.example/agent/billing'], 'GET', '/v1/invoices/7', 'allowed'],
      ['EdDSA', ['spiffe://prod.acme.example/agent/orchestrator', 'spiffe://prod.acme.example/agent/billing'], 'POST', '/v1/payments', 'actor_scope_exceeded'],
    ]) {
      const name = `mint: ${alg} key, human → ${actors.map((a) => a.split('/').pop()).join(' → ')}, ${method} ${reqPath}`;
      await page.click('button[data-scenario="sub-agent-ceiling"]');
      await page.selectOption('#key-alg', alg);
      await page.fill('#key-kid', `test-${alg.toLowerCase()}-${passed + failed}`);
      await page.click('#key-generate');
      const last = await page.evaluate(() => document.querySelectorAll('#keys li').length - 1);
      await page.click(`button[data-trust="${last}"]`);
      await page.fill('#m-sub', 'user:alice');
      await page.fill('#m-profile', 'user');
      await page.fill('#m-iss', 'https://sts.acme.example');
      await page.fill('#m-aud', 'payments-api');
      await page.fill('#m-scope', 'invoices:read payments:write');
      await page.selectOption('#m-key', String(last));
      await page.click('#m-sign');
      for (const a of actors) {
        await page.fill('#x-actor', a);
        await page.click('#x-exchange');
      }
      await page.selectOption('#req-method', method);
      await page.fill('#req-path', reqPath);
      await page.evaluate(() => document.body.dataset.seq);
      await page.waitForFunction((p) => window.playground.inputs().request.includes(p), reqPath);
      await page.keyboard.press('Control+Enter');
      const shown = await page.evaluate(() => ({
        reason: document.getElementById('verdict-reason').textContent,
        alg: window.playground.result()?.report?.alg,
        chain: window.playground.result()?.report?.chain,
        inputs: window.playground.inputs(),
        report: window.playground.result()?.report,
      }));
      const cli = await cliCheck(shown.inputs);
      const problems = [];
      if (shown.reason !== expect) problems.push(`screen says ${shown.reason}: ${shown.report?.detail}`);
      if (shown.alg !== alg) problems.push(`alg ${shown.alg}`);
      if (canon(shown.chain) !== canon([...actors].reverse())) problems.push(`chain ${JSON.stringify(shown.chain)}`);
      if (!cli.report || cli.report.reason !== expect) problems.push(`cli: ${cli.report?.reason} ${cli.stderr}`);
      else if (diff(shown.report, cli.report)) problems.push(diff(shown.report, cli.report));
      check(name, problems.length === 0, problems.join('; '));
    }
  }

  // 3b. A token and JWKS made by the CLI, pasted into the page (remote_jwks provider).
  if (want('paste')) {
    const key = await run(['keygen', '--alg', 'ES256', '--kid', 'cli-key']);
    const keyFile = tmpFile(key.stdout);
    const jwks = (await run(['jwks', keyFile])).stdout.trim();
    const claims = {
      iss: 'https://idp.partner.example',
      sub: 'user:bob',
      sub_profile: 'user',
      aud: 'orders-api',
      scope: 'orders:read',
      iat: 1800000000 - 30,
      exp: 1800000000 + 300,
      act: { sub: 'spiffe://prod.partner.example/agent/concierge', sub_profile: 'ai_agent' },
    };
    const token = (await run(['mint', '--key', keyFile, '--claims', tmpFile(JSON.stringify(claims))])).stdout.trim();
    const config = JSON.stringify(
      {
        providers: {
          'partner-idp': {
            issuer: 'https://idp.partner.example',
            audiences: ['orders-api'],
            remote_jwks: { http_uri: { uri: 'https://idp.partner.example/jwks', cluster: 'idp', timeout_ms: 1000 } },
          },
        },
        identity: { trust_domains: ['prod.partner.example'] },
        rules: [{ id: 'orders', match: { path_prefix: '/v1/orders' }, require: { scopes: ['orders:read'], delegated: true } }],
      },
      null,
      2,
    );
    const results = [];
    for (const [remote, expect] of [[JSON.stringify({ 'partner-idp': JSON.parse(jwks) }), 'allowed'], ['', 'jwks_unavailable']]) {
      await page.fill('#config', config);
      await page.fill('#token', token);
      await page.fill('#remote-jwks', remote);
      await page.fill('#req-path', '/v1/orders/17');
      await page.selectOption('#req-method', 'GET');
      await page.fill('#req-peer-uri', '');
      await page.fill('#req-peer-digest', '');
      await page.fill('#now', '1800000000');
      await page.keyboard.press('Control+Enter');
      const shown = await page.evaluate(() => ({
        reason: document.getElementById('verdict-reason').textContent,
        inputs: window.playground.inputs(),
        report: window.playground.result()?.report,
      }));
      const cli = await cliCheck(shown.inputs);
      results.push([expect, shown.reason, cli.report?.reason, diff(shown.report, cli.report || {})]);
    }
    check(
      'paste: a CLI-minted token and a fetched JWKS pasted in the page decide as in the CLI (with and without the JWKS)',
      results.every(([e, b, c, d]) => e === b && e === c && !d),
      JSON.stringify(results),
    );
  }

  // 3c. Keyboard: Alt+digit loads a scenario; the chain view shows what the ceiling removed.
  if (want('keyboard')) {
    await page.keyboard.press('Alt+3');
    const shown = await page.evaluate(() => ({
      pressed: document.querySelector('button.scenario[aria-pressed="true"]')?.dataset.scenario,
      focused: document.activeElement?.dataset?.scenario,
      reason: document.getElementById('verdict-reason').textContent,
      removed: [...document.querySelectorAll('#chain .node.current .chip.removed')].map((c) => c.textContent),
      effective: [...document.querySelectorAll('#chain .effective .chip')].map((c) => c.textContent),
    }));
    check(
      'keyboard: Alt+3 loads the ceiling scenario; the chain shows payments:write removed by the sub-agent',
      shown.pressed === 'sub-agent-ceiling' && shown.focused === 'sub-agent-ceiling' && shown.reason === 'actor_scope_exceeded' &&
        canon(shown.removed) === canon(['payments:write']) && canon(shown.effective) === canon(['invoices:read']),
      JSON.stringify(shown),
    );
    // A plain digit does the same outside text fields (Chrome on Linux keeps Alt+digit for
    // its tabs), and types a digit inside one.
    await page.focus('#decision').catch(() => {});
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press('4');
    const plain = await page.evaluate(() => document.querySelector('button.scenario[aria-pressed="true"]')?.dataset.scenario);
    await page.focus('#req-path');
    const before = await page.inputValue('#req-path');
    await page.keyboard.press('End');
    await page.keyboard.press('5');
    const typed = await page.inputValue('#req-path');
    const still = await page.evaluate(() => document.querySelector('button.scenario[aria-pressed="true"]')?.dataset.scenario);
    check(
      'keyboard: 4 alone loads scenario 4 outside text fields; inside the path field it types a 5',
      plain === 'staging-to-prod' && typed === before + '5' && still !== 'expired-delegation',
      JSON.stringify({ plain, before, typed, still }),
    );
  }

  // 4. Errors come back as values, never as exceptions.
  if (want('errors')) {
    const r = await page.evaluate(() => {
      const ag = window.playground.module;
      const out = {};
      const t = (name, f) => {
        try {
          out[name] = JSON.parse(f());
        } catch (e) {
          out[name] = { threw: String(e) };
        }
      };
      t('config', () => ag.check('{"rules": 5}', '{"method":"GET","path":"/"}', 1, undefined));
      t('notjson', () => ag.check('{', '{"method":"GET","path":"/"}', 1, undefined));
      t('request', () => ag.check('{"rules":[]}', '{"method":7}', 1, undefined));
      t('now', () => ag.check('{"rules":[]}', '{"method":"GET","path":"/"}', -1, undefined));
      t('nan', () => ag.check('{"rules":[]}', '{"method":"GET","path":"/"}', NaN, undefined));
      t('jwks', () => ag.check('{"rules":[]}', '{"method":"GET","path":"/"}', 1, '{"p": "nope"}'));
      t('decode', () => ag.decode('not.a.token!'));
      t('sign', () => ag.signToken('{"kty":"EC"}', '{}', undefined, undefined));
      t('alg', () => ag.generateKey('none', 'k'));
      t('claims', () => ag.delegate('[1]', 'spiffe://a/b', undefined));
      t('jwksKeys', () => ag.publicJwks('[1]'));
      return out;
    });
    const bad = Object.entries(r).filter(([, v]) => !(v && v.ok === false && v.error && typeof v.error.message === 'string'));
    check('errors: every export returns {ok:false, error} on bad input', bad.length === 0, JSON.stringify(bad));
    check('errors: config error names the JSON path', r.config?.error?.path === 'rules', JSON.stringify(r.config));
  }

  // 5. Share: the whole state in the fragment; a new page shows the same decision.
  if (want('share')) {
    await page.click('button[data-scenario="stolen-token"]');
    await page.click('button[data-variant="2"]');
    const url = await page.evaluate(() => window.playground.shareUrl());
    const before = await page.evaluate(() => ({ inputs: window.playground.inputs(), reason: document.getElementById('verdict-reason').textContent }));
    const p2 = await openPage(url);
    const after = await p2.evaluate(() => ({ inputs: window.playground.inputs(), reason: document.getElementById('verdict-reason').textContent }));
    await p2.close();
    check(
      'share: the link restores policy, token, request and decision',
      url.startsWith(`${origin}/#s=`) && canon(before) === canon(after) && after.reason === 'binding_mismatch',
      `${url.slice(0, 60)}… ${JSON.stringify(after).slice(0, 200)}`,
    );
  }

  // 6. Export: the Envoy snippet and the Istio WasmPlugin carry exactly the policy.
  if (want('export')) {
    await page.click('button[data-scenario="support-crm"]');
    const out = await page.evaluate(() => {
      const get = (tab) => {
        document.getElementById(tab).click();
        return document.getElementById('export-text').value;
      };
      return { envoy: get('tab-envoy'), istio: get('tab-istio'), config: document.getElementById('config').value };
    });
    const block = (text, marker) => {
      const lines = text.split('\n');
      const at = lines.findIndex((l) => l.trimEnd().endsWith(marker));
      const body = lines.slice(at + 1).filter((l) => l.trim());
      const pad = Math.min(...body.map((l) => l.length - l.trimStart().length));
      return JSON.parse(body.map((l) => l.slice(pad)).join('\n'));
    };
    let envoyOk = false;
    let istioOk = false;
    try {
      envoyOk = out.envoy.includes('envoy.filters.http.wasm') && canon(block(out.envoy, 'value: |')) === canon(JSON.parse(out.config));
      istioOk = out.istio.includes('kind: WasmPlugin') && canon(block(out.istio, 'pluginConfig:')) === canon(JSON.parse(out.config));
    } catch (e) {
      envoyOk = envoyOk || false;
      console.log(`export parse: ${e.message}`);
    }
    check('export: Envoy wasm filter snippet carries the policy', envoyOk, out.envoy.slice(0, 200));
    check('export: Istio WasmPlugin carries the policy', istioOk, out.istio.slice(0, 200));
  }

  // 6b. Rolling out (SPEC §11, §12): the matrix panel = `actwarden matrix --format json`,
  // the exported test case passes `actwarden test`, a shadow denial is marked.
  if (want('rollout')) {
    for (const s of scenarios) {
      await page.click(`button[data-scenario="${s.id}"]`);
      await page.click('button[data-variant="1"]').catch(() => {});
      const shown = await page.evaluate(() => ({
        rows: [...document.querySelectorAll('#matrix tbody tr')].map((tr) => tr.dataset.rule),
        matrix: JSON.parse(window.playground.module.matrix(document.getElementById('config').value)).matrix,
        rules: JSON.parse(window.playground.module.lint(document.getElementById('config').value)).rules,
        testCase: document.getElementById('test-case').textContent,
        config: document.getElementById('config').value,
      }));
      const cliMatrix = await run(['matrix', '--config', tmpFile(shown.config), '--format', 'json']);
      check(
        `rollout: ${s.id}: the matrix panel shows every rule, as the CLI`,
        canon(shown.rows) === canon(shown.rules) && cliMatrix.code === 0 && canon(JSON.parse(cliMatrix.stdout)) === canon(shown.matrix),
        `${JSON.stringify(shown.rows)} vs ${JSON.stringify(shown.rules)}; cli exit ${cliMatrix.code}`,
      );
      const file = tmpFile(JSON.stringify({ cases: [JSON.parse(shown.testCase)] }));
      const cliTest = await run(['test', '--config', tmpFile(shown.config), file]);
      check(`rollout: ${s.id}: the exported test case passes actwarden test`, cliTest.code === 0 && cliTest.stdout === '1 passed, 0 failed\n', `exit ${cliTest.code}: ${cliTest.stdout}${cliTest.stderr}`);
    }
    await page.click('button[data-scenario="sub-agent-ceiling"]');
    await page.click('button[data-variant="0"]');
    const shadow = await page.evaluate(() => {
      const c = JSON.parse(document.getElementById('config').value);
      c.mode = 'shadow';
      return JSON.stringify(c, null, 2);
    });
    await page.fill('#config', shadow);
    await page.fill('#req-path', '/v2/nowhere');
    await page.waitForFunction(() => document.getElementById('verdict').dataset.reason === 'route_denied');
    const marked = await page.evaluate(() => ({
      badge: document.getElementById('verdict-badge').textContent,
      shadow: !document.getElementById('verdict-mode').hidden,
      enforced: window.playground.result()?.report?.enforced,
      response: document.getElementById('fact-response').textContent,
    }));
    check('rollout: a shadow denial is shown as DENY, marked SHADOW, forwarded', marked.badge === 'DENY' && marked.shadow && marked.enforced === false && marked.response.startsWith('forwarded upstream'), JSON.stringify(marked));
  }

  // 7. The whole decision corpus: decided in the browser, compared with the CLI.
  if (want('corpus')) {
    // Materialised natively by the test-support crate (scripts/test-browser.sh runs
    // `corpus-materialize`): the playground's public API carries no corpus code.
    const cases = JSON.parse(fs.readFileSync(MATERIALIZED, 'utf8'));
    const decided = await page.evaluate(
      ({ cases }) => {
        const ag = window.playground.module;
        return cases.map((m) => {
          const remote = Object.keys(m.remote_jwks).length ? JSON.stringify(m.remote_jwks) : undefined;
          // A DPoP `replay` case: the page's session window sees the proof twice.
          const mcpResponse = m.mcp_response ?? undefined;
          const first = m.replay ? JSON.parse(ag.check(m.config, m.request, m.now, remote, mcpResponse)) : null;
          const r = JSON.parse(ag.check(m.config, m.request, m.now, remote, mcpResponse));
          return { name: m.name, expect: m.expect, inputs: { config: m.config, request: m.request, now: m.now, remote_jwks: m.remote_jwks, mcp_response: m.mcp_response }, result: r, first };
        });
      },
      { cases },
    );
    let same = 0;
    const problems = [];
    await pool(decided, 2, async (d) => {
      if (d.error) return problems.push(`materialize: ${JSON.stringify(d.error)}`);
      if (!d.result.ok) return problems.push(`${d.name}: browser error ${JSON.stringify(d.result.error)}`);
      const rep = d.result.report;
      // The CLI decides one request per run: it is compared with the first use of a
      // replayed proof (SPEC §10).
      const once = d.first ? d.first.report : rep;
      const cli = await cliCheck(d.inputs);
      const why = [];
      if (!cli.report) why.push(`cli exit ${cli.code}: ${cli.stderr.trim()}`);
      else {
        const dd = diff(once, cli.report);
        if (dd) why.push(dd);
        if (cli.code !== (once.decision === 'allow' ? 0 : 1)) why.push(`cli exit ${cli.code}`);
      }
      if (rep.reason !== d.expect.reason || rep.decision !== d.expect.decision) {
        why.push(`expected ${d.expect.decision}/${d.expect.reason}, browser gave ${rep.decision}/${rep.reason}`);
      }
      // SPEC §9: the filtered tools/list the playground shows.
      if (d.expect.filtered_tools != null) {
        const f = rep.filtered_response;
        let got = null;
        if (f && f.status === 502) got = 'unfilterable';
        else if (f) {
          const text = f.body.trim().startsWith('{') ? f.body : (f.body.split('\n').find((l) => l.startsWith('data:') && l.includes('"result"')) || '').slice(5);
          try { got = JSON.parse(text).result.tools.map((t) => t.name); } catch { got = null; }
        }
        if (JSON.stringify(got) !== JSON.stringify(d.expect.filtered_tools)) why.push(`filtered tools ${JSON.stringify(got)}, expected ${JSON.stringify(d.expect.filtered_tools)}`);
      }
      if (why.length) problems.push(`${d.name}: ${why.join('; ')}`);
      else same += 1;
    });
    for (const p of problems) console.log(`  corpus: ${p}`);
    check(`corpus: ${decided.length} cases and twins, browser report = CLI report = expectation`, problems.length === 0 && same === cases.length, `${problems.length} differ (${same}/${cases.length} equal); first: ${problems[0]}`);
  }

  // 7a. DPoP (SPEC §10) in the page: a bound token with a proof is allowed once, the same
  // proof again is a replay (one window per session), a new session forgets it, and the
  // token without the key is refused. Then the mint panel's DPoP buttons.
  if (want('dpop')) {
    const r = await page.evaluate(() => {
      const ag = window.playground.module;
      const p = (s) => JSON.parse(s);
      const iss = p(ag.generateKey('ES256', 'iss'));
      const agent = p(ag.generateKey('EdDSA', 'agent'));
      const now = 1800000000;
      const config = JSON.stringify({
        providers: { sts: { issuer: 'https://sts.example.com', audiences: ['api'],
          local_jwks: { inline_string: JSON.stringify(iss.jwks) }, dpop: { mode: 'allowed' } } },
        rules: [{ id: 'pay', match: { path_prefix: '/v1' } }],
      });
      const jkt = p(ag.jwkThumbprint(JSON.stringify(agent.public_jwk))).jkt;
      const claims = { iss: 'https://sts.example.com', sub: 'user:alice', aud: 'api', iat: now, exp: now + 600, cnf: { jkt } };
      const token = p(ag.signToken(JSON.stringify(iss.private_jwk), JSON.stringify(claims))).token;
      const proof = p(ag.dpopProof(JSON.stringify(agent.private_jwk), 'POST', 'https://api.example.com/v1/pay', now, token)).proof;
      const req = (scheme, withProof) => JSON.stringify({ method: 'POST', path: '/v1/pay', authority: 'api.example.com',
        headers: withProof ? { authorization: `${scheme} ${token}`, dpop: proof } : { authorization: `${scheme} ${token}` } });
      const reason = (s) => p(ag.check(config, s, now)).report.reason;
      const out = { first: reason(req('DPoP', true)), again: reason(req('DPoP', true)) };
      ag.resetReplayWindow();
      out.afterReset = reason(req('DPoP', true));
      out.bearer = reason(req('Bearer', false));
      out.challenge = p(ag.check(config, req('Bearer', false), now)).report.response.headers['www-authenticate'];
      return out;
    });
    check('dpop: proof allowed once, replayed in the same session', r.first === 'allowed' && r.again === 'dpop_replayed', JSON.stringify(r));
    check('dpop: a new session forgets proofs', r.afterReset === 'allowed', JSON.stringify(r));
    check('dpop: the copied token as bearer is dpop_required with a DPoP challenge',
      r.bearer === 'dpop_required' && /^DPoP error="invalid_dpop_proof"/.test(r.challenge || ''), JSON.stringify(r));

    // The mint panel: bind the agent's token to a new key, then replay, then send as bearer.
    await page.click('button[data-scenario="sub-agent-ceiling"]');
    await page.selectOption('#key-alg', 'ES256');
    await page.fill('#key-kid', 'dpop-issuer');
    await page.click('#key-generate');
    const last = await page.evaluate(() => document.querySelectorAll('#keys li').length - 1);
    await page.click(`button[data-trust="${last}"]`);
    await page.fill('#m-iss', 'https://sts.acme.example');
    await page.fill('#m-aud', 'payments-api');
    await page.fill('#m-scope', 'invoices:read payments:write');
    await page.selectOption('#m-key', String(last));
    await page.click('#m-sign');
    await page.fill('#x-actor', 'spiffe://prod.acme.example/agent/orchestrator');
    await page.click('#x-exchange');
    await page.selectOption('#req-method', 'POST');
    await page.fill('#req-path', '/v1/payments');
    await page.waitForFunction(() => window.playground.inputs().request.includes('/v1/payments'));
    const shown = async () => page.evaluate(() => ({
      reason: document.getElementById('verdict-reason').textContent,
      binding: window.playground.result()?.report?.binding,
      detail: window.playground.result()?.report?.detail,
      inputs: window.playground.inputs(),
    }));
    await page.click('#dpop-bind');
    const bound = await shown();
    const cli = await cliCheck(bound.inputs);
    await page.click('#dpop-replay');
    // Longer than the input debounce: no decision left pending replaces the replay's.
    await page.waitForTimeout(300);
    const replayed = await shown();
    await page.click('#dpop-on');
    const bearer = await shown();
    check('dpop: the mint panel binds to an agent key and sends a proof (allowed, as the CLI decides)',
      bound.reason === 'allowed' && bound.binding === 'dpop' && cli.report?.reason === 'allowed',
      `${JSON.stringify(bound)} cli ${cli.report?.reason} ${cli.report?.detail}`);
    check('dpop: "send the last proof again" is dpop_replayed', replayed.reason === 'dpop_replayed', JSON.stringify(replayed));
    check('dpop: unchecking DPoP sends the bound token as bearer: dpop_required', bearer.reason === 'dpop_required', JSON.stringify(bearer));
  }

  // 7b. Hostile share links and inputs, the CSP, keyboard and assistive technology
  // (adversarial.mjs). Before 8, whose network check also covers these pages.
  if (want('attack') || want('a11y')) {
    const t0 = Date.now();
    await adversarial({ context, baseUrl: server.url, foreign, check: (name, cond, why) => want(name.split(':')[0]) && check(name, cond, why) });
    console.log(`  (adversarial tests: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  // 8. Screenshot for people, then: no request ever left the page's origin.
  const shot = await openPage();
  await shot.click('button[data-scenario="sub-agent-ceiling"]');
  await shot.evaluate(() => document.getElementById('decoded-box').setAttribute('open', ''));
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await shot.screenshot({ path: SCREENSHOT, fullPage: true });
  await shot.close();
  check('screenshot written to target/playground.png', fs.statSync(SCREENSHOT).size > 10000, 'too small');
  check(`network: all ${requests} requests stayed on ${origin}`, foreign.length === 0 && requests > 0, foreign.slice(0, 5).join(', '));
  check('console: no page errors', consoleErrors.length === 0, consoleErrors.slice(0, 3).join(' | '));
} catch (e) {
  fail('browser run', e.stack || String(e));
} finally {
  await context.close().catch(() => {});
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
if (failures.length) console.log(`failures:\n  ${failures.join('\n  ')}`);
console.log(`browser tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

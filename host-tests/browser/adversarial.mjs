// Adversarial browser tests of the playground: a share link (`#s=…`) is attacker-controlled
// input, and so is every token, claim, JWKS and policy the page renders. Imported by
// run.mjs (`FILTER=attack` runs only these).
//
// Each hostile page gets an init script that records Content-Security-Policy violations and
// a `window.__pwned` canary; dialogs are recorded with Playwright's `page.on('dialog')`. The
// payloads would set the canary or open a dialog if any of them ran.

import zlib from 'node:zlib';

const pack = (value) => `#s=${zlib.deflateRawSync(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))).toString('base64url')}`;
const unpack = (url) => JSON.parse(zlib.inflateRawSync(Buffer.from(new URL(url).hash.slice(3), 'base64url')).toString('utf8'));

const P = '"><img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script><svg onload=alert(3)>';
const SCRIPTLESS = 'javascript:alert(4)';

function watch(page) {
  const seen = { dialogs: [], errors: [] };
  page.on('dialog', (d) => {
    seen.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  return seen;
}

async function hostilePage(context, url) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const seen = watch(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return { page, seen };
}

/// What an injection would leave behind: the canary, handler attributes, new elements.
function traces() {
  const onAttrs = [];
  for (const e of document.querySelectorAll('*')) {
    for (const a of e.attributes) if (/^on/i.test(a.name)) onAttrs.push(`${e.tagName}[${a.name}]`);
  }
  const hrefs = [...document.querySelectorAll('[href],[src],[action],[formaction]')]
    .map((e) => e.getAttribute('href') ?? e.getAttribute('src') ?? e.getAttribute('action') ?? e.getAttribute('formaction'))
    .filter((h) => !['#decision', 'style.css', 'data:,', 'app.js'].includes(h));
  return {
    pwned: window.__pwned,
    csp: window.__csp,
    onAttrs,
    hrefs,
    scripts: document.scripts.length,
    foreignElements: document.querySelectorAll('img, svg, iframe, object, embed, frame, form, base, meta[http-equiv="refresh"], style, link:not([rel=stylesheet]):not([rel=icon])').length,
    text: document.body.textContent,
    exported: document.getElementById('export-text').value,
    methodOptions: [...document.querySelectorAll('#req-method option')].map((o) => o.textContent),
  };
}

export async function adversarial({ context, baseUrl, foreign, check }) {
  const page0 = await context.newPage();
  await page0.goto(baseUrl);
  await page0.waitForSelector('body[data-ready="true"]', { timeout: 30000 });

  // 1. Payloads everywhere the page renders attacker text. Built with the page's own module
  // and the public scenario key, so the token verifies and identity headers are forwarded.
  const states = await page0.evaluate(
    ({ P, SCRIPTLESS }) => {
      const ag = window.playground.module;
      const base = JSON.parse(window.playground.inputs().config);
      const sts = {
        kty: 'OKP', crv: 'Ed25519', x: 'Z-QB5h9wPhvPF9HgIFJnl22AuclnOI1o6GbnSDbQcL0',
        d: 'CAQyPV0WHWS3tyUSev6auF_KhhfTP9XRBXT5XhwEfcY', alg: 'EdDSA', kid: 'acme-sts-2027',
      };
      const mint = (claims, actors) => {
        let c = claims;
        for (const [a, prof] of actors) c = JSON.parse(ag.delegate(JSON.stringify(c), a, prof)).claims;
        return JSON.parse(ag.signToken(JSON.stringify(sts), JSON.stringify(c))).token;
      };
      // The procurement scenario's policy, GET /v1/purchase-orders needs po:read only.
      const claims = {
        iss: 'https://sts.acme.example', sub: `user:${P}`, sub_profile: `user${P}`, aud: 'procurement-api',
        scope: `po:read x<img/src=x/onerror=alert(5)> ${SCRIPTLESS}`, iat: 1800000000 - 60, exp: 1800000000 + 600,
        jti: P, note: P, link: SCRIPTLESS,
      };
      const agent = 'spiffe://prod.acme.example/agent/procurement';
      const request = (extra = {}) => ({
        method: 'GET', path: '/v1/purchase-orders', authority: 'api.acme.example', protocol: 'http',
        peer_uri: '', peer_digest: '', headers: { 'x-note': P, 'x-link': SCRIPTLESS }, ...extra,
      });
      const allowed = { v: 1, scenario: P, variant: P, config: JSON.stringify(base, null, 2), token: mint(claims, [[agent, `ai_agent${P}`]]), request: request(), now: 1800000000, remoteJwks: '' };
      const evilActor = `spiffe://prod.acme.example/agent/${P}`;
      const denied = { ...allowed, token: mint(claims, [[evilActor, 'ai_agent'], [agent, 'ai_agent']]), request: request({ path: `/v1/purchase-orders/${P}` }) };
      const badConfig = JSON.parse(JSON.stringify(base));
      badConfig.rules[0].id = P;
      badConfig[P] = SCRIPTLESS;
      const lint = { ...allowed, config: JSON.stringify(badConfig, null, 2), request: request({ method: P }) };
      const remote = { ...allowed, remoteJwks: JSON.stringify({ [P]: P }) };
      const badRequest = { ...allowed, request: request({ headers: { [P]: 7 } }) };
      return { allowed, denied, lint, remote, badRequest };
    },
    { P, SCRIPTLESS },
  );
  await page0.close();

  const results = {};
  for (const [name, s] of Object.entries(states)) {
    const { page, seen } = await hostilePage(context, baseUrl + pack(s));
    await page.waitForTimeout(150); // an injected <img onerror> would have fired by now
    const t = await page.evaluate(traces);
    const shown = await page.evaluate(() => ({
      decision: document.getElementById('verdict').dataset.decision,
      reason: document.getElementById('verdict-reason').textContent,
      pressed: document.querySelectorAll('[aria-pressed="true"]').length,
    }));
    results[name] = { ...t, ...shown, dialogs: seen.dialogs, errors: seen.errors };
    await page.close();
  }
  const problems = [];
  for (const [name, r] of Object.entries(results)) {
    if (r.pwned !== undefined) problems.push(`${name}: canary set to ${r.pwned}`);
    if (r.dialogs.length) problems.push(`${name}: dialogs ${r.dialogs}`);
    if (r.errors.length) problems.push(`${name}: page errors ${r.errors}`);
    if (r.csp.length) problems.push(`${name}: CSP violations ${r.csp}`);
    if (r.onAttrs.length) problems.push(`${name}: event-handler attributes ${r.onAttrs}`);
    if (r.hrefs.length) problems.push(`${name}: unexpected URLs ${r.hrefs}`);
    if (r.scripts !== 1 || r.foreignElements) problems.push(`${name}: ${r.scripts} scripts, ${r.foreignElements} injected elements`);
    if (r.pressed !== 0) problems.push(`${name}: a scenario is shown as selected`);
    if (!r.text.includes('<img src=x onerror=')) problems.push(`${name}: the payload is not shown as text`);
  }
  // Each payload reached the place it targets (the test would be vacuous otherwise).
  const a = results.allowed;
  if (a.decision !== 'allow') problems.push(`allowed: ${a.reason}`);
  if (!a.text.includes(`user:${P}`)) problems.push('allowed: the subject is not in the chain view');
  if (results.denied.decision !== 'deny' || !results.denied.text.includes(`agent/${P}`)) problems.push(`denied: ${results.denied.reason}, actor id not shown`);
  if (results.lint.reason !== 'configuration refused' || !results.lint.methodOptions.includes(P)) problems.push(`lint: ${results.lint.reason}, methods ${results.lint.methodOptions}`);
  if (results.remote.decision !== 'error' || results.badRequest.decision !== 'error') problems.push(`remote ${results.remote.reason}, request ${results.badRequest.reason}`);
  check(
    'attack: a share link with <img onerror>/<script>/<svg onload>/javascript: in claims, actor ids, profiles, rule ids, lint errors, reason details, headers, JWKS names and method renders them as text: no canary, dialog, handler attribute, injected element or CSP violation',
    problems.length === 0,
    problems.slice(0, 6).join(' | '),
  );

  // 2. The Content-Security-Policy blocks what an injection would need, and the page itself
  // needs nothing it blocks (no violation in normal use, see 1).
  await guard(check, 'attack: the CSP', async () => {
    const page = await context.newPage();
    const seen = watch(page);
    const blocked = [];
    page.on('requestfailed', (r) => blocked.push([r.url(), r.failure()?.errorText]));
    await page.goto(baseUrl);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const r = await page.evaluate(async () => {
      const v = [];
      document.addEventListener('securitypolicyviolation', (e) => v.push(e.violatedDirective));
      const out = {};
      const t = (n, f) => {
        try {
          f();
          out[n] = 'ran';
        } catch (e) {
          out[n] = e.name;
        }
      };
      t('innerHTML', () => (document.createElement('div').innerHTML = '<img src=x onerror="window.__pwned=1">'));
      t('handler', () => document.body.setAttribute('onclick', 'window.__pwned=2'));
      t('script', () => {
        const s = document.createElement('script');
        s.append(document.createTextNode('window.__pwned=3'));
        document.head.append(s);
      });
      t('timer', () => setTimeout('window.__pwned=4', 0));
      t('image', () => (new Image().src = 'http://csp-probe.invalid/i.png'));
      t('frame', () => {
        const f = document.createElement('iframe');
        f.src = 'http://csp-probe.invalid/f';
        document.body.append(f);
      });
      try {
        await fetch('http://csp-probe.invalid/x');
        out.fetch = 'ran';
      } catch (e) {
        out.fetch = e.name;
      }
      await new Promise((res) => setTimeout(res, 200));
      return { out, v: [...new Set(v)].sort(), pwned: window.__pwned };
    });
    await page.close();
    // The probes' attempts are recorded as (blocked) requests: take them out of the global
    // "nothing left the origin" list once shown to be blocked by the CSP.
    const probes = foreign.filter((u) => u.includes('csp-probe.invalid'));
    for (let i = foreign.length - 1; i >= 0; i--) if (foreign[i].includes('csp-probe.invalid')) foreign.splice(i, 1);
    const notBlocked = blocked.filter(([u, why]) => u.includes('csp-probe.invalid') && !/csp/i.test(why || ''));
    const want = ['connect-src', 'img-src', 'require-trusted-types-for'];
    check(
      'attack: the CSP blocks innerHTML, handler attributes, inline and string-timer script (Trusted Types, script-src) and off-origin image/frame/fetch',
      r.pwned === undefined && seen.dialogs.length === 0 && r.out.innerHTML === 'TypeError' && r.out.handler === 'TypeError' && r.out.fetch === 'TypeError' &&
        want.every((d) => r.v.includes(d)) && (r.v.includes('frame-src') || r.v.includes('default-src')) && notBlocked.length === 0 && seen.errors.length === 0,
      JSON.stringify({ r, probes, notBlocked, errors: seen.errors }),
    );
  });

  // 3. A decompression bomb: 128 MiB of JSON in ~130 KB of link. Refused with a message,
  // and the page stays usable (times are printed, never asserted: a slow CI machine is not
  // a failure, and without the cap the tab dies, which the checks below catch).
  await guard(check, 'attack: a decompression bomb', async () => {
    const bomb = zlib.deflateRawSync(Buffer.concat([Buffer.from('{"v":1,"config":"'), Buffer.alloc(128 << 20, 97), Buffer.from('"}')]), { level: 9 });
    const started = Date.now();
    const { page, seen } = await hostilePage(context, `${baseUrl}#s=${bomb.toString('base64url')}`);
    const loadMs = Date.now() - started;
    const refusal = await page.evaluate(() => ({
      fatal: document.getElementById('fatal').hidden ? '' : document.getElementById('fatal').textContent,
      role: document.getElementById('fatal').getAttribute('role'),
      reason: document.getElementById('verdict-reason').textContent,
    }));
    const t0 = Date.now();
    await page.click('button[data-scenario="support-crm"]');
    const after = await page.evaluate(() => ({
      stale: !document.getElementById('fatal').hidden,
      reason: document.getElementById('verdict-reason').textContent,
      configLength: document.getElementById('config').value.length,
    }));
    const clickMs = Date.now() - t0;
    await page.close();
    // Not a state at all: refused with a message too.
    const junk = await hostilePage(context, `${baseUrl}#s=AAAA-not-deflate_`);
    const junkFatal = await junk.page.evaluate(() => document.getElementById('fatal').textContent);
    await junk.page.close();
    check(
      `attack: a decompression bomb (${bomb.length} B → 128 MiB) is refused with a message in ${loadMs} ms; the page stays usable (a click decides in ${clickMs} ms); a non-deflate link is refused too`,
      /refused.*more than 1 MiB/.test(refusal.fatal) && refusal.role === 'alert' && refusal.reason === 'stepup_required' &&
        after.reason === 'allowed' && !after.stale &&
        after.configLength < 10000 && /refused/.test(junkFatal) && seen.errors.length === 0 && junk.seen.errors.length === 0,
      JSON.stringify({ loadMs, clickMs, refusal, after, junkFatal, errors: seen.errors }),
    );
  });

  // 4. Wrong types and `__proto__` keys in a link: no prototype pollution, no broken page.
  await guard(check, 'attack: __proto__ and wrong types', async () => {
    const text =
      '{"__proto__":{"polluted":"state"},"constructor":{"prototype":{"polluted":"ctor"}},"v":1,"scenario":{"__proto__":1},' +
      '"config":{"__proto__":{"polluted":"config"},"rules":[]},"token":["x"],"now":"1800000000",' +
      '"request":{"__proto__":{"polluted":"request"},"method":7,"path":null,"peer_uri":5,"peer_digest":{"a":1},' +
      '"headers":{"__proto__":{"polluted":"headers"},"x-a":"b"}},"remoteJwks":{"__proto__":{"polluted":"jwks"}}}';
    const { page, seen } = await hostilePage(context, baseUrl + pack(text));
    // And the mint panel on a policy whose provider is called __proto__.
    await page.fill(
      '#config',
      `{"providers": {"__proto__": {"issuer": "https://i.example", "audiences": ["a"], "local_jwks": {"inline_string": ${JSON.stringify('{"keys":[],"__proto__":{"polluted":"jwks"}}')}}}}, "rules": []}`,
    );
    await page.click('#key-generate');
    await page.click('button[data-trust="0"]');
    const r = await page.evaluate(() => ({
      polluted: [{}.polluted, Object.prototype.polluted, Array.prototype.polluted, Object.getOwnPropertyNames(Object.prototype).length],
      request: JSON.parse(window.playground.inputs().request),
      now: window.playground.state().now,
      decision: document.getElementById('verdict').dataset.decision,
      status: document.getElementById('mint-status').textContent,
    }));
    const baseline = await page0Baseline(context, baseUrl);
    await page.close();
    check(
      'attack: __proto__/constructor keys and wrong types in a link or policy pollute no prototype and do not break the page',
      r.polluted[0] === undefined && r.polluted[1] === undefined && r.polluted[2] === undefined && r.polluted[3] === baseline &&
        seen.errors.length === 0 && r.now === 1800000000 && r.request.headers['x-a'] === 'b' && !('peer' in r.request) && r.decision !== undefined && /trusted/.test(r.status),
      JSON.stringify({ r, baseline, errors: seen.errors }),
    );
  });

  // 5. A link cannot pass an edited policy off as a scenario; an unedited one is shown as it.
  await guard(check, 'attack: a link naming a scenario', async () => {
    const page = await context.newPage();
    await page.goto(baseUrl);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    await page.click('button[data-scenario="support-crm"]');
    await page.click('button[data-variant="1"]');
    const url = await page.evaluate(() => window.playground.shareUrl());
    const s = unpack(url);
    const edited = { ...s, config: s.config.replace('"crm:write"', '"crm:read"') };
    const results = [];
    for (const frag of [new URL(url).hash, pack(edited)]) {
      await page.evaluate((h) => (location.hash = h), frag); // pasted into the same tab
      await page.waitForFunction((h) => location.hash === h && document.body.dataset.seq, frag);
      await page.waitForTimeout(100);
      results.push(
        await page.evaluate(() => ({
          pressed: document.querySelector('button.scenario[aria-pressed="true"]')?.dataset.scenario ?? null,
          reason: document.getElementById('verdict-reason').textContent,
        })),
      );
    }
    await page.close();
    check(
      'attack: a link naming a scenario but holding an edited policy is not shown as that scenario (a same-tab link is loaded on hashchange)',
      results[0].pressed === 'support-crm' && results[1].pressed === null && results[1].reason === 'allowed' && results[0].reason === 'actor_scope_exceeded',
      JSON.stringify(results),
    );
  });

  // 6. Exports: printable ASCII only (a CR, NEL or U+2028 would end the YAML block and inject
  // keys or documents), the same policy, and nothing for text that is not JSON.
  await guard(check, 'attack: exports', async () => {
    const { page } = await hostilePage(context, baseUrl);
    const config = { rules: [{ id: 'r\u2028---\u2028kind: Evil\u0085x\u202e', match: { path_prefix: '/\u00e9' } }], on_no_match: 'deny' };
    await page.fill('#config', JSON.stringify(config));
    await page.keyboard.press('Control+Enter');
    const out = await page.evaluate(() => {
      const get = (tab) => {
        document.getElementById(tab).click();
        return document.getElementById('export-text').value;
      };
      return { envoy: get('tab-envoy'), istio: get('tab-istio'), note: document.querySelector('#lint-errors .hidden-chars')?.textContent ?? '' };
    });
    await page.evaluate(() => {
      const ta = document.getElementById('config');
      ta.value = '{ nope\r      fail_open: true\r---\rkind: Evil';
      ta.dispatchEvent(new Event('input'));
    });
    await page.keyboard.press('Control+Enter');
    const raw = await page.evaluate(() => document.getElementById('export-text').value);
    await page.close();
    const block = (text, marker) => {
      const lines = text.split('\n');
      const at = lines.findIndex((l) => l.trimEnd().endsWith(marker));
      return JSON.parse(lines.slice(at + 1).join('\n'));
    };
    let same = false;
    try {
      same = JSON.stringify(block(out.envoy, 'value: |')) === JSON.stringify(config) && JSON.stringify(block(out.istio, 'pluginConfig:')) === JSON.stringify(config);
    } catch {
      same = false;
    }
    const ascii = (t) => /^[\x20-\x7e\n]*$/.test(t);
    check(
      'attack: exports are printable ASCII (U+2028, NEL, U+202E escaped) and carry the same policy; a non-JSON policy (raw CR lines) is not exported; hidden characters are flagged',
      ascii(out.envoy) && ascii(out.istio) && same && !/fail_open: true|Evil/.test(raw) && raw.startsWith('#') && /U\+2028/.test(out.note),
      JSON.stringify({ ascii: [ascii(out.envoy), ascii(out.istio)], same, envoy: out.envoy.slice(-200), raw, note: out.note }),
    );
  });

  // 7. Private keys never go into a share link (ES256 and EdDSA, after trusting, signing and
  // exchanging), and a link cannot bring keys in.
  await guard(check, 'attack: private keys', async () => {
    const page = await context.newPage();
    await page.goto(baseUrl);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    await page.click('button[data-scenario="sub-agent-ceiling"]');
    for (const alg of ['ES256', 'EdDSA']) {
      await page.selectOption('#key-alg', alg);
      await page.click('#key-generate');
      const last = await page.evaluate(() => document.querySelectorAll('#keys li').length - 1);
      await page.click(`button[data-trust="${last}"]`);
    }
    await page.click('#m-sign');
    await page.click('#x-exchange');
    const { url, keys } = await page.evaluate(async () => ({ url: await window.playground.shareUrl(), keys: window.playground.state().keys }));
    const shared = JSON.stringify(unpack(url));
    const p2 = await context.newPage();
    await p2.goto(`${baseUrl}${pack({ ...unpack(url), keys })}`);
    await p2.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const restoredKeys = await p2.evaluate(() => window.playground.state().keys.length);
    await p2.close();
    await page.close();
    check(
      'attack: generated private keys (ES256, EdDSA) are not in the share link, their public parts are; a link cannot import keys',
      keys.length === 2 && keys.every((k) => k.d && !shared.includes(k.d) && shared.includes(k.x)) && !/"keys":\[\{"kty"[^\]]*"d":/.test(shared) && restoredKeys === 0,
      `${keys.length} keys; private in link: ${keys.filter((k) => shared.includes(k.d)).length}; restored ${restoredKeys}`,
    );
  });

  // 8. Keyboard and assistive technology.
  await guard(check, 'a11y: keyboard and assistive technology', async () => {
    const page = await context.newPage();
    await page.goto(baseUrl);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => ({
      text: document.activeElement.textContent,
      outline: getComputedStyle(document.activeElement).outlineStyle,
      width: parseFloat(getComputedStyle(document.activeElement).outlineWidth),
    }));
    await page.keyboard.press('Enter');
    const skipped = await page.evaluate(() => document.activeElement.id);
    // Tab through the whole page: every button and field is reached, focus is always visible.
    await page.evaluate(() => document.getElementById('share').focus());
    await page.evaluate(() => document.querySelector('details.export').setAttribute('open', ''));
    const reached = new Set();
    const invisible = [];
    for (let i = 0; i < 90; i++) {
      const f = await page.evaluate(() => {
        const e = document.activeElement;
        const cs = getComputedStyle(e);
        return { id: e.id || e.dataset.scenario || e.dataset.variant || e.tagName, visible: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 };
      });
      reached.add(f.id);
      if (!f.visible && f.id !== 'BODY') invisible.push(f.id);
      await page.keyboard.press('Tab');
    }
    const labels = await page.evaluate(() => {
      const name = (e) => (e.getAttribute('aria-label') || (e.getAttribute('aria-labelledby') || '').split(' ').map((id) => document.getElementById(id)?.textContent || '').join('') || [...(e.labels || [])].map((l) => l.textContent).join('') || e.textContent || '').trim();
      return [...document.querySelectorAll('input, select, textarea, button')].filter((e) => !name(e)).map((e) => e.id || e.outerHTML.slice(0, 60));
    });
    // ARIA tabs: one tab in the tab order, arrows switch, the panel is named by the tab.
    await page.focus('#tab-envoy');
    await page.keyboard.press('ArrowRight');
    const tabs = await page.evaluate(() => ({
      focused: document.activeElement.id,
      selected: document.getElementById('tab-istio').getAttribute('aria-selected'),
      tabindex: [document.getElementById('tab-envoy').tabIndex, document.getElementById('tab-istio').tabIndex],
      panel: document.getElementById('export-text').getAttribute('aria-labelledby'),
      text: document.getElementById('export-text').value.includes('kind: WasmPlugin'),
      onlyTabs: [...document.querySelectorAll('[role=tablist] > *')].every((e) => e.getAttribute('role') === 'tab'),
    }));
    const live = await page.evaluate(() =>
      ['fatal', 'request-error', 'check-error'].map((id) => document.getElementById(id).getAttribute('role')).concat(
        ['verdict', 'lint-errors', 'mint-status', 'announce'].map((id) => document.getElementById(id).getAttribute('aria-live') || document.getElementById(id).getAttribute('role')),
      ),
    );
    // A bad headers field is announced and marked invalid.
    await page.fill('#req-headers', '{"x": ');
    const headerError = await page.evaluate(() => ({
      invalid: document.getElementById('req-headers').getAttribute('aria-invalid'),
      shown: !document.getElementById('request-error').hidden,
      described: document.getElementById('req-headers').getAttribute('aria-describedby'),
    }));
    const shortcuts = await page.evaluate(() => [...document.querySelectorAll('button.scenario')].map((b) => b.getAttribute('aria-keyshortcuts')));
    await page.close();
    if (process.env.DEBUG_A11Y) console.log([...reached].join(' '), invisible);
    const must = ['share', 'procurement', 'config', 'tab-envoy', 'copy-export', 'req-method', 'req-path', 'token', 'remote-jwks', 'key-generate', 'm-sign', 'x-exchange', 'copy-audit'];
    const missing = must.filter((id) => !reached.has(id));
    check(
      'a11y: Tab starts at a visible skip link to the decision, reaches every control with a visible focus ring; every field and button has a name; ARIA tabs; errors and results are live regions; scenario shortcuts are declared',
      /Skip/.test(first.text) && first.outline !== 'none' && first.width >= 2 && skipped === 'decision' && missing.length === 0 && invisible.length === 0 && labels.length === 0 &&
        tabs.focused === 'tab-istio' && tabs.selected === 'true' && tabs.tabindex.join() === '-1,0' && tabs.panel === 'tab-istio' && tabs.text && tabs.onlyTabs &&
        live.join() === 'alert,alert,alert,polite,polite,polite,polite' && headerError.invalid === 'true' && headerError.shown && headerError.described === 'request-error' &&
        shortcuts[0] === 'Alt+1 1' && shortcuts[5] === 'Alt+6 6',
      JSON.stringify({ first, skipped, missing, invisible: [...new Set(invisible)], labels, tabs, live, headerError, shortcuts }),
    );
  });
}

/// Runs one test; a timeout or an exception is that test's failure, and the others still run.
async function guard(check, name, body) {
  try {
    await body();
  } catch (e) {
    check(name, false, `threw: ${String(e.message || e).split('\n')[0]}`);
  }
}

async function page0Baseline(context, baseUrl) {
  const page = await context.newPage();
  await page.goto(baseUrl);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  const n = await page.evaluate(() => Object.getOwnPropertyNames(Object.prototype).length);
  await page.close();
  return n;
}

// Scenarios from real agent deployments. Each one is built from deterministic inputs: a
// fixed Ed25519 key of the (fictional) ACME token service, whose signatures are
// deterministic, a fixed decision time and fixed claims. Every token is minted and every
// delegation nested here, in the browser, by the same core the gateway runs.
//
// A scenario has variants ("what if …"); each variant states the reason it is expected to
// give, and the browser tests check the page and the CLI both give exactly that.

// A TEST KEY for the playground only: it is public, never trust it anywhere.
export const STS_KEY = {
  kty: 'OKP',
  crv: 'Ed25519',
  x: 'Z-QB5h9wPhvPF9HgIFJnl22AuclnOI1o6GbnSDbQcL0',
  d: 'CAQyPV0WHWS3tyUSev6auF_KhhfTP9XRBXT5XhwEfcY',
  alg: 'EdDSA',
  kid: 'acme-sts-2027',
  use: 'sig',
};

// 2027-01-15T08:00:00Z, the time every scenario is decided at.
export const NOW = 1800000000;
export const ISSUER = 'https://sts.acme.example';
const TD = 'prod.acme.example';
const agent = (name, td = TD) => `spiffe://${td}/agent/${name}`;

// Certificate digests (SHA-256 of the client certificate DER, as Envoy reports them).
const PROCUREMENT_CERT = '5f0c6a1d4e2b9a7c3d8e1f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c';
const OTHER_CERT = 'a3c9e1f7b5d3a1c9e7f5b3d1a9c7e5f3b1d9a7c5e3f1b9d7a5c3e1f9b7d5a3c1';

function hexToB64url(hex) {
  const bytes = new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
  let bin = '';
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function publicJwk(jwk) {
  const { d, ...pub } = jwk; // eslint-disable-line no-unused-vars
  return pub;
}

function config({ audience, actors, rules, binding }) {
  const cfg = {
    providers: {
      'acme-sts': {
        issuer: ISSUER,
        audiences: [audience],
        local_jwks: { inline_string: JSON.stringify({ keys: [publicJwk(STS_KEY)] }) },
        max_lifetime_s: 3600,
      },
    },
    identity: {
      trust_domains: [TD],
      human_profiles: ['user'],
      max_chain_depth: 3,
      actors,
    },
  };
  if (binding) cfg.binding = binding;
  cfg.rules = rules;
  cfg.on_no_match = 'deny';
  return cfg;
}

const human = (sub, audience, scope, extra = {}) => ({
  iss: ISSUER,
  sub,
  sub_profile: 'user',
  aud: audience,
  scope,
  iat: NOW - 120,
  exp: NOW + 600,
  ...extra,
});

const req = (method, path, extra = {}) => ({
  method,
  path,
  authority: extra.authority || 'api.acme.example',
  protocol: extra.protocol || 'http',
  peer_uri: extra.peer_uri || '',
  peer_digest: extra.peer_digest || '',
  headers: extra.headers || {},
  body: extra.body || '',
});

// --- the scenarios -------------------------------------------------------------------------

const PROCUREMENT = agent('procurement');
const procurementConfig = (extraActors = {}) =>
  config({
    audience: 'procurement-api',
    actors: {
      [PROCUREMENT]: { max_scopes: ['po:read', 'po:draft', 'spend:approve'] },
      ...extraActors,
    },
    rules: [
      {
        id: 'po-read',
        match: { path_prefix: '/v1/purchase-orders', methods: ['GET'] },
        require: { scopes: ['po:read'] },
      },
      {
        id: 'po-draft',
        match: { path_prefix: '/v1/purchase-orders', methods: ['POST'] },
        require: { scopes: ['po:draft'], delegated: true, human_subject: true, actors: [PROCUREMENT] },
      },
      {
        id: 'spend-approve',
        match: { path_prefix: '/v1/approvals', methods: ['POST'] },
        require: {
          scopes: ['spend:approve'],
          delegated: true,
          human_subject: true,
          actors: [PROCUREMENT],
          fresh_auth_s: 300,
        },
      },
    ],
  });

// claims: the human's token; chain: actors from first (nearest the human) to current.
export const SCENARIOS = [
  {
    id: 'procurement',
    title: 'Procurement agent: draft yes, approve only with fresh approval',
    story:
      'Dana delegated purchasing to an AI procurement agent. It may draft purchase orders for her, ' +
      'but approving spend needs Dana to have signed in within 5 minutes (fresh_auth_s: 300). ' +
      'She last authenticated 90 minutes ago.',
    config: procurementConfig,
    claims: () =>
      human('user:dana', 'procurement-api', 'po:read po:draft spend:approve', {
        auth_time: NOW - 5400,
        jti: 'tok-5c1e',
      }),
    chain: [[PROCUREMENT, 'ai_agent']],
    variants: [
      {
        label: 'Approve $48,000 of spend',
        request: req('POST', '/v1/approvals/PO-4471'),
        expect: 'stepup_required',
      },
      { label: 'Draft a purchase order', request: req('POST', '/v1/purchase-orders'), expect: 'allowed' },
      {
        label: 'Approve right after Dana re-authenticated',
        claims: (c) => ({ ...c, auth_time: NOW - 60 }),
        request: req('POST', '/v1/approvals/PO-4471'),
        expect: 'allowed',
      },
    ],
  },
  {
    id: 'support-crm',
    title: 'Support agent reading a CRM under a ticket-bound grant',
    story:
      'Sam, a support rep, handed ticket SUP-2291 to an AI support agent. The grant names the ticket ' +
      'and is good while the ticket is open; the agent may read customer records (its ceiling has no crm:write).',
    config: () =>
      config({
        audience: 'crm-api',
        actors: { [agent('support')]: { max_scopes: ['crm:read', 'tickets:write'] } },
        rules: [
          {
            id: 'crm-read',
            match: { path_prefix: '/crm/v1/customers', methods: ['GET'] },
            require: { scopes: ['crm:read'], delegated: true, claims: { ticket_status: ['open'] } },
          },
          {
            id: 'crm-write',
            match: { path_prefix: '/crm/v1/customers', methods: ['PATCH', 'PUT', 'DELETE'] },
            require: { scopes: ['crm:write'], delegated: true, claims: { ticket_status: ['open'] } },
          },
        ],
      }),
    claims: () =>
      human('user:sam', 'crm-api', 'crm:read crm:write tickets:write', {
        ticket: 'SUP-2291',
        ticket_status: 'open',
        jti: 'tok-9a02',
      }),
    chain: [[agent('support'), 'ai_agent']],
    variants: [
      { label: 'Read the customer on the ticket', request: req('GET', '/crm/v1/customers/C-1029'), expect: 'allowed' },
      {
        label: 'Edit the customer record',
        request: req('PATCH', '/crm/v1/customers/C-1029'),
        expect: 'actor_scope_exceeded',
      },
      {
        label: 'Read after the ticket was closed',
        claims: (c) => ({ ...c, ticket_status: 'closed' }),
        request: req('GET', '/crm/v1/customers/C-1029'),
        expect: 'claim_mismatch',
      },
    ],
  },
  {
    id: 'sub-agent-ceiling',
    title: "Sub-agent trying to exceed its orchestrator's ceiling",
    story:
      'Alice runs a finance orchestrator that may read invoices and make payments. It hands work to a ' +
      'billing sub-agent whose ceiling is invoices:read. Alice\'s token carries payments:write, but ' +
      'effective scopes are the intersection of every ceiling in the chain.',
    config: () =>
      config({
        audience: 'payments-api',
        actors: {
          [agent('orchestrator')]: { max_scopes: ['invoices:read', 'payments:write'] },
          [agent('billing')]: { max_scopes: ['invoices:read'] },
        },
        rules: [
          {
            id: 'pay',
            match: { path_prefix: '/v1/payments', methods: ['POST'] },
            require: { scopes: ['payments:write'], delegated: true, human_subject: true },
          },
          { id: 'invoices', match: { path_prefix: '/v1/invoices' }, require: { scopes: ['invoices:read'] } },
        ],
      }),
    claims: () => human('user:alice', 'payments-api', 'invoices:read payments:write', { jti: 'tok-31d7' }),
    chain: [
      [agent('orchestrator'), 'ai_agent'],
      [agent('billing'), 'ai_agent'],
    ],
    variants: [
      { label: 'Sub-agent makes a payment', request: req('POST', '/v1/payments'), expect: 'actor_scope_exceeded' },
      { label: 'Sub-agent reads invoices', request: req('GET', '/v1/invoices/2027-01'), expect: 'allowed' },
      {
        label: 'The orchestrator pays itself (no sub-agent)',
        chain: [[agent('orchestrator'), 'ai_agent']],
        request: req('POST', '/v1/payments'),
        expect: 'allowed',
      },
    ],
  },
  {
    id: 'staging-to-prod',
    title: 'A staging identity calling production',
    story:
      "The staging copy of the procurement agent got a real user's delegation and calls the production " +
      'API. Production trusts only spiffe://prod.acme.example.',
    config: procurementConfig,
    claims: () => human('user:dana', 'procurement-api', 'po:read po:draft', { jti: 'tok-77b0' }),
    chain: [[agent('procurement', 'staging.acme.example'), 'ai_agent']],
    variants: [
      { label: 'Staging agent lists purchase orders', request: req('GET', '/v1/purchase-orders'), expect: 'trust_domain_mismatch' },
      {
        label: 'The production agent does the same',
        chain: [[PROCUREMENT, 'ai_agent']],
        request: req('GET', '/v1/purchase-orders'),
        expect: 'allowed',
      },
    ],
  },
  {
    id: 'expired-delegation',
    title: 'An expired delegation',
    story:
      "A long-running agent job kept using the token Dana's delegation produced. It expired 20 minutes " +
      'ago (exp, with 60 s of clock skew allowed).',
    config: procurementConfig,
    claims: () =>
      human('user:dana', 'procurement-api', 'po:read po:draft', { iat: NOW - 3000, exp: NOW - 1200, jti: 'tok-e1a9' }),
    chain: [[PROCUREMENT, 'ai_agent']],
    variants: [
      { label: 'Agent lists purchase orders', request: req('GET', '/v1/purchase-orders'), expect: 'token_expired' },
      {
        label: 'After a fresh token exchange',
        claims: (c) => ({ ...c, iat: NOW - 60, exp: NOW + 540 }),
        request: req('GET', '/v1/purchase-orders'),
        expect: 'allowed',
      },
    ],
  },
  {
    id: 'stolen-token',
    title: 'A stolen token replayed from another peer',
    story:
      "The procurement agent's token is bound to its mTLS certificate (cnf x5t#S256). An attacker who " +
      'copied it from a log replays it over their own connection.',
    config: () => {
      const c = procurementConfig();
      c.binding = { cnf: 'required', actor_must_match_peer: false };
      return c;
    },
    claims: () =>
      human('user:dana', 'procurement-api', 'po:read po:draft', {
        jti: 'tok-0b5f',
        cnf: { 'x5t#S256': hexToB64url(PROCUREMENT_CERT) },
      }),
    chain: [[PROCUREMENT, 'ai_agent']],
    variants: [
      {
        label: 'Replayed from another certificate',
        request: req('GET', '/v1/purchase-orders', { peer_uri: agent('scraper', 'corp.evil.example'), peer_digest: OTHER_CERT }),
        expect: 'binding_mismatch',
      },
      {
        label: "From the agent's own connection",
        request: req('GET', '/v1/purchase-orders', { peer_uri: PROCUREMENT, peer_digest: PROCUREMENT_CERT }),
        expect: 'allowed',
      },
      {
        label: 'Over gRPC from the other peer',
        request: req('POST', '/v1/purchase-orders', {
          protocol: 'grpc',
          peer_uri: agent('scraper', 'corp.evil.example'),
          peer_digest: OTHER_CERT,
        }),
        expect: 'binding_mismatch',
      },
    ],
  },
];

// --- MCP (SPEC §9) ---------------------------------------------------------------------------

const MCP_RESOURCE = 'https://mcp.acme.example/mcp';
const rpc = (method, params, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
const toolCall = (name, args) => rpc('tools/call', { name, arguments: args }, 3);
const mcpPost = (body) => req('POST', '/mcp', { authority: 'mcp.acme.example', body });
const TOOLS = JSON.stringify({
  jsonrpc: '2.0',
  id: 7,
  result: {
    tools: [
      { name: 'create_payment', description: 'Pay a supplier', inputSchema: { type: 'object' } },
      { name: 'invoices.get', description: 'Read an invoice', inputSchema: { type: 'object' } },
      { name: 'admin_refund_all', description: 'Refund everything', inputSchema: { type: 'object' } },
    ],
  },
});

const mcpConfig = () => {
  const c = config({
    audience: MCP_RESOURCE,
    actors: {
      [agent('orchestrator')]: { max_scopes: ['invoices:read', 'payments:write'] },
      [agent('payments')]: { max_scopes: ['payments:write'] },
      [agent('billing')]: { max_scopes: ['invoices:read'] },
    },
    rules: [
      {
        id: 'mcp-pay',
        match: { mcp: { methods: ['tools/call'], names: ['create_payment'] } },
        require: {
          scopes: ['payments:write'],
          delegated: true,
          human_subject: true,
          arguments: [
            { pointer: '/amount', max: 1000 },
            { pointer: '/currency', one_of: ['EUR', 'USD'] },
          ],
        },
      },
      { id: 'mcp-invoices', match: { mcp: { methods: ['tools/call'], names: ['invoices.*'] } }, require: { scopes: ['invoices:read'] } },
      { id: 'mcp-admin', match: { mcp: { methods: ['tools/call'], names: ['admin_*'] } }, require: { scopes: ['admin'] } },
      { id: 'mcp-session', match: { path_exact: '/mcp' } },
    ],
  });
  c.mcp = { endpoints: ['/mcp'], resource: MCP_RESOURCE, resource_name: 'ACME payments MCP' };
  return c;
};

SCENARIOS.push({
  id: 'mcp-payments',
  title: 'MCP: a payments sub-agent calling tools over its cap',
  story:
    "Alice's finance orchestrator hands a payments sub-agent a create_payment call through the MCP " +
    'server. The policy reads the JSON-RPC body: create_payment needs payments:write and an amount of ' +
    'at most 1000; the tools/list answer keeps only the tools each caller could call.',
  config: mcpConfig,
  claims: () => human('user:alice', MCP_RESOURCE, 'invoices:read payments:write', { jti: 'tok-77aa' }),
  chain: [
    [agent('orchestrator'), 'ai_agent'],
    [agent('payments'), 'ai_agent'],
  ],
  variants: [
    {
      label: 'Pay 4,800 EUR (cap 1,000)',
      request: mcpPost(toolCall('create_payment', { amount: 4800, currency: 'EUR', to: 'ACME Tooling' })),
      expect: 'argument_denied',
    },
    {
      label: 'Pay 480 EUR',
      request: mcpPost(toolCall('create_payment', { amount: 480, currency: 'EUR', to: 'ACME Tooling' })),
      expect: 'allowed',
    },
    {
      label: 'List tools as the payments sub-agent',
      request: mcpPost(rpc('tools/list', undefined, 7)),
      mcpResponse: TOOLS,
      expect: 'allowed',
    },
    {
      label: 'List tools as the billing sub-agent',
      chain: [
        [agent('orchestrator'), 'ai_agent'],
        [agent('billing'), 'ai_agent'],
      ],
      request: mcpPost(rpc('tools/list', undefined, 7)),
      mcpResponse: TOOLS,
      expect: 'allowed',
    },
    {
      label: 'The billing sub-agent calls create_payment',
      chain: [
        [agent('orchestrator'), 'ai_agent'],
        [agent('billing'), 'ai_agent'],
      ],
      request: mcpPost(toolCall('create_payment', { amount: 480, currency: 'EUR' })),
      expect: 'actor_scope_exceeded',
    },
    {
      label: 'A body with two `name` members',
      request: mcpPost('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"invoices.get","name":"create_payment","arguments":{"amount":4800}}}'),
      expect: 'mcp_malformed',
    },
  ],
});

/// Builds a scenario's state: config text, token, request, time. `ag` is the module.
export function buildScenario(ag, scenario, variantIndex = 0) {
  const variant = scenario.variants[variantIndex] || scenario.variants[0];
  let claims = scenario.claims();
  if (variant.claims) claims = variant.claims(claims);
  for (const [actor, profile] of variant.chain || scenario.chain) {
    const out = JSON.parse(ag.delegate(JSON.stringify(claims), actor, profile));
    if (!out.ok) throw new Error(out.error.message);
    claims = out.claims;
  }
  const signed = JSON.parse(ag.signToken(JSON.stringify(STS_KEY), JSON.stringify(claims)));
  if (!signed.ok) throw new Error(signed.error.message);
  return {
    config: JSON.stringify(scenario.config(), null, 2),
    token: signed.token,
    request: JSON.parse(JSON.stringify(variant.request)),
    now: NOW,
    remoteJwks: '',
    mcpResponse: variant.mcpResponse || '',
  };
}

// A real OpenID provider for the tests and the CI stack: npm `oidc-provider` (OpenID Certified),
// configured like a hospital's Keycloak realm.
//
//   node tests/idp/server.mjs CONFIG.json      (prints "ready <issuer>" once it listens)
//
// What it mirrors of Keycloak (see deploy/keycloak/ for the realm settings we ship):
// - issuer https://HOST:PORT/realms/<realm>, endpoints under /protocol/openid-connect/ (auth, token,
//   certs, userinfo, logout), served over TLS with the certificate in the config (an internal CA);
// - a public client (no secret) using authorization code + PKCE (S256), CORS on the token endpoint for
//   its web origins;
// - access tokens as RS256 JWTs WITHOUT `nbf` (Keycloak sets none), with iss, aud (the API's audience,
//   Keycloak's audience mapper), sub, iat, exp, jti, azp, scope and flat `groups` and `roles` claims
//   (Keycloak's group-membership and realm-role mappers with those claim names);
// - a username/password sign-in form for the realm's users (no consent screen: a first-party client).
//
// Test-only: POST /-/rotate with header `x-admin-token: <admin_token>` makes a new RSA signing key (new
// kid), publishes it first (it signs from now on) next to the old ones, and rebuilds the provider
// without a restart; sessions and grants survive (the memory adapter is per process).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { URL } from 'node:url';

import Provider from 'oidc-provider';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const issuer = new URL(cfg.issuer);
const prefix = issuer.pathname.replace(/\/$/, '');
const audience = cfg.audience;
// the resource indicator (RFC 8707 wants an absolute URI); the token's `aud` is the configured audience
const RESOURCE = `urn:vraagbaak:resource:${audience}`;
const claimNames = { groups: 'groups', roles: 'roles', ...(cfg.claims || {}) };
const users = new Map((cfg.users || []).map((u) => [u.username, u]));

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
}

function loadKeys() {
  if (cfg.keys_file && fs.existsSync(cfg.keys_file)) {
    return JSON.parse(fs.readFileSync(cfg.keys_file, 'utf8')).keys;
  }
  const keys = [newKey()];
  saveKeys(keys);
  return keys;
}

function saveKeys(keys) {
  if (cfg.keys_file) fs.writeFileSync(cfg.keys_file, JSON.stringify({ keys }), { mode: 0o600 });
}

function claimsOf(user) {
  return {
    [claimNames.groups]: user.groups || [],
    [claimNames.roles]: user.roles || [],
    ...(user.clearance ? { clearance: user.clearance } : {}),
    ...(user.manages ? { manages: user.manages } : {}),
  };
}

function makeProvider(keys) {
  const clients = (cfg.clients || []).map((c) => ({
    client_id: c.client_id,
    token_endpoint_auth_method: 'none',
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
  }));
  const webOrigins = new Map((cfg.clients || []).map((c) => [c.client_id, new Set(c.web_origins || [])]));
  const provider = new Provider(cfg.issuer, {
    clients,
    jwks: { keys },
    cookies: { keys: [cfg.cookie_secret || crypto.randomBytes(32).toString('hex')] },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      end_session: '/protocol/openid-connect/logout',
      revocation: '/protocol/openid-connect/revoke',
      introspection: '/protocol/openid-connect/token/introspect',
    },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', claimNames.groups, claimNames.roles] },
    ttl: { AccessToken: cfg.access_token_ttl || 300, IdToken: cfg.access_token_ttl || 300 },
    features: {
      devInteractions: { enabled: false },
      // Keycloak ends the session without asking when the page sends id_token_hint; this provider's
      // confirmation form is submitted by the page itself (no fonts or assets from elsewhere)
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = `<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Afmelden</title></head><body>
${form}<button type="submit" form="op.logoutForm" value="yes" name="logout" id="kc-logout">Afmelden</button>
<script>(function(){var f=document.getElementById('op.logoutForm');var i=document.createElement('input');
i.type='hidden';i.name='logout';i.value='yes';f.appendChild(i);f.submit();})();</script></body></html>`;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = '<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Afgemeld</title></head><body><p>U bent afgemeld.</p></body></html>';
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
          return { scope: 'openid profile', audience, accessTokenFormat: 'jwt', accessTokenTTL: cfg.access_token_ttl || 300,
                   jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Fout</title></head><body><pre>${
        Object.entries(out).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join('\n')}</pre></body></html>`;
    },
    clientBasedCORS: (_ctx, origin, client) => webOrigins.get(client.clientId)?.has(origin) ?? false,
    interactions: { url: (_ctx, interaction) => `${prefix}/login-actions/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = users.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, preferred_username: sub, name: user.name || sub, ...claimsOf(user) }) };
    },
    // Keycloak's access token: flat groups/roles (mappers), azp; no nbf (oidc-provider sets none either)
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      const user = users.get(token.accountId);
      return { azp: token.clientId, preferred_username: token.accountId, ...(user ? claimsOf(user) : {}) };
    },
    // a first-party client: no consent screen (Keycloak's "Consent required: off")
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email');
      grant.addResourceScope(RESOURCE, 'openid profile');
      await grant.save();
      return grant;
    },
  });
  provider.proxy = false;
  return provider;
}

let keys = loadKeys();
let provider = makeProvider(keys);
let handler = provider.callback();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, message) {
  return `<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Inloggen</title></head><body>
<main><h1>Inloggen bij ${esc(cfg.realm_name || 'het ziekenhuis')}</h1>${message ? `<p role="alert">${esc(message)}</p>` : ''}
<form method="post" action="${prefix}/login-actions/${esc(uid)}">
<label for="username">Gebruikersnaam</label> <input id="username" name="username" autocomplete="username" required>
<label for="password">Wachtwoord</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="kc-login">Inloggen</button></form></main></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const html = (status, body) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  };
  if (req.method === 'GET') {
    if (details.prompt.name !== 'login') {
      // consent is granted by loadExistingGrant; anything else finishes as is
      await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
      return;
    }
    html(200, loginPage(uid));
    return;
  }
  const form = await readForm(req);
  const user = users.get(form.get('username') || '');
  if (!user || !crypto.timingSafeEqual(
    crypto.createHash('sha256').update(form.get('password') || '').digest(),
    crypto.createHash('sha256').update(user.password).digest(),
  )) {
    html(401, loginPage(uid, 'Ongeldige gebruikersnaam of wachtwoord.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
}

function rotate() {
  keys = [newKey(), ...keys];
  saveKeys(keys);
  provider = makeProvider(keys);
  handler = provider.callback();
  return keys[0].kid;
}

const server = https.createServer({
  cert: fs.readFileSync(cfg.tls.cert), key: fs.readFileSync(cfg.tls.key),
}, async (req, res) => {
  try {
    const path = new URL(req.url, 'https://x').pathname;
    if (path === '/-/rotate' && req.method === 'POST') {
      if (!cfg.admin_token || req.headers['x-admin-token'] !== cfg.admin_token) {
        res.writeHead(403).end();
        return;
      }
      const kid = rotate();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid }));
      return;
    }
    if (path === '/-/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const m = path.match(/\/login-actions\/([A-Za-z0-9_-]+)$/);
    if (m && path.startsWith(prefix + '/')) {
      await interaction(req, res, m[1]);
      return;
    }
    if (prefix && !(path === prefix || path.startsWith(prefix + '/'))) {
      res.writeHead(404).end();
      return;
    }
    // mounted under the realm's path, as Keycloak's /realms/<realm>
    req.originalUrl = req.url;
    req.url = req.url.slice(prefix.length) || '/';
    handler(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`error: ${err.message}`);
  }
});

server.listen(Number(issuer.port || 443), cfg.host || issuer.hostname, () => {
  console.log(`ready ${cfg.issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));

// A ProConnect-like OpenID Connect provider for the tests (widget-server/tests/proconnect.rs and
// browser_journeys.rs): panva's oidc-provider, set up as ProConnect is for its partners.
//
// - Issuer `http://127.0.0.1:PORT/api/v2` (ProConnect's ends in /api/v2), discovery, JWKS with
//   one RS256 and one ES256 key made at start (so a restart is a key rotation).
// - Confidential clients authenticating with `client_secret_post`: `monavis` (ID token RS256,
//   userinfo ES256) and `monavis-es256` (ID token ES256, userinfo RS256). Userinfo is a signed
//   JWT (`application/jwt`).
// - ProConnect's scopes, each naming its claim: openid email given_name usual_name siret uid
//   idp_id; every log-in has the `acr` eidas1, which the `claims` parameter may ask for.
// - Its own log-in and consent forms (oidc-provider's development interactions): the login typed
//   is the account. `prenom.nom@x.gouv.fr` gives Prénom Nom; a login starting with `{` is JSON
//   claims ({"email", "given_name", "usual_name", "siret", "idp_id"}), for hostile claims. `sub`
//   is derived from the identity provider and the address, as ProConnect's differs per provider.
// - Authorization requests carrying a parameter ProConnect does not document, or a `state` or
//   `nonce` shorter than 32 characters, are refused (400), as ProConnect refuses them.
// - RP-initiated log-out (end_session_endpoint) with a confirmation form.
// - Codes live OIDC_CODE_TTL seconds (30), access tokens OIDC_ACCESS_TOKEN_TTL (60).
//
// Test hooks, outside the issuer's path: `GET /__test/stats` (how many discovery, JWKS, token
// and userinfo requests it answered). OIDC_JWKS=decoy publishes keys it never signs with (a
// token "signed by an unknown key"). OIDC_PORT chooses the port (0: any free one). It prints
// `oidc-provider listening on ISSUER` once ready.
//
// Real ProConnect registers exact redirect and log-out URIs; here any loopback port is accepted
// for the registered paths, because each test server listens on a port of its own.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const PREFIX = '/api/v2';
const port = Number(process.env.OIDC_PORT || 0);
const codeTtl = Number(process.env.OIDC_CODE_TTL || 30);
const accessTokenTtl = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 60);
const decoyJwks = process.env.OIDC_JWKS === 'decoy';

// What ProConnect's authorization endpoint accepts (its partners' documentation).
const AUTHORIZE_PARAMS = new Set([
  'response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'acr_values', 'claims',
  'prompt', 'login_hint', 'idp_hint', 'siret_hint',
]);

const stats = { discovery: 0, jwks: 0, token: 0, userinfo: 0, end_session: 0 };

async function key(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}

const publicPart = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

const signing = [await key('RS256'), await key('ES256')];
const decoys = decoyJwks ? [await key('RS256'), await key('ES256')].map(publicPart) : [];

/** The claims of the account whose login is `login` (see the header). */
function claimsOf(login) {
  let c;
  if (login.startsWith('{')) {
    c = JSON.parse(login);
  } else {
    const email = login.toLowerCase();
    const local = email.split('@')[0];
    const [given, usual = 'Agent'] = local.split('.').map((w) => w.charAt(0).toUpperCase() + w.slice(1));
    c = { email, given_name: given, usual_name: usual };
  }
  const idp = c.idp_id ?? 'fia1v2';
  return {
    email: c.email,
    given_name: c.given_name,
    usual_name: c.usual_name,
    siret: c.siret ?? '13002526500013',
    uid: crypto.createHash('sha256').update(`uid|${c.email}`).digest('hex').slice(0, 12),
    idp_id: idp,
    sub: crypto.createHash('sha256').update(`${idp}|${c.email}`).digest('hex'),
  };
}

const sameLoopbackPath = (value, registered) => {
  let a; let b;
  try { a = new URL(value); b = new URL(registered); } catch { return false; }
  if (a.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(a.hostname)) return a.href === b.href;
  a.port = ''; b.port = '';
  return a.href === b.href;
};

const server = http.createServer();
await new Promise((resolve) => { server.listen(port, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}${PREFIX}`;

const client = (id, idTokenAlg, userinfoAlg) => ({
  client_id: id,
  client_secret: 'monavis-test-secret-0123456789abcdef',
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/connexion/proconnect/retour'],
  post_logout_redirect_uris: ['http://127.0.0.1/connexion?info=deconnecte'],
  id_token_signed_response_alg: idTokenAlg,
  userinfo_signed_response_alg: userinfoAlg,
});

const provider = new Provider(issuer, {
  clients: [client('monavis', 'RS256', 'ES256'), client('monavis-es256', 'ES256', 'RS256')],
  jwks: { keys: signing },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'email', 'given_name', 'usual_name', 'siret', 'uid', 'idp_id'],
  claims: {
    openid: ['sub'],
    email: ['email'],
    given_name: ['given_name'],
    usual_name: ['usual_name'],
    siret: ['siret'],
    uid: ['uid'],
    idp_id: ['idp_id'],
    acr: null,
    auth_time: null,
    iss: null,
    sid: null,
  },
  acrValues: ['eidas1'],
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256'],
    userinfoSigningAlgValues: ['RS256', 'ES256'],
  },
  features: {
    devInteractions: { enabled: true },
    claimsParameter: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Déconnexion</title></head>
<body><h1>Se déconnecter de ProConnect (test)&nbsp;?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Oui, me déconnecter</button>
<button type="submit" form="op.logoutForm">Non</button></body></html>`;
      },
    },
  },
  // ProConnect takes no PKCE parameter (it refuses parameters it does not document).
  pkce: { required: () => false },
  async findAccount(ctx, id) {
    const claims = claimsOf(id);
    return {
      accountId: id,
      async claims(use) {
        // The ID token carries only `sub` (and acr); the identity comes from userinfo, as with
        // ProConnect.
        return use === 'id_token' ? { sub: claims.sub } : claims;
      },
    };
  },
  ttl: {
    AuthorizationCode: codeTtl,
    AccessToken: accessTokenTtl,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
});

provider.on('server_error', (ctx, err) => { console.error('oidc-provider:', err); });
// Logins carry ProConnect's default `acr` (eidas1), which ProConnect puts in every ID token.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = (req, res, result, options) => {
  const login = result.login && { acr: 'eidas1', amr: ['pwd'], ...result.login };
  return interactionFinished(req, res, login ? { ...result, login } : result, options);
};
provider.Client.prototype.redirectUriAllowed = function allowed(value) {
  return this.redirectUris.some((r) => sameLoopbackPath(value, r));
};
provider.Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
  return this.postLogoutRedirectUris.some((r) => sameLoopbackPath(value, r));
};

const callback = provider.callback();
server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/__test/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (!url.pathname.startsWith(`${PREFIX}/`)) {
    res.statusCode = 404;
    res.end();
    return;
  }
  const path = url.pathname.slice(PREFIX.length);
  if (path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (path === '/token') stats.token += 1;
  if (path === '/me') stats.userinfo += 1;
  if (path === '/session/end') stats.end_session += 1;
  if (path === '/jwks') {
    stats.jwks += 1;
    if (decoyJwks) {
      res.setHeader('content-type', 'application/jwk-set+json; charset=utf-8');
      res.end(JSON.stringify({ keys: decoys }));
      return;
    }
  }
  if (path === '/auth' && req.method === 'GET') {
    const unknown = [...url.searchParams.keys()].filter((k) => !AUTHORIZE_PARAMS.has(k));
    const short = ['state', 'nonce'].filter((k) => (url.searchParams.get(k) || '').length < 32);
    if (unknown.length || short.length) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`invalid_request: unknown parameters [${unknown}], too short [${short}]`);
      return;
    }
  }
  // Mounted under /api/v2: oidc-provider finds its mount path from originalUrl.
  req.originalUrl = req.url;
  req.url = req.url.slice(PREFIX.length) || '/';
  callback(req, res);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`oidc-provider listening on ${issuer}`);

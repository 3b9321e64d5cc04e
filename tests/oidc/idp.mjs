// A real OpenID Connect provider for the end-to-end tests (npm oidc-provider, panva's
// certified implementation), on loopback only. Adapted from the project's notes
// (shared/notes/oidc-provider.md).
//
// Env:
//   IDP_PORT            port (default 4444); the issuer is http://127.0.0.1:IDP_PORT
//   IDP_HOST            host (default 127.0.0.1)
//   HAPI_AUDIENCE       `aud` of the access tokens for the HAPI server (default http://127.0.0.1:8080/hapi)
//   HAPI_REDIRECT_URI   the server's browser-login callback (default http://127.0.0.1:8080/auth/callback)
//   IDP_SCOPE           the API scope, as at SWE (default swe_hapiserver)
//   IDP_KEY_FILE        the RS256 signing key as a private JWK; created (with a fresh kid)
//                       when missing, so restarting with the same file keeps the JWKS and
//                       restarting with a new file rotates the key
//   IDP_TOKEN_TTL       access-token lifetime in seconds (default 300, as at SWE)
//   IDP_EXIT_ON_STDIN_EOF=1  exit when stdin closes: a test that spawned us with a pipe
//                       cannot leave us behind, even when it dies without cleaning up
//
// Clients (all fixed, for tests only):
//   hapi-cli / hapi-cli-secret        client_credentials, client_secret_post (the seed's curl)
//   hapi-cli-roles / hapi-cli-roles-secret
//                                      client_credentials; its tokens carry Keycloak-shaped
//                                      roles: realm_access.roles = ["private", "embargo"]
//   hapi-web / hapi-web-secret        authorization code + PKCE, client_secret_basic (browser login)
//
// Resources (RFC 8707 `resource=` of the token request; the default is HAPI_AUDIENCE), all
// with the scope IDP_SCOPE:
//   HAPI_AUDIENCE          JWT access tokens (RFC 9068) with aud = HAPI_AUDIENCE
//   urn:test:other-api     JWT access tokens for another API (aud = urn:test:other-api)
//   urn:test:hapi-opaque   opaque access tokens for HAPI_AUDIENCE, to be introspected (RFC 7662)
//
// devInteractions is on: its login form accepts any login and password.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const HOST = process.env.IDP_HOST ?? '127.0.0.1';
const PORT = Number(process.env.IDP_PORT ?? 4444);
const ISSUER = `http://${HOST}:${PORT}`;
const AUDIENCE = process.env.HAPI_AUDIENCE ?? 'http://127.0.0.1:8080/hapi';
const REDIRECT = process.env.HAPI_REDIRECT_URI ?? 'http://127.0.0.1:8080/auth/callback';
const SCOPE = process.env.IDP_SCOPE ?? 'swe_hapiserver';
const TTL = Number(process.env.IDP_TOKEN_TTL ?? 300);
const ROLES = { 'hapi-cli-roles': ['private', 'embargo'] };

function signingKey() {
  const f = process.env.IDP_KEY_FILE;
  if (f && existsSync(f)) return JSON.parse(readFileSync(f, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-rs256-${randomBytes(6).toString('hex')}`;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
  if (f) writeFileSync(f, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const resourceServer = (audience, accessTokenFormat) => ({
  scope: SCOPE, // scopes this API accepts (space-separated)
  audience, // -> "aud" claim
  accessTokenTTL: TTL,
  accessTokenFormat, // 'jwt': RFC 9068 JWT access token; 'opaque': introspect it
  ...(accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
});
const RESOURCES = {
  [AUDIENCE]: resourceServer(AUDIENCE, 'jwt'),
  'urn:test:other-api': resourceServer('urn:test:other-api', 'jwt'),
  'urn:test:hapi-opaque': resourceServer(AUDIENCE, 'opaque'),
};

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'hapi-cli',
      client_secret: 'hapi-cli-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'hapi-cli-roles',
      client_secret: 'hapi-cli-roles-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'hapi-web',
      client_secret: 'hapi-web-secret',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT],
      // For RP-initiated logout (features.rpInitiatedLogout is on by default).
      post_logout_redirect_uris: [new URL('/hapi', REDIRECT).href, new URL('/auth/logout', REDIRECT).href],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey()] },
  scopes: ['openid', 'profile', 'email', 'offline_access', SCOPE],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  pkce: { required: () => true },
  async extraTokenClaims(_ctx, token) {
    const roles = ROLES[token.clientId];
    // Only client-credentials tokens: a browser user of hapi-web gets no roles.
    if (roles && token.kind === 'ClientCredentials') return { realm_access: { roles } };
    return undefined;
  },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => AUDIENCE, // no `resource` parameter needed
      useGrantedResource: async () => true, // auth-code exchange without `resource` -> JWT for the API
      getResourceServerInfo: async (_ctx, indicator) => {
        if (Object.hasOwn(RESOURCES, indicator)) return RESOURCES[indicator];
        throw new errors.InvalidTarget(`unknown resource ${indicator}`);
      },
    },
  },
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub, name: `User ${sub}`, email: `${sub}@example.test` }; } };
  },
  ttl: { AccessToken: TTL, ClientCredentials: TTL, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  cookies: { keys: ['dev-only-cookie-key'] },
});
provider.proxy = true;

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

provider.listen(PORT, HOST, () => console.log(`oidc-provider ${ISSUER} ready (aud=${AUDIENCE}, scope=${SCOPE})`));

// A real OpenID Connect provider for tests: oidc-provider (a certified
// implementation) on HTTPS on 127.0.0.1, with one public client that must
// use PKCE (and optionally a native one for the CLI), an RS256 signing key
// made at start, and the accounts it is given. Its built-in interaction pages (a login form, then a consent page)
// are what the browser goes through, as a user would.
//
// Usage: node provider.mjs <settings.json>
//   {"cert": file, "key": file, "client_id": "...", "redirect_uri": "...",
//    "cli_client_id": "..." (optional: a native client, loopback redirect),
//    "accounts": {"alice": {"groups": ["analysts"], "email": "..."}}}
// Prints one line of JSON once it listens: {"issuer": "https://127.0.0.1:<port>"}.
// Its JWKS is at <issuer>/jwks.
import {generateKeyPairSync} from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const settings = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const {privateKey} = generateKeyPairSync('rsa', {modulusLength: 2048});
const signingKey = {...privateKey.export({format: 'jwk'}), kid: 'test-signing-key', alg: 'RS256', use: 'sig'};

const server = https.createServer({
  cert: fs.readFileSync(settings.cert),
  key: fs.readFileSync(settings.key),
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: settings.client_id,
      token_endpoint_auth_method: 'none',
      redirect_uris: [settings.redirect_uri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
    }, ...(settings.cli_client_id ? [{
      // The CLI: a native app with a loopback redirect on any port (RFC 8252).
      client_id: settings.cli_client_id,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
    }] : [])],
    jwks: {keys: [signingKey]},
    pkce: {methods: ['S256'], required: () => true},
    claims: {openid: ['sub'], email: ['email'], groups: ['groups']},
    // The ID token carries the claims (groups) the kernel maps.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const account = settings.accounts[sub];
      if (!account) return undefined;
      return {accountId: sub, claims: async () => ({sub, ...account})};
    },
    clientBasedCORS: () => true,
    cookies: {keys: ['airlock-test-cookie-key']},
    features: {devInteractions: {enabled: true}},
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  server.on('request', provider.callback());
  process.stdout.write(JSON.stringify({issuer}) + '\n');
});

// The test stops it by its PID (SIGTERM ends node).

// Signing in to the console with the organisation's OpenID Connect
// provider: the authorization-code flow with PKCE (RFC 7636), the console
// being a public client (no secret in a page). The kernel checks the ID
// token's signature, issuer and audience as for any caller (the oidc-jwt
// identity plugin); this file only runs the flow and checks that the answer
// belongs to the request it made (state, nonce, issuer, audience).
//
// What lives between leaving for the provider and coming back is the PKCE
// verifier, the state and the nonce, in sessionStorage (this tab only), and
// only until the return; the token itself is handed to the console, which
// keeps it in memory.
'use strict';

window.AirlockOidc = (() => {
  const kPending = 'airlock.oidc.pending';

  function base64url(bytes) {
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomText(bytes) {
    return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
  }

  async function discover(oidc) {
    const response = await fetch(`${oidc.issuer}/.well-known/openid-configuration`);
    if (!response.ok) throw new Error(`the provider's discovery document: ${response.status}`);
    const meta = await response.json();
    if (meta.issuer !== oidc.issuer) {
      throw new Error(`the provider says it is ${meta.issuer}, not ${oidc.issuer}`);
    }
    return meta;
  }

  // Leaves for the provider's sign-in page.
  async function begin(oidc, redirectUri) {
    const meta = await discover(oidc);
    const verifier = randomText(48);
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    const pending = {verifier, state: randomText(24), nonce: randomText(24), redirectUri};
    sessionStorage.setItem(kPending, JSON.stringify(pending));
    const url = new URL(meta.authorization_endpoint);
    const params = {
      response_type: 'code',
      client_id: oidc.client_id,
      redirect_uri: redirectUri,
      scope: oidc.scopes || 'openid',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: 'S256',
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    location.assign(url.toString());
  }

  function claimsOf(idToken) {
    const part = (idToken || '').split('.')[1];
    if (!part) throw new Error('the provider answered without an ID token');
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(decodeURIComponent(escape(json)));
  }

  // Back from the provider: the ID token, or null when this page load is no
  // return from it. Throws with the reason when the sign-in failed.
  async function complete(oidc, redirectUri) {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return null;
    const pending = JSON.parse(sessionStorage.getItem(kPending) || 'null');
    sessionStorage.removeItem(kPending);
    // The code leaves the address bar (and history) whatever happens next.
    history.replaceState(null, '', redirectUri);
    if (params.has('error')) {
      throw new Error(`the provider refused: ${params.get('error_description') || params.get('error')}`);
    }
    if (!pending || params.get('state') !== pending.state) {
      throw new Error('this sign-in answer does not belong to a sign-in started here');
    }
    const meta = await discover(oidc);
    const response = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: {'Content-Type': 'application/x-www-form-urlencoded'},
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: pending.redirectUri,
        client_id: oidc.client_id,
        code_verifier: pending.verifier,
      }),
    });
    const tokens = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(`the provider's token endpoint: ${tokens.error_description || tokens.error || response.status}`);
    }
    const claims = claimsOf(tokens.id_token);
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.nonce !== pending.nonce) throw new Error('the ID token was not issued for this sign-in');
    if (claims.iss !== oidc.issuer || !audiences.includes(oidc.client_id)) {
      throw new Error('the ID token is for another issuer or client');
    }
    return tokens.id_token;
  }

  return {begin, complete};
})();

// Sign-in: the local admin key, or Cognito's managed login (OAuth code + PKCE) exchanged for the identity pool's
// temporary AWS credentials. Nothing secret ships in the bundle; a session lives in this tab's sessionStorage.

const SESSION = "llm-gateway-console.session";
const PENDING = "llm-gateway-console.pkce";

/** The session of this tab, or null when it is missing or its credentials have expired. */
export function currentSession() {
  const raw = sessionStorage.getItem(SESSION);
  if (!raw) return null;
  const session = JSON.parse(raw);
  if (session.expiresAt && Date.now() > session.expiresAt - 60_000) {
    sessionStorage.removeItem(SESSION);
    return null;
  }
  return session;
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
}

/** Locally: the admin key `make run` printed, kept for this tab only. */
export function signInWithAdminKey(key) {
  const session = { kind: "admin-key", key: key.trim(), user: "local admin", readOnly: false };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function redirectUri() {
  return `${window.location.origin}${window.location.pathname}`;
}

/** On a stack: to Cognito's managed login, with a PKCE verifier and state kept for the way back. */
export async function startCognitoSignIn(config) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL(`${config.cognitoDomain}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.userPoolClientId,
    redirect_uri: redirectUri(),
    scope: "openid email",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

async function cognitoIdentity(config, target, body) {
  const response = await fetch(`https://cognito-identity.${config.region}.amazonaws.com/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `AWSCognitoIdentityService.${target}`,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.message || `Cognito identity answered ${response.status}`);
  return answer;
}

/**
 * The way back from the managed login (`?code=&state=`): the code for tokens, the ID token for the identity
 * pool's credentials of the user's group role. Null when this page load is not a way back.
 */
export async function finishCognitoSignIn(config) {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("code");
  if (!code) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "{}");
  sessionStorage.removeItem(PENDING);
  window.history.replaceState(null, "", redirectUri() + window.location.hash);
  if (!pending.state || pending.state !== params.get("state")) throw new Error("The sign-in answer did not match this tab's request; sign in again.");
  const tokens = await fetch(`${config.cognitoDomain}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.userPoolClientId,
      code,
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    }),
  }).then((response) => response.json());
  if (!tokens.id_token) throw new Error(tokens.error_description || tokens.error || "Cognito gave no ID token");
  const logins = { [`cognito-idp.${config.region}.amazonaws.com/${config.userPoolId}`]: tokens.id_token };
  const { IdentityId } = await cognitoIdentity(config, "GetId", { IdentityPoolId: config.identityPoolId, Logins: logins });
  const { Credentials } = await cognitoIdentity(config, "GetCredentialsForIdentity", { IdentityId, Logins: logins });
  const claims = JSON.parse(atob(tokens.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  const groups = claims["cognito:groups"] || [];
  const session = {
    kind: "cognito",
    region: config.region,
    user: claims.email || claims["cognito:username"],
    readOnly: !groups.includes("admin"),
    credentials: { accessKeyId: Credentials.AccessKeyId, secretKey: Credentials.SecretKey, sessionToken: Credentials.SessionToken },
    expiresAt: Credentials.Expiration * 1000,
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

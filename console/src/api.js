// The admin API client: one fetch wrapper for both ways in (the local admin key, or SigV4 with Cognito credentials).
import { AwsClient } from "aws4fetch";

// API Gateway's gateway response types for a request whose credentials it refused (IAM authorisation).
const CREDENTIALS_REFUSED = new Set(["INVALID_SIGNATURE", "EXPIRED_TOKEN"]);

/** An error the admin API answered: `status`, and the `{type, code, message, param}` of its JSON error body. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `The admin API answered ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.param = error.param || null;
  }
}

/**
 * On a stack the console calls the admin API on its own origin: CloudFront passes /{stage}/admin* to API Gateway
 * with the Host of API Gateway's domain (`signingHost`), so the request is signed for that host and sent here.
 */
async function signedFetch(signer, signingHost, url, init) {
  const target = new URL(url.pathname + url.search, `https://${signingHost}`);
  const signed = await signer.sign(target.toString(), init);
  const headers = new Headers(signed.headers);
  headers.delete("host");
  return fetch(url, { method: init.method, headers, body: init.body });
}

/**
 * A client of the admin API at `config.adminApi` (docs/admin-api.md).
 * `onUnauthorized(error)` is called when the admin API refuses the credentials themselves.
 * `session` is `{kind: "admin-key", key}` locally, or `{kind: "cognito", credentials, region}` on a stack, where
 * requests are signed with SigV4 for the service `execute-api` by the identity pool's temporary credentials.
 */
export function adminClient(config, session, onUnauthorized = () => {}) {
  const signer =
    session.kind === "cognito"
      ? new AwsClient({
          accessKeyId: session.credentials.accessKeyId,
          secretAccessKey: session.credentials.secretKey,
          sessionToken: session.credentials.sessionToken,
          service: "execute-api",
          region: session.region,
        })
      : null;

  async function send(method, path, { query, body, accept = "application/json" } = {}) {
    const url = new URL(config.adminApi + path, window.location.href);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const headers = { accept };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (session.kind === "admin-key") headers.authorization = `Bearer ${session.key}`;
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    let response;
    try {
      response = signer ? await signedFetch(signer, config.signingHost, url, init) : await fetch(url, init);
    } catch (error) {
      throw new ApiError(0, { message: `The admin API could not be reached (${error.message})` });
    }
    const text = await response.text();
    if (!response.ok) {
      let error = { message: `The admin API answered ${response.status}` };
      try {
        error = JSON.parse(text).error || error;
      } catch {
        // A body that is not the admin API's JSON error (a proxy's page): the status says enough.
      }
      const failure = new ApiError(response.status, error);
      // Credentials API Gateway no longer takes (a changed key, expired credentials) end the session; a refusal of
      // an action the user's role may not do (ACCESS_DENIED) does not.
      if (CREDENTIALS_REFUSED.has(failure.code)) onUnauthorized(failure);
      throw failure;
    }
    if (accept !== "application/json") return text;
    return text ? JSON.parse(text) : null;
  }

  return {
    get: (path, query) => send("GET", path, { query }),
    csv: (path, query) => send("GET", path, { query: { ...query, format: "csv" }, accept: "text/csv" }),
    post: (path, body = {}) => send("POST", path, { body }),
    patch: (path, body) => send("PATCH", path, { body }),
    put: (path, body) => send("PUT", path, { body }),
  };
}

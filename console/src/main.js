// The console's shell: its runtime settings (config.json beside it), sign-in, the navigation and the hash routes.
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { adminClient } from "./api.js";
import { currentSession, finishCognitoSignIn, signInWithAdminKey, signOut, startCognitoSignIn } from "./auth.js";
import { ErrorNote } from "./ui.js";
import { Overview } from "./pages/overview.js";
import { Keys } from "./pages/keys.js";
import { Key } from "./pages/key.js";
import { Teams } from "./pages/teams.js";
import { Usage } from "./pages/usage.js";
import { Models } from "./pages/models.js";
import "./style.css";

const PAGES = [
  ["overview", "Overview"],
  ["keys", "Keys"],
  ["teams", "Teams and budgets"],
  ["usage", "Usage"],
  ["models", "Models"],
];

function useHash() {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const changed = () => setHash(window.location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
}

function SignIn({ config, onSignedIn, error }) {
  const [key, setKey] = useState("");
  const [checking, setChecking] = useState(false);
  const [refused, setRefused] = useState(null);
  const field = useRef(null);
  useEffect(() => field.current && field.current.focus(), [refused]);
  if (config.auth === "cognito") {
    return html`<main id="main" class="signin"><h1>LLM gateway console</h1>
      <p>Sign in with your organisation's account. Admins may change keys and budgets; read-only users see them.</p>
      <button type="button" onClick=${() => startCognitoSignIn(config)}>Sign in</button>
      ${error && html`<${ErrorNote} error=${error} />`}</main>`;
  }
  const submit = async (event) => {
    event.preventDefault();
    const candidate = { kind: "admin-key", key: key.trim() };
    setChecking(true);
    setRefused(null);
    try {
      // One read before the session starts, so that a wrong key is said here and not on every page.
      await adminClient(config, candidate).get("/tenants");
      onSignedIn(signInWithAdminKey(key));
    } catch (failure) {
      setRefused(failure);
    } finally {
      setChecking(false);
    }
  };
  return html`<main id="main" class="signin"><h1>LLM gateway console</h1>
    <form onSubmit=${submit}>
      <label>Admin key <input type="password" name="admin-key" value=${key} onInput=${(event) => setKey(event.currentTarget.value)}
        ref=${field} required autocomplete="off" /></label>
      <p class="note">The local gateway's admin key: <code>make run</code> prints it.</p>
      <button type="submit" disabled=${checking}>${checking ? "Signing in…" : "Sign in"}</button>
    </form>
    ${(refused || error) && html`<${ErrorNote} error=${refused || error} />`}</main>`;
}

function App({ config }) {
  const [session, setSession] = useState(currentSession);
  const [error, setError] = useState(null);
  const route = useHash();
  const endSession = (failure) => {
    signOut();
    setSession(null);
    setError(failure);
  };
  const api = useMemo(() => session && adminClient(config, session, endSession), [session]);
  useEffect(() => {
    if (config.auth === "cognito" && !session) finishCognitoSignIn(config).then((found) => found && setSession(found), setError);
  }, []);
  if (!session) return html`<${SignIn} config=${config} error=${error} onSignedIn=${(found) => { setError(null); setSession(found); }} />`;
  const [page = "overview", id] = route;
  const props = { api, config, session };
  const body =
    page === "keys" && id ? html`<${Key} ...${props} keyId=${id} />`
    : page === "keys" ? html`<${Keys} ...${props} />`
    : page === "teams" ? html`<${Teams} ...${props} />`
    : page === "usage" ? html`<${Usage} ...${props} />`
    : page === "models" ? html`<${Models} ...${props} />`
    : html`<${Overview} ...${props} />`;
  return html`<a class="skip" href="#main" onClick=${(event) => { event.preventDefault(); document.getElementById("main").focus(); }}>Skip to content</a>
    <header><nav aria-label="Console">
      <span class="brand">LLM gateway</span>
      <ul>${PAGES.map(([name, label]) => html`<li><a href=${`#/${name}`} aria-current=${page === name ? "page" : undefined}>${label}</a></li>`)}</ul>
      <span class="who">${session.user}${session.readOnly ? " (read-only)" : ""}
        <button type="button" onClick=${() => { signOut(); setSession(null); }}>Sign out</button></span>
    </nav></header>
    <main id="main" tabindex="-1">${body}</main>`;
}

async function start() {
  const root = document.getElementById("app");
  root.textContent = "";
  try {
    const response = await fetch(new URL("config.json", window.location.href), { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    const config = await response.json();
    // Relative settings (the local gateway's) are read against this page's origin.
    config.gatewayUrl = new URL(config.gatewayUrl, window.location.origin).toString().replace(/\/$/, "");
    render(html`<${App} config=${config} />`, root);
  } catch (error) {
    render(html`<main class="signin"><${ErrorNote} error=${{ message: `The console's settings could not be read: ${error.message}` }} /></main>`, root);
  }
}

start();

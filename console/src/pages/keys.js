// Keys: the list with search and filters, and creating a key (its secret shown once, with the lines to paste).
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { CopyButton, Empty, ErrorNote, Loaded, useLoad } from "../ui.js";

export const PLANS = ["free", "standard", "premium"];

/** `"*"`, or the list of model ids typed with commas or spaces. */
export function parseModels(text) {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed === "*") return "*";
  return trimmed.split(/[\s,]+/).filter(Boolean);
}

/** The limits form's values as the admin API's `Limits`: blank means the plan's default (null). */
export function parseLimits(form) {
  const number = (name) => (form.get(name) === "" || form.get(name) === null ? null : Number(form.get(name)));
  const money = form.get("usd_per_month");
  return {
    tokens_per_minute: number("tokens_per_minute"),
    tokens_per_day: number("tokens_per_day"),
    usd_per_month: money === "" || money === null ? null : String(money),
  };
}

/** The secret of a new or rotated key, once, with what a developer pastes for the openai SDK and Claude Code. */
export function NewSecret({ issued, config, onDone }) {
  const base = config.gatewayUrl;
  const host = base.replace(/\/v1\/?$/, "");
  const openai = `client = OpenAI(base_url="${base}", api_key="${issued.key}")`;
  const claude = `ANTHROPIC_BASE_URL=${host} ANTHROPIC_API_KEY=${issued.key} claude`;
  return html`<section class="secret" aria-labelledby="secret-title">
    <h2 id="secret-title" tabindex="-1">Key ${issued.record.key_id} is ready</h2>
    <p><strong>Copy the key now: it is shown this once.</strong> The gateway keeps only its hash.</p>
    <p><code data-testid="secret">${issued.key}</code> <${CopyButton} text=${issued.key} label="Copy key" /></p>
    <p>The openai SDK (Python):</p>
    <pre><code data-testid="openai-line">${openai}</code></pre><${CopyButton} text=${openai} label="Copy the openai line" />
    <p>Claude Code:</p>
    <pre><code>${claude}</code></pre><${CopyButton} text=${claude} label="Copy the Claude Code line" />
    <p><button type="button" onClick=${onDone}>I have copied it</button></p>
  </section>`;
}

function CreateKey({ api, config, onCreated, teams }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = { tenant: form.get("tenant").trim(), plan: form.get("plan"), models: parseModels(form.get("models")) };
    if (form.get("team")) body.team = form.get("team").trim();
    if (form.get("expires_at")) body.expires_at = new Date(`${form.get("expires_at")}T23:59:59Z`).toISOString();
    const limits = parseLimits(form);
    if (Object.values(limits).some((value) => value !== null)) body.limits = limits;
    setBusy(true);
    setError(null);
    try {
      onCreated(await api.post("/keys", body));
      event.target.reset();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<details class="panel"><summary>Create a key</summary>
    <form onSubmit=${submit} class="grid">
      <label>Tenant <input name="tenant" required autocomplete="off" /></label>
      <label>Team <input name="team" list="team-ids" autocomplete="off" placeholder="none" /></label>
      <datalist id="team-ids">${teams.map((team) => html`<option value=${team.id}>${team.parent}</option>`)}</datalist>
      <label>Plan <select name="plan">${PLANS.map((plan) => html`<option defaultSelected=${plan === "standard"}>${plan}</option>`)}</select></label>
      <label>Models <input name="models" placeholder="* (all), or ids with commas" /></label>
      <label>Expires <input name="expires_at" type="date" /></label>
      <label>Tokens per minute <input name="tokens_per_minute" type="number" min="1" placeholder="plan's default" /></label>
      <label>Tokens per day <input name="tokens_per_day" type="number" min="1" placeholder="plan's default" /></label>
      <label>Dollars per month <input name="usd_per_month" type="number" min="0" step="0.01" placeholder="plan's default" /></label>
      <div class="actions"><button type="submit" disabled=${busy}>${busy ? "Creating…" : "Create key"}</button></div>
      ${error && html`<${ErrorNote} error=${error} />`}
    </form>
  </details>`;
}

export function Keys({ api, config, session }) {
  const [filters, setFilters] = useState({ q: "", tenant: "", team: "", plan: "", status: "" });
  const [issued, setIssued] = useState(null);
  const keys = useLoad(() => api.get("/keys", filters), [api, JSON.stringify(filters)]);
  const teams = useLoad(() => api.get("/teams"), [api]);
  const set = (name) => (event) => setFilters({ ...filters, [name]: event.currentTarget.value });
  const created = (answer) => {
    setIssued(answer);
    keys.reload();
    requestAnimationFrame(() => document.getElementById("secret-title")?.focus());
  };
  return html`<h1>Keys</h1>
    ${issued && html`<${NewSecret} issued=${issued} config=${config} onDone=${() => setIssued(null)} />`}
    ${!session.readOnly && html`<${CreateKey} api=${api} config=${config} onCreated=${created} teams=${teams.data ? teams.data.data : []} />`}
    <form class="filters" role="search" onSubmit=${(event) => event.preventDefault()}>
      <label>Search <input type="search" name="q" value=${filters.q} onInput=${set("q")} placeholder="id, hint, tenant or team" /></label>
      <label>Tenant <input name="tenant" value=${filters.tenant} onChange=${set("tenant")} /></label>
      <label>Team <input name="team" value=${filters.team} onChange=${set("team")} /></label>
      <label>Plan <select name="plan" value=${filters.plan} onChange=${set("plan")}><option value="">any</option>${PLANS.map((plan) => html`<option>${plan}</option>`)}</select></label>
      <label>Status <select name="status" value=${filters.status} onChange=${set("status")}>
        <option value="">any</option><option>active</option><option>retiring</option><option>revoked</option><option>expired</option></select></label>
    </form>
    <${Loaded} result=${keys} what="keys">${({ data }) =>
      data.length === 0
        ? html`<${Empty}>No key matches. ${session.readOnly ? "" : "Create one above."}</${Empty}>`
        : html`<div class="scroll"><table>
          <caption>${data.length} key${data.length === 1 ? "" : "s"}</caption>
          <thead><tr><th scope="col">Key</th><th scope="col">Tenant</th><th scope="col">Team</th><th scope="col">Plan</th>
            <th scope="col">Models</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Expires</th></tr></thead>
          <tbody>${data.map((key) => html`<tr>
            <th scope="row"><a href=${`#/keys/${encodeURIComponent(key.key_id)}`}>${key.key_id}</a> <small>${key.key_hint}</small></th>
            <td>${key.tenant}</td><td>${key.team || "—"}</td><td>${key.plan}</td>
            <td>${key.models === "*" ? "all" : key.models.join(", ")}</td>
            <td><span class=${`status ${key.status}`}>${key.status}</span></td>
            <td>${key.created_at.slice(0, 10)}</td><td>${key.expires_at ? key.expires_at.slice(0, 10) : "never"}</td>
          </tr>`)}</tbody></table></div>`}</${Loaded}>`;
}

// One key: its record, the remaining budget of its chain per window, its usage by day and model this month; its plan, expiry,
// models and limits changed, rotated (with a grace period for the old secret), revoked.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { BudgetTable, count, day, ErrorNote, inputTokens, Loaded, monthStart, outputTokens, useLoad, usageByEvents, usd } from "../ui.js";
import { NewSecret, parseLimits, parseModels, PLANS } from "./keys.js";

// What the rotate form offers: how long the old secret keeps working beside the new one (the API allows up to 7 days).
const GRACE_PERIODS = [["none: refused at once", 0], ["1 hour", 3600], ["1 day", 86400], ["7 days", 604800]];

// The expiry a date field means: the end of that UTC day, as when a key is created; empty: never.
const expiryOf = (value) => (value ? new Date(`${value}T23:59:59Z`).toISOString() : null);

function Update({ api, record, onSaved }) {
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setError(null);
    const body = { models: parseModels(form.get("models")), limits: parseLimits(form) };
    // Plan and expiry are sent only when changed: a new plan moves the key's API Gateway key to that usage plan.
    if (form.get("plan") !== record.plan) body.plan = form.get("plan");
    if (form.get("expires_at") !== (record.expires_at || "").slice(0, 10)) body.expires_at = expiryOf(form.get("expires_at"));
    try {
      onSaved(await api.patch(`/keys/${encodeURIComponent(record.key_id)}`, body));
    } catch (failure) {
      setError(failure);
    }
  };
  const limits = record.limits || {};
  return html`<form onSubmit=${submit} class="grid panel" aria-label="Plan, expiry, models and limits">
    <label>Plan <select name="plan" value=${record.plan}>${PLANS.map((plan) => html`<option>${plan}</option>`)}</select></label>
    <label>Expires (end of the UTC day; empty: never) <input name="expires_at" type="date" value=${(record.expires_at || "").slice(0, 10)} /></label>
    <label>Models <input name="models" value=${record.models === "*" ? "*" : record.models.join(", ")} /></label>
    <label>Tokens per minute <input name="tokens_per_minute" type="number" min="1" value=${limits.tokens_per_minute ?? ""} placeholder="plan's default" /></label>
    <label>Tokens per day <input name="tokens_per_day" type="number" min="1" value=${limits.tokens_per_day ?? ""} placeholder="plan's default" /></label>
    <label>Dollars per month <input name="usd_per_month" type="number" min="0" step="0.01" value=${limits.usd_per_month ?? ""} placeholder="plan's default" /></label>
    <div class="actions"><button type="submit">Save plan, expiry, models and limits</button></div>
    ${error && html`<${ErrorNote} error=${error} />`}
  </form>`;
}

export function Key({ api, config, session, keyId }) {
  const path = `/keys/${encodeURIComponent(keyId)}`;
  const [issued, setIssued] = useState(null);
  const [actionError, setActionError] = useState(null);
  const record = useLoad(() => api.get(path), [api, keyId]);
  const budget = useLoad(() => api.get(`${path}/budget`), [api, keyId]);
  const usage = useLoad(
    () => usageByEvents(api, { since: monthStart(), until: day(), key: keyId, group_by: "day,model" }, "day"),
    [api, keyId],
  );
  const act = async (action) => {
    setActionError(null);
    try {
      await action();
      record.reload();
      budget.reload();
    } catch (failure) {
      setActionError(failure);
    }
  };
  const rotate = (event) => {
    event.preventDefault();
    const grace = Number(new FormData(event.currentTarget).get("grace_period_seconds"));
    return act(async () => setIssued(await api.post(`${path}/rotate`, { grace_period_seconds: grace })));
  };
  const revoke = () => window.confirm(`Revoke ${keyId}? Requests with it are refused from now on.`) && act(() => api.post(`${path}/revoke`));
  return html`<p><a href="#/keys">← Keys</a></p><h1>Key ${keyId}</h1>
    ${issued && html`<${NewSecret} issued=${issued} config=${config} onDone=${() => setIssued(null)} />`}
    ${issued?.previous?.status === "retiring" && html`<p data-testid="grace-note">The old key ${issued.previous.key_hint} keeps working until ${issued.previous.revoked_at}; both spend this key's budgets.</p>`}
    <${Loaded} result=${record} what="the key">${(key) => html`<dl class="facts">
        <dt>Hint</dt><dd>${key.key_hint}</dd><dt>Status</dt><dd><span class=${`status ${key.status}`} data-testid="key-status">${key.status}</span></dd>
        <dt>Tenant</dt><dd>${key.tenant}</dd><dt>Team</dt><dd>${key.team || "—"}</dd><dt>Plan</dt><dd>${key.plan}</dd>
        <dt>Created</dt><dd>${key.created_at}</dd><dt>Expires</dt><dd>${key.expires_at || "never"}</dd>
        ${key.rotated_from && html`<dt>Rotated from</dt><dd><a href=${`#/keys/${encodeURIComponent(key.rotated_from)}`}>${key.rotated_from}</a></dd>`}
      </dl>
      ${!session.readOnly && (key.status === "active" || key.status === "expired") && html`<h2>Plan, expiry, models and limits</h2>
        <${Update} api=${api} record=${key} onSaved=${() => record.reload()} />
        <form onSubmit=${rotate} class="actions" aria-label="Rotate">
          <label>Old key keeps working <select name="grace_period_seconds">${GRACE_PERIODS.map(([label, seconds]) => html`<option value=${seconds}>${label}</option>`)}</select></label>
          <button type="submit">Rotate</button>
          <button type="button" class="danger" onClick=${revoke}>Revoke</button></form>`}
      ${actionError && html`<${ErrorNote} error=${actionError} />`}`}</${Loaded}>
    <h2>Remaining budget</h2>
    <${Loaded} result=${budget} what="the budget">${(answer) => {
      // One budget per scope of the key's chain (the key, its team, its tenant) with a cap or any spend.
      const budgets = Array.isArray(answer.data) ? answer.data : [answer];
      return budgets.length === 0
        ? html`<p class="empty">No caps and no spend for this key, its team or its tenant.</p>`
        : budgets.map((one) => html`<${BudgetTable} budget=${one} caption=${`${one.scope} ${one.id}`} />`);
    }}</${Loaded}>
    <h2>Usage this month</h2>
    <${Loaded} result=${usage} what="usage">${({ rows, groups }) =>
      rows.length === 0
        ? html`<p class="empty">No requests with this key this month.</p>`
        : html`<div class="scroll"><table data-testid="key-usage"><caption>By ${groups.join(" and ")}</caption>
          <thead><tr>${groups.map((group) => html`<th scope="col">${group}</th>`)}<th scope="col">Requests</th><th scope="col">Input tokens</th>
            <th scope="col">Output tokens</th><th scope="col">Spend</th></tr></thead>
          <tbody>${rows.map((row) => html`<tr>${groups.map((group, index) => (index === 0 ? html`<th scope="row">${row[group]}</th>` : html`<td>${row[group]}</td>`))}
            <td>${count(row.requests)}</td><td>${count(inputTokens(row))}</td><td>${count(outputTokens(row))}</td><td>${usd(row.cost_usd)}</td></tr>`)}</tbody>
        </table></div>`}</${Loaded}>`;
}

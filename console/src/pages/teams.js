// Teams and budgets: the tenant > team tree, each node's caps per window with spent and remaining; edit a cap.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { BudgetTable, Empty, ErrorNote, Loaded, useLoad } from "../ui.js";

/** A cap for one period of a tenant (PUT) or team (PATCH); blank fields remove that part of the cap. */
function EditCap({ api, node, onSaved }) {
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const cap = {
      period: form.get("period"),
      tokens: form.get("tokens") === "" ? null : Number(form.get("tokens")),
      usd: form.get("usd") === "" ? null : String(form.get("usd")),
    };
    setError(null);
    try {
      const id = encodeURIComponent(node.id);
      if (node.scope === "tenant") await api.put(`/tenants/${id}`, { caps: [cap] });
      else await api.patch(`/teams/${id}`, { caps: [cap] });
      onSaved();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="grid" onSubmit=${submit} aria-label=${`Cap of ${node.scope} ${node.id}`}>
    <label>Window <select name="period"><option>day</option><option>week</option><option selected>month</option></select></label>
    <label>Tokens <input name="tokens" type="number" min="0" placeholder="no cap" /></label>
    <label>Dollars <input name="usd" type="number" min="0" step="0.01" placeholder="no cap" /></label>
    <div class="actions"><button type="submit">Set cap</button></div>
    ${error && html`<${ErrorNote} error=${error} />`}
  </form>`;
}

function NodeCard({ api, node, readOnly, onChanged }) {
  // A tenant named only as a team's parent has no node of its own yet: no caps to show until one is set.
  const budget = useLoad(
    () => (node.implicit ? Promise.resolve({ windows: [] }) : api.get(`/budgets/${node.scope}/${encodeURIComponent(node.id)}`)),
    [api, node.scope, node.id, node.implicit],
  );
  return html`<article class=${`node ${node.scope}`} aria-label=${`${node.scope} ${node.id}`}>
    <h3>${node.id} <small>${node.scope}${node.parent ? ` of ${node.parent}` : ""} · ${node.time_zone || "UTC"}</small></h3>
    <${Loaded} result=${budget} what="the budget">${(data) => html`<${BudgetTable} budget=${data} caption=${`Caps of ${node.id}`} />`}</${Loaded}>
    ${!readOnly && html`<details><summary>Edit a cap</summary><${EditCap} api=${api} node=${node} onSaved=${node.implicit ? onChanged : budget.reload} /></details>`}
  </article>`;
}

function CreateTeam({ api, onCreated }) {
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = { id: form.get("id").trim(), tenant: form.get("tenant").trim() };
    if (form.get("time_zone")) body.time_zone = form.get("time_zone").trim();
    setError(null);
    try {
      await api.post("/teams", body);
      event.target.reset();
      onCreated();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<details class="panel"><summary>Create a team</summary><form class="grid" onSubmit=${submit}>
    <label>Team id <input name="id" required autocomplete="off" /></label>
    <label>Tenant <input name="tenant" required autocomplete="off" /></label>
    <label>Time zone <input name="time_zone" placeholder="UTC" /></label>
    <div class="actions"><button type="submit">Create team</button></div>
    ${error && html`<${ErrorNote} error=${error} />`}
  </form></details>`;
}

export function Teams({ api, session }) {
  const tree = useLoad(async () => {
    const [tenants, teams] = await Promise.all([api.get("/tenants"), api.get("/teams")]);
    return { tenants: tenants.data, teams: teams.data };
  }, [api]);
  return html`<h1>Teams and budgets</h1>
    <p class="note">A request reserves its worst case at the key, its team and its tenant before the model is called.
      When any cap of the chain would be exceeded the request is refused with 429 and a code naming the scope
      (<code>team_budget_exceeded</code>, <code>tenant_budget_exceeded</code>), and <code>retry-after</code> says when the
      window resets; nothing is spent. Windows follow each node's time zone.</p>
    ${!session.readOnly && html`<${CreateTeam} api=${api} onCreated=${tree.reload} />`}
    <${Loaded} result=${tree} what="teams">${({ tenants, teams }) => {
      const names = [...new Set([...tenants.map((t) => t.id), ...teams.map((t) => t.parent)])].sort();
      if (!names.length) return html`<${Empty}>No tenants or teams yet.</${Empty}>`;
      return html`<ul class="tree">${names.map((name) => {
        const tenant = tenants.find((t) => t.id === name) || { scope: "tenant", id: name, parent: null, caps: [], implicit: true };
        return html`<li><${NodeCard} api=${api} node=${tenant} readOnly=${session.readOnly} onChanged=${tree.reload} />
          <ul>${teams.filter((team) => team.parent === name).map((team) => html`<li><${NodeCard} api=${api} node=${team} readOnly=${session.readOnly} /></li>`)}</ul></li>`;
      })}</ul>`;
    }}</${Loaded}>`;
}

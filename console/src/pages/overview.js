// Overview: spend and tokens this month and today by tenant and team against their caps, the daily trend, requests,
// and the keys, models and Claude Code sessions that spend most.
import { html } from "htm/preact";
import { TrendChart } from "../chart.js";
import { count, day, Empty, Loaded, Meter, micros, monthStart, totalsBy, useLoad, usageByEvents, usd, usdMicros } from "../ui.js";

function dailyPoints(rows, since, until) {
  const byDay = new Map(totalsBy(rows, "day").map((total) => [total.name, total]));
  const points = [];
  for (let at = new Date(`${since}T00:00:00Z`); day(at) <= until; at = new Date(at.getTime() + 86_400_000)) {
    const total = byDay.get(day(at));
    points.push({ day: day(at), cost: total ? total.cost : 0, tokens: total ? total.tokens : 0 });
  }
  return points;
}

async function loadOverview(api) {
  const today = day();
  const since = monthStart();
  const [month, todays, daily, byKey, byModel, bySession, tenants, teams] = await Promise.all([
    api.get("/usage", { since, until: today, group_by: "tenant,team" }),
    api.get("/usage", { since: today, until: today, group_by: "tenant,team" }),
    api.get("/usage", { since, until: today, group_by: "day" }),
    api.get("/usage", { since, until: today, group_by: "key" }),
    // Models and sessions come from the usage events; a deployment without them shows none.
    usageByEvents(api, { since, until: today, group_by: "model" }, "day"),
    usageByEvents(api, { since, until: today, group_by: "session" }, "day"),
    api.get("/tenants"),
    api.get("/teams"),
  ]);
  const nodes = [...tenants.data, ...teams.data];
  const budgets = await Promise.all(nodes.map((node) => api.get(`/budgets/${node.scope}/${encodeURIComponent(node.id)}`)));
  const events = (result) => (result.noEvents ? null : result.rows);
  return { month: month.data, today: todays.data, daily: daily.data, byKey: byKey.data, byModel: events(byModel),
    bySession: events(bySession), nodes, budgets, since, until: today };
}

function windowOf(budget, period) {
  return budget && budget.windows.find((window) => window.period === period);
}

function NodeRow({ node, budget, month, today }) {
  const monthly = windowOf(budget, "month");
  const daily = windowOf(budget, "day");
  return html`<tr>
    <th scope="row">${node.scope === "team" ? html`<span class="indent">${node.id}</span>` : node.id} <small>${node.scope}</small></th>
    <td>${usdMicros(month.cost)} ${monthly && monthly.usd.cap !== null ? html`of ${usd(monthly.usd.cap)} <${Meter} spent=${month.cost / 1e6} cap=${Number(monthly.usd.cap)} />` : ""}</td>
    <td>${count(month.tokens)} ${monthly && monthly.tokens.cap !== null ? html`of ${count(monthly.tokens.cap)}` : ""}</td>
    <td>${usdMicros(today.cost)} ${daily && daily.usd.cap !== null ? html`of ${usd(daily.usd.cap)}` : ""}</td>
    <td>${count(today.tokens)} ${daily && daily.tokens.cap !== null ? html`of ${count(daily.tokens.cap)} <${Meter} spent=${today.tokens} cap=${daily.tokens.cap} />` : ""}</td>
  </tr>`;
}

function SpendByNode({ data }) {
  const zero = { cost: 0, tokens: 0 };
  const sum = (rows, match) => totalsBy(rows.filter(match), "tenant").reduce((a, b) => ({ cost: a.cost + b.cost, tokens: a.tokens + b.tokens }), zero);
  const tenantsSeen = new Set([...data.month.map((row) => row.tenant), ...data.nodes.filter((n) => n.scope === "tenant").map((n) => n.id)]);
  const rows = [];
  for (const tenant of [...tenantsSeen].sort()) {
    const node = data.nodes.find((n) => n.scope === "tenant" && n.id === tenant) || { scope: "tenant", id: tenant };
    rows.push({ node, match: (row) => row.tenant === tenant });
    const teams = new Set([...data.month.filter((row) => row.tenant === tenant && row.team && row.team !== "-").map((row) => row.team),
      ...data.nodes.filter((n) => n.scope === "team" && n.parent === tenant).map((n) => n.id)]);
    for (const team of [...teams].sort()) {
      const teamNode = data.nodes.find((n) => n.scope === "team" && n.id === team) || { scope: "team", id: team };
      rows.push({ node: teamNode, match: (row) => row.tenant === tenant && row.team === team });
    }
  }
  if (!rows.length) return html`<${Empty}>No tenants, teams or spend yet. Create a key to get started.</${Empty}>`;
  return html`<div class="scroll"><table>
    <caption>Spend and tokens by tenant and team, against their caps</caption>
    <thead><tr><th scope="col">Tenant / team</th><th scope="col">Spend this month</th><th scope="col">Tokens this month</th>
      <th scope="col">Spend today</th><th scope="col">Tokens today</th></tr></thead>
    <tbody>${rows.map(({ node, match }) => html`<${NodeRow} node=${node}
      budget=${data.budgets[data.nodes.indexOf(node)]} month=${sum(data.month, match)} today=${sum(data.today, match)} />`)}</tbody>
  </table></div>`;
}

function Top({ rows, caption, link }) {
  if (rows === null) return html`<${Empty}>This deployment keeps no usage events (its usage events table is not set).</${Empty}>`;
  if (!rows.length) return html`<${Empty}>Nothing spent this month.</${Empty}>`;
  return html`<div class="scroll"><table>
    <caption>${caption}</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Requests</th><th scope="col">Tokens</th><th scope="col">Spend</th></tr></thead>
    <tbody>${rows.slice(0, 5).map((row) => html`<tr><th scope="row">${link ? html`<a href=${link(row.name)}>${row.name}</a>` : row.name}</th>
      <td>${count(row.requests)}</td><td>${count(row.tokens)}</td><td>${usdMicros(row.cost)}</td></tr>`)}</tbody>
  </table></div>`;
}

export function Overview({ api }) {
  const result = useLoad(() => loadOverview(api), [api]);
  return html`<h1>Overview</h1>
    <${Loaded} result=${result} what="the overview">${(data) => {
      const month = totalsBy(data.month, "tenant").reduce((a, b) => ({ requests: a.requests + b.requests, failed: a.failed + b.failed, tokens: a.tokens + b.tokens, cost: a.cost + b.cost }), { requests: 0, failed: 0, tokens: 0, cost: 0 });
      const today = data.today.reduce((sum, row) => sum + micros(row.cost_usd), 0);
      return html`<section class="cards" aria-label="This month">
          <div class="card"><span>Spend this month</span><strong data-testid="month-spend">${usdMicros(month.cost)}</strong></div>
          <div class="card"><span>Spend today</span><strong>${usdMicros(today)}</strong></div>
          <div class="card"><span>Tokens this month</span><strong>${count(month.tokens)}</strong></div>
          <div class="card"><span>Requests this month</span><strong>${count(month.requests)}</strong></div>
          <div class="card"><span>Error rate this month</span><strong>${month.requests ? `${((100 * month.failed) / month.requests).toFixed(1)}%` : "—"}</strong></div>
        </section>
        <section><h2>Daily spend</h2><${TrendChart} points=${dailyPoints(data.daily, data.since, data.until)} title=${`Spend per day from ${data.since} to ${data.until} (UTC)`} /></section>
        <section><h2>Tenants and teams</h2><${SpendByNode} data=${data} /></section>
        <section><h2>Top keys</h2><${Top} rows=${totalsBy(data.byKey, "key")} caption="Keys by spend this month" link=${(id) => `#/keys/${encodeURIComponent(id)}`} /></section>
        <section><h2>Top models</h2><${Top} rows=${data.byModel && totalsBy(data.byModel, "model")} caption="Models by spend this month" /></section>
        <section><h2>Top Claude Code sessions</h2><${Top} rows=${data.bySession && totalsBy(data.bySession.filter((row) => row.session !== "-"), "session")} caption="Claude Code sessions by spend this month" /></section>`;
    }}</${Loaded}>`;
}

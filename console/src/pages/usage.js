// Usage: requests, tokens and spend grouped by the columns chosen over a date range; the same rows as CSV.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { count, day, daysAgo, Empty, ErrorNote, inputTokens, Loaded, outputTokens, useLoad, usd } from "../ui.js";

// What the admin API groups by: the budgets' columns, and those of the usage events (Claude Code's session, the end
// user a client names, one column per allowed tag with `tag`).
const COLUMNS = ["day", "tenant", "team", "key", "plan", "model", "session", "end_user", "tag"];

export function Usage({ api }) {
  const [query, setQuery] = useState({ since: daysAgo(29), until: day(), group_by: "tenant,team" });
  const [downloadError, setDownloadError] = useState(null);
  const usage = useLoad(() => api.get("/usage", query), [api, JSON.stringify(query)]);
  const submit = (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const groups = COLUMNS.filter((column) => form.get(`group-${column}`));
    setQuery({ since: form.get("since"), until: form.get("until"), group_by: groups.join(",") });
  };
  const download = async () => {
    setDownloadError(null);
    try {
      const text = await api.csv("/usage", query);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      link.download = `usage-${query.since}-${query.until}.csv`;
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (failure) {
      setDownloadError(failure);
    }
  };
  const groups = query.group_by ? query.group_by.split(",") : [];
  // `tag` answers one `tag:NAME` column per allowed tag name: the rows say which.
  const columnsOf = (data) => groups.flatMap((group) => (group === "tag" && data.length ? Object.keys(data[0]).filter((name) => name.startsWith("tag:")) : [group]));
  return html`<h1>Usage</h1>
    <form class="filters" onSubmit=${submit} aria-label="Usage report">
      <label>From <input type="date" name="since" value=${query.since} required /></label>
      <label>To <input type="date" name="until" value=${query.until} required /></label>
      <fieldset><legend>Group by</legend>${COLUMNS.map((column) => html`<label class="check">
        <input type="checkbox" name=${`group-${column}`} checked=${groups.includes(column)} /> ${column}</label>`)}</fieldset>
      <div class="actions"><button type="submit">Show</button>
        <button type="button" onClick=${download}>Download CSV</button></div>
    </form>
    ${downloadError && html`<${ErrorNote} error=${downloadError} />`}
    <${Loaded} result=${usage} what="usage">${({ data }) =>
      data.length === 0
        ? html`<${Empty}>No usage from ${query.since} to ${query.until}.</${Empty}>`
        : html`<div class="scroll"><table data-testid="usage-table"><caption>${data.length} rows, ${query.since} to ${query.until}</caption>
          <thead><tr>${columnsOf(data).map((column) => html`<th scope="col">${column}</th>`)}<th scope="col">Requests</th>
            <th scope="col">Input tokens</th><th scope="col">Output tokens</th><th scope="col">Spend</th></tr></thead>
          <tbody>${data.map((row) => html`<tr>${columnsOf(data).map((column) => html`<td>${row[column] ?? "—"}</td>`)}
            <td>${count(row.requests)}</td><td>${count(inputTokens(row))}</td><td>${count(outputTokens(row))}</td><td>${usd(row.cost_usd)}</td></tr>`)}</tbody>
        </table></div>`}</${Loaded}>`;
}

// Shared pieces of every page: loading, error and empty states, formatting, dates, the data hook.
import { html } from "htm/preact";
import { useCallback, useEffect, useState } from "preact/hooks";

/** `{data, error, loading, reload}` of an async `load()`, run again when `deps` change. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const run = useCallback(() => {
    let current = true;
    setState((previous) => ({ ...previous, loading: true, error: null }));
    load().then(
      (data) => current && setState({ data, error: null, loading: false }),
      (error) => current && setState({ data: null, error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** The loading and error states of a `useLoad` result; renders `children(data)` once there is data. */
export function Loaded({ result, children, what }) {
  if (result.error) return html`<${ErrorNote} error=${result.error} retry=${result.reload} />`;
  if (result.loading && result.data === null) return html`<p class="loading" aria-busy="true">Loading ${what}…</p>`;
  return children(result.data);
}

export function ErrorNote({ error, retry }) {
  const status = error.status ? ` (${error.status}${error.code ? ` ${error.code}` : ""})` : "";
  return html`<div class="error" role="alert">
    <p>${error.message}${status}</p>
    ${retry && html`<button type="button" onClick=${retry}>Try again</button>`}
  </div>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

/** Money is a decimal string of US dollars; sums are taken in millionths so that they add up exactly. */
export const micros = (usd) => Math.round(Number(usd || 0) * 1e6);
export const usd = (value) => (value === null || value === undefined ? "—" : `$${(micros(value) / 1e6).toFixed(2)}`);
export const usdMicros = (value) => `$${(value / 1e6).toFixed(2)}`;
export const count = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US"));

export function day(date = new Date()) {
  return date.toISOString().slice(0, 10);
}

export function monthStart(date = new Date()) {
  return `${day(date).slice(0, 8)}01`;
}

export function daysAgo(n) {
  return day(new Date(Date.now() - n * 86_400_000));
}

/** Token counts of a usage row: the admin API's `input_tokens`/`output_tokens` (or `prompt_tokens`/`completion_tokens`). */
export const inputTokens = (row) => row.input_tokens ?? row.prompt_tokens ?? 0;
export const outputTokens = (row) => row.output_tokens ?? row.completion_tokens ?? 0;

/** Rows summed per value of `column`, largest cost first: `[{name, requests, failed, tokens, cost}]` (cost in micros). */
export function totalsBy(rows, column) {
  const totals = new Map();
  for (const row of rows) {
    const name = row[column] ?? "—";
    const total = totals.get(name) || { name, requests: 0, failed: 0, tokens: 0, cost: 0 };
    total.requests += row.requests || 0;
    total.failed += row.failed || 0;
    total.tokens += inputTokens(row) + outputTokens(row);
    total.cost += micros(row.cost_usd);
    totals.set(name, total);
  }
  return [...totals.values()].sort((a, b) => b.cost - a.cost || b.tokens - a.tokens);
}

/** Usage grouped by `group_by` (which names an event column: model, session, end_user, tag), or, where the deployment
 * keeps no usage events (404 `no_usage_events_table`), by `fallback` alone: `{rows, groups}`. */
export async function usageByEvents(api, query, fallback) {
  try {
    const { data } = await api.get("/usage", query);
    return { rows: data, groups: query.group_by.split(",") };
  } catch (failure) {
    if (failure.code !== "no_usage_events_table") throw failure;
    const { data } = await api.get("/usage", { ...query, group_by: fallback });
    return { rows: data, groups: fallback.split(","), noEvents: true };
  }
}

/** A budget's windows as rows: period, and cap, spent and remaining for tokens and dollars. */
export function BudgetTable({ budget, caption }) {
  if (!budget.windows.length) return html`<${Empty}>No caps and no spend in any window.</${Empty}>`;
  return html`<div class="scroll"><table>
    <caption>${caption}</caption>
    <thead><tr><th scope="col">Window</th><th scope="col">Tokens spent / cap</th><th scope="col">Tokens left</th>
      <th scope="col">Spend / cap</th><th scope="col">Spend left</th><th scope="col">Resets</th></tr></thead>
    <tbody>${budget.windows.map(
      (window) => html`<tr>
        <th scope="row">${window.period}</th>
        <td>${count(window.tokens.spent)} / ${window.tokens.cap === null ? "no cap" : count(window.tokens.cap)}
          ${window.tokens.cap !== null && html`<${Meter} spent=${window.tokens.spent} cap=${window.tokens.cap} />`}</td>
        <td>${count(window.tokens.remaining)}</td>
        <td>${usd(window.usd.spent)} / ${window.usd.cap === null ? "no cap" : usd(window.usd.cap)}
          ${window.usd.cap !== null && html`<${Meter} spent=${Number(window.usd.spent)} cap=${Number(window.usd.cap)} />`}</td>
        <td>${usd(window.usd.remaining)}</td>
        <td><time datetime=${window.resets_at}>${window.resets_at.slice(0, 16).replace("T", " ")}</time></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export function Meter({ spent, cap }) {
  const ratio = cap > 0 ? Math.min(spent / cap, 1) : 1;
  return html`<meter min="0" max="1" low="0.75" high="0.9" optimum="0" value=${ratio} title=${`${Math.round(ratio * 100)}% of the cap`}></meter>`;
}

/** Copies `text` to the clipboard, saying so beside the button. */
export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
    } catch {
      setDone(false);
    }
  };
  return html`<button type="button" onClick=${copy}>${label}</button>${done && html` <span role="status">Copied</span>`}`;
}

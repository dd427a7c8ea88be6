// Models: the registry as the gateway applies it (windows, prices, traits), and which of them a chosen key may call.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { count, Empty, Loaded, useLoad } from "../ui.js";

function prices(value) {
  if (!value || typeof value !== "object") return "—";
  return Object.entries(value).map(([name, price]) => `${name.replace(/_/g, " ")}: $${price}`).join(" · ");
}

function traits(value) {
  if (!value) return "—";
  if (Array.isArray(value)) return value.join(", ") || "—";
  // `source` names where the traits come from, not a trait.
  return Object.entries(value).filter(([name, on]) => name !== "source" && on !== false && on !== null).map(([name, on]) => (on === true ? name : `${name}: ${JSON.stringify(on)}`)).join(", ") || "—";
}

export function Models({ api }) {
  const [keyId, setKeyId] = useState("");
  const models = useLoad(() => api.get("/models"), [api]);
  const keys = useLoad(() => api.get("/keys", { status: "active" }), [api]);
  const chosen = keys.data && keys.data.data.find((key) => key.key_id === keyId);
  const allowed = (id) => !chosen || chosen.models === "*" || chosen.models.includes(id);
  return html`<h1>Models</h1>
    <label class="inline">What a key may call <select value=${keyId} onChange=${(event) => setKeyId(event.currentTarget.value)}>
      <option value="">every model (no key chosen)</option>
      ${(keys.data ? keys.data.data : []).map((key) => html`<option value=${key.key_id}>${key.key_id} (${key.tenant}${key.team ? `/${key.team}` : ""})</option>`)}
    </select></label>
    <${Loaded} result=${models} what="models">${({ data }) =>
      data.length === 0
        ? html`<${Empty}>The registry has no models.</${Empty}>`
        : html`<div class="scroll"><table><caption>${chosen ? `Models ${chosen.key_id} may call are marked` : `${data.length} models`}</caption>
          <thead><tr><th scope="col">Model</th><th scope="col">Provider</th><th scope="col">Context window</th>
            <th scope="col">Max output</th><th scope="col">Prices (USD)</th><th scope="col">Traits</th>${chosen && html`<th scope="col">Allowed</th>`}</tr></thead>
          <tbody>${data.map((model) => html`<tr class=${allowed(model.id) ? "" : "muted"}><th scope="row">${model.id}</th><td>${model.provider}</td>
            <td>${count(model.context_window)}</td><td>${count(model.max_output_tokens)}</td><td>${prices(model.prices)}</td><td class="wrap">${traits(model.traits)}</td>
            ${chosen && html`<td>${allowed(model.id) ? "yes" : "no"}</td>`}</tr>`)}</tbody>
        </table></div>`}</${Loaded}>`;
}

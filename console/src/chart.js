// The trend chart: one SVG of daily spend (bars) over a month, with the scale and a text equivalent for readers.
import { html } from "htm/preact";
import { usdMicros } from "./ui.js";

/** `points`: `[{day: "YYYY-MM-DD", cost: micros, tokens}]` in day order. */
export function TrendChart({ points, title }) {
  if (!points.length) return html`<p class="empty">No spend in this period yet.</p>`;
  const width = 640;
  const height = 200;
  const pad = { top: 12, right: 8, bottom: 24, left: 56 };
  const top = Math.max(...points.map((point) => point.cost), 1);
  const step = (width - pad.left - pad.right) / points.length;
  const y = (value) => pad.top + (height - pad.top - pad.bottom) * (1 - value / top);
  const summary = points.map((point) => `${point.day}: ${usdMicros(point.cost)}`).join("; ");
  return html`<figure class="chart">
    <svg viewBox="0 0 ${width} ${height}" role="img" aria-label=${`${title}. ${summary}`} preserveAspectRatio="none">
      <line x1=${pad.left} x2=${width - pad.right} y1=${y(0)} y2=${y(0)} class="axis" />
      <line x1=${pad.left} x2=${width - pad.right} y1=${y(top)} y2=${y(top)} class="grid" />
      <text x=${pad.left - 4} y=${y(top) + 4} text-anchor="end">${usdMicros(top)}</text>
      <text x=${pad.left - 4} y=${y(0)} text-anchor="end">$0</text>
      ${points.map(
        (point, index) => html`<rect x=${pad.left + index * step + step * 0.15} width=${Math.max(step * 0.7, 1)}
          y=${y(point.cost)} height=${Math.max(y(0) - y(point.cost), point.cost > 0 ? 1 : 0)} class="bar">
          <title>${point.day}: ${usdMicros(point.cost)}, ${point.tokens.toLocaleString("en-US")} tokens</title></rect>`,
      )}
      <text x=${pad.left} y=${height - 6}>${points[0].day}</text>
      <text x=${width - pad.right} y=${height - 6} text-anchor="end">${points[points.length - 1].day}</text>
    </svg>
    <figcaption>${title}</figcaption>
  </figure>`;
}

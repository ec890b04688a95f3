// Live charts on the admin "Model & metrics" page: polls /admin/metrics.json (cumulative
// counters) every 2 s and plots the rates between two polls as small SVG line charts.
(() => {
  "use strict";
  const root = document.getElementById("charts");
  if (!root) return;
  const SVG = "http://www.w3.org/2000/svg";
  const POINTS = 60;
  const series = { req: [], lat: [], tok: [] };
  const status = document.getElementById("charts-status");
  let previous = null;

  function draw(id, values, unit) {
    const svg = document.getElementById("c-" + id);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const max = Math.max(1e-9, ...values);
    const slots = Math.max(values.length, 12); // fill the width once there are 12 samples
    const step = 300 / (slots - 1);
    const offset = (slots - values.length) * step;
    const points = values.map((v, i) => `${(offset + i * step).toFixed(1)},${(98 - (v / max) * 92).toFixed(1)}`);
    if (points.length) {
      const area = document.createElementNS(SVG, "polygon");
      area.setAttribute("points", `${offset.toFixed(1)},100 ${points.join(" ")} 300,100`);
      area.setAttribute("class", "area");
      svg.appendChild(area);
    }
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", "line");
    svg.appendChild(line);
    const last = values.length ? values[values.length - 1] : 0;
    document.getElementById(`c-${id}-value`).textContent =
      `${last.toFixed(last < 10 ? 2 : 0)} ${unit} (peak ${max.toFixed(max < 10 ? 2 : 0)})`;
    svg.setAttribute("aria-label", `latest ${last.toFixed(2)} ${unit}`);
  }

  function push(name, value) {
    series[name].push(value);
    if (series[name].length > POINTS) series[name].shift();
  }

  function facts(s) {
    const set = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
    if (s.tokens_per_second_count) {
      set("m-tps", `${(s.tokens_per_second_sum / s.tokens_per_second_count).toFixed(1)} tokens/s (mean)`);
    }
    if (s.ttft_count) set("m-ttft", `${Math.round((1000 * s.ttft_seconds_sum) / s.ttft_count)} ms (mean)`);
    set("m-tokens", `${Math.round(s.prompt_tokens)} prompt · ${Math.round(s.completion_tokens)} generated`);
    const turns = Object.entries(s.turns).map(([k, v]) => `${k}: ${Math.round(v)}`).join(" · ");
    set("m-turns", turns || "none yet");
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.source, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const s = await response.json();
      if (previous) {
        const dt = Math.max(1e-3, s.time - previous.time);
        const dn = s.latency_count - previous.latency_count;
        push("req", (s.requests - previous.requests) / dt);
        push("lat", dn > 0 ? (1000 * (s.latency_seconds_sum - previous.latency_seconds_sum)) / dn : 0);
        push("tok", (s.completion_tokens - previous.completion_tokens) / dt);
        draw("req", series.req, "req/s");
        draw("lat", series.lat, "ms");
        draw("tok", series.tok, "tokens/s");
      }
      previous = s;
      facts(s);
      status.textContent = "";
    } catch (err) {
      status.textContent = `Metrics unavailable (${err.message}); retrying.`;
    }
  }
  poll();
  setInterval(poll, 2000);
})();

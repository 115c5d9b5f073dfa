// Dashboard: polls the public /v1 endpoints and redraws. No build step, no dependencies.
"use strict";

const fmt = new Intl.NumberFormat("en-US");
const short = (hex) => (hex ? hex.slice(0, 10) + "…" : "–");
const money = (micro) => (micro / 1e6).toFixed(2) + " gEUR";

async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function drawChart(intervals, summary) {
  const svg = document.getElementById("price-chart");
  const W = 900, H = 260, L = 60, R = 10, T = 10, B = 30;
  const points = intervals.slice().reverse();
  const tariff = summary ? summary.import_price_micro_per_kwh : 0;
  const feedin = summary ? summary.feed_in_price_micro_per_kwh : 0;
  const prices = points.map((p) => p.clearing_price_micro_per_kwh || 0);
  const maxPrice = Math.max(tariff, ...prices, 1) * 1.1;
  const maxVol = Math.max(...points.map((p) => p.cleared_energy_wh || 0), 1);
  const n = Math.max(points.length, 2);
  const x = (i) => L + (i * (W - L - R)) / (n - 1);
  const y = (v) => H - B - (v * (H - T - B)) / maxPrice;
  let out = "";
  points.forEach((p, i) => {
    const h = ((p.cleared_energy_wh || 0) * (H - T - B)) / maxVol;
    out += `<rect x="${x(i) - 3}" y="${H - B - h}" width="6" height="${h}" fill="#cbd5e1"/>`;
  });
  for (const [v, color] of [[tariff, "#b91c1c"], [feedin, "#1d4ed8"]]) {
    if (v) out += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="${color}" stroke-dasharray="4 3"/>`;
  }
  const priced = points.map((p, i) => [i, p.clearing_price_micro_per_kwh]).filter(([, v]) => v != null);
  if (priced.length) {
    const d = priced.map(([i, v], k) => (k ? "L" : "M") + x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    out += `<path d="${d}" fill="none" stroke="#15803d" stroke-width="2"/>`;
    out += priced.map(([i, v]) => `<circle class="price-point" cx="${x(i)}" cy="${y(v)}" r="2.5" fill="#15803d"/>`).join("");
  }
  for (let k = 0; k <= 4; k++) {
    const v = (maxPrice * k) / 4;
    out += `<text x="${L - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${fmt.format(Math.round(v))}</text>`;
  }
  out += `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#94a3b8"/>`;
  out += `<text x="${L}" y="${H - 8}" font-size="10">µ-units per kWh · ${points.length} intervals</text>`;
  svg.innerHTML = out;
}

function renderTable(intervals) {
  const rows = intervals.slice(0, 24).map((iv) => `<tr>
    <td>${new Date(iv.interval_start_s * 1000).toISOString().slice(0, 16).replace("T", " ")}</td>
    <td>${iv.status}</td><td>${iv.clearing_price_micro_per_kwh == null ? "–" : fmt.format(iv.clearing_price_micro_per_kwh)}</td>
    <td>${fmt.format(iv.cleared_energy_wh)}</td><td><code>${short(iv.orders_root)}</code></td>
    <td><code>${short(iv.result_root)}</code></td><td><code>${short(iv.readings_root)}</code></td>
    <td><code>${short(iv.settle_tx)}</code></td></tr>`);
  document.querySelector("#intervals tbody").innerHTML = rows.join("");
}

function renderChain(chain) {
  const items = [["chain id", chain.chain_id], ["block", chain.block_number], ["market", chain.market],
    ["registry", chain.registry], ["token", chain.token], ["transactions", chain.tx_count],
    ["gas used", fmt.format(chain.gas_used)]];
  document.getElementById("chain").innerHTML = items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

function renderCards(summary, intervals) {
  const settled = intervals.filter((iv) => iv.status === "settled").length;
  document.getElementById("k-settled").textContent = summary ? `${summary.settled_intervals} / ${summary.intervals}` : settled;
  if (!summary) return;
  document.getElementById("k-energy").textContent = fmt.format(summary.energy_traded_wh / 1000) + " kWh";
  document.getElementById("k-price").textContent = summary.mean_local_price_micro_per_kwh == null ? "–"
    : fmt.format(summary.mean_local_price_micro_per_kwh) + " µ/kWh";
  document.getElementById("k-savings").textContent = money(summary.community_savings_micro);
  document.getElementById("k-chain").textContent = `${summary.chain_txs} · ${fmt.format(summary.gas_used)}`;
}

async function refresh() {
  try {
    const [intervals, chain, summary] = await Promise.all([
      getJSON("/v1/intervals?limit=96"), getJSON("/v1/chain"), getJSON("/v1/summary").catch(() => null)]);
    drawChart(intervals, summary);
    renderTable(intervals);
    renderChain(chain);
    renderCards(summary, intervals);
  } catch (err) {
    console.error(err);
  }
}

refresh();
setInterval(refresh, 2000);

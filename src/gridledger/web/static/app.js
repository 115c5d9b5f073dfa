// Dashboard: reads the public /v1 endpoints, listens to /v1/events (server-sent events) and
// falls back to polling when the stream is unavailable. No build step, no dependencies.
"use strict";

const fmt = new Intl.NumberFormat("en-GB");
const esc = (v) => String(v ?? "–").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const short = (hex) => (hex ? esc(hex.slice(0, 10)) + "…" : "–");

// -- human units: amounts arrive in micro-units, energy in Wh, instants in Unix seconds --------
// /v1/display names the currency and the time zone; these defaults hold until it answers.
let display = { currency: "EUR", timezone: "Europe/Berlin", kpis: [] };
const decimals = (d) => new Intl.NumberFormat("en-GB", { minimumFractionDigits: d, maximumFractionDigits: d });
const fmt2 = decimals(2), fmt3 = decimals(3), fmt4 = decimals(4);
const money = (micro) => `${fmt2.format(micro / 1e6)} ${display.currency}`;
const price = (p) => (p == null ? "–" : `${fmt4.format(p / 1e6)} ${display.currency}/kWh`);
const kwh = (wh) => `${(Math.abs(wh) < 1000 ? fmt3 : fmt2).format(wh / 1000)} kWh`;
// Signed money always says which way it went, so a minus sign is never a puzzle.
const net = (micro) => (micro < 0 ? `paid ${money(-micro)}` : `received ${money(micro)}`);
const savings = (micro) => (micro < 0 ? `cost ${money(-micro)} more` : `saved ${money(micro)}`);
let clockFmt = null;
function localTime(s) {
  clockFmt ||= new Intl.DateTimeFormat("en-GB", { timeZone: display.timezone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false, timeZoneName: "short" });
  return clockFmt.format(new Date(s * 1000));
}
const kpi = (key) => display.kpis.find((k) => k.key === key);
const $ = (id) => document.getElementById(id);
const POLL_FAST_MS = 2000, POLL_SLOW_MS = 15000;

let market = null, marketAt = 0, summaryCache = null, lastBookInterval = null;
let token = sessionStorage.getItem("gridledger-token") || "";

async function getJSON(path, headers) {
  const response = await fetch(path, { headers: headers || {} });
  if (!response.ok) {
    let detail = "HTTP " + response.status;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    const error = new Error(path + ": " + detail);
    error.status = response.status;
    throw error;
  }
  return response.json();
}
const authed = () => ({ Authorization: "Bearer " + token });

// -- price chart ------------------------------------------------------------------------
function drawChart(intervals, summary) {
  const svg = $("price-chart");
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
    out += `<text x="${L - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${fmt2.format(v / 1e6)}</text>`;
  }
  out += `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#94a3b8"/>`;
  out += `<text x="${L}" y="${H - 8}" font-size="10">${display.currency} per kWh · ${points.length} intervals</text>`;
  svg.innerHTML = out;
}

function renderTable(intervals) {
  const rows = intervals.slice(0, 24).map((iv) => `<tr>
    <td>${localTime(iv.interval_start_s)}</td>
    <td>${esc(iv.status)}</td><td class="price">${price(iv.clearing_price_micro_per_kwh)}</td>
    <td>${kwh(iv.cleared_energy_wh)}</td><td><code>${short(iv.orders_root)}</code></td>
    <td><code>${short(iv.result_root)}</code></td><td><code>${short(iv.readings_root)}</code></td>
    <td><code>${short(iv.settle_tx)}</code></td></tr>`);
  document.querySelector("#intervals tbody").innerHTML = rows.join("");
}

function renderCards(summary, intervals, chain) {
  const settled = intervals.filter((iv) => iv.status === "settled");
  if (!summary) {
    $("k-settled").textContent = chain && chain.settled_intervals != null ? chain.settled_intervals : settled.length;
    const energy = settled.reduce((n, iv) => n + iv.cleared_energy_wh, 0);
    $("k-energy").textContent = kwh(energy);
    const last = intervals.find((iv) => iv.clearing_price_micro_per_kwh != null);
    $("k-price").textContent = last ? price(last.clearing_price_micro_per_kwh) + " (last)" : "–";
    if (chain) $("k-chain").textContent = `${chain.tx_count} · ${fmt.format(chain.gas_used)}`;
    return;
  }
  $("k-settled").textContent = `${summary.settled_intervals} / ${summary.intervals}`;
  $("k-energy").textContent = kwh(summary.energy_traded_wh);
  $("k-price").textContent = price(summary.mean_local_price_micro_per_kwh);
  $("k-savings").textContent = savings(summary.community_savings_micro);
  const explained = kpi("community_savings_micro");
  if (explained) $("k-savings-why").textContent = explained.explanation;
  $("k-chain").textContent = `${summary.chain_txs} · ${fmt.format(summary.gas_used)}`;
}

// -- chain explorer ---------------------------------------------------------------------
function renderChain(chain) {
  const items = [["chain id", chain.chain_id], ["block", chain.block_number], ["market", chain.market],
    ["registry", chain.registry], ["token", chain.token], ["transactions", chain.tx_count],
    ["gas used", fmt.format(chain.gas_used)]];
  if (chain.settled_intervals != null) items.push(["committed · settled", `${chain.committed_intervals} · ${chain.settled_intervals}`]);
  $("chain").innerHTML = items.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("");
}

function renderEvents(events) {
  const rows = events.slice(0, 15).map((e) => {
    const a = e.args || {};
    let what = a.intervalStartS != null ? localTime(a.intervalStartS) : short(a.account || a.meter || "");
    // the netting-root path: an interval settled by its root, each account's claim of a period
    if (e.name === "IntervalSettledByRoot") what += ` · root #${esc(a.rootSeq)} · ${esc(a.accountCount)} accounts`;
    if (e.name === "Claimed") what += ` · claim of root #${esc(a.rootSeq)}: ${net(Number(a.deltaMicro))}`;
    return `<tr><td>${esc(e.block_number)}</td><td>${esc(e.name)}</td><td>${what}</td><td><code>${short(e.tx_hash)}</code></td></tr>`;
  });
  document.querySelector("#chain-events tbody").innerHTML = rows.join("");
}

// -- market clock and order book ----------------------------------------------------------
function renderClock() {
  if (!market) return;
  $("clock-section").hidden = false;
  const elapsedWall = (Date.now() - marketAt) / 1000;
  const left = Math.max(market.gate_closure_in_s - elapsedWall, 0);
  $("open-interval").textContent = localTime(market.open_interval_start_s);
  $("countdown").textContent = left >= 60 ? `${Math.floor(left / 60)} min ${Math.floor(left % 60)} s` : `${left.toFixed(1)} s`;
  $("market-time").textContent = localTime(market.market_time_s + elapsedWall * market.speed);
  $("speed").textContent = market.speed === 1 ? "real time" : `×${market.speed}`;
}

function drawBook(book, clearingPrice) {
  const svg = $("book-chart");
  const W = 440, H = 220, L = 50, B = 24, T = 8;
  const cumulative = (levels) => { let sum = 0; return levels.map((l) => [l.price_micro_per_kwh, (sum += l.energy_wh)]); };
  const bids = cumulative(book.bids), asks = cumulative(book.asks);
  const prices = [...bids, ...asks].map(([p]) => p);
  const maxE = Math.max(...[...bids, ...asks].map(([, e]) => e), 1);
  const spread = Math.max(...prices, 1) - Math.min(...prices, 0);
  const minP = Math.max(Math.min(...prices, 0) - spread * 0.1, 0), maxP = Math.max(...prices, 1) + spread * 0.1;
  const x = (p) => L + ((p - minP) * (W - L - 10)) / Math.max(maxP - minP, 1);
  const y = (e) => H - B - (e * (H - B - T)) / maxE;
  // a step curve: cumulative energy offered up to each price level
  const step = (pts, color, cls) => pts.length ? `<path class="${cls}" d="${pts.map(([p, e], i) =>
    (i ? `L${x(p)},${y(pts[i - 1][1])} ` : `M${x(p)},${y(0)} `) + `L${x(p)},${y(e)}`).join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>` : "";
  let out = step(bids, "#15803d", "depth-bids") + step(asks, "#b91c1c", "depth-asks");
  if (clearingPrice != null && prices.length) {
    out += `<line x1="${x(clearingPrice)}" x2="${x(clearingPrice)}" y1="${T}" y2="${H - B}" stroke="#1d2733" stroke-dasharray="3 3"><title>clearing price ${price(clearingPrice)}</title></line>`;
  }
  out += `<text x="${L}" y="${H - 6}" font-size="10">price ${price(minP)} – ${price(maxP)} · up to ${kwh(maxE)}</text>`;
  if (!prices.length) out += `<text x="${W / 2}" y="${H / 2}" font-size="12" text-anchor="middle">no orders in this interval</text>`;
  svg.innerHTML = out;
  $("book-levels").textContent = `${book.bids.length} bid and ${book.asks.length} ask price levels`;
}

async function refreshBook(intervals) {
  const latest = intervals.find((iv) => iv.status !== "open");
  if (!latest || latest.interval_start_s === lastBookInterval) return;
  try {
    drawBook(await getJSON(`/v1/intervals/${latest.interval_start_s}/depth`), latest.clearing_price_micro_per_kwh);
    lastBookInterval = latest.interval_start_s;
    $("book-interval").textContent = localTime(latest.interval_start_s);
  } catch (_) { /* not closed yet: try again on the next refresh */ }
}

// -- grid map: geometry once, then each interval's loading and voltage ------------------------
let gridGeometry = null, gridInterval = null, lastGridKey = null;
function loadingColour(percent) {
  if (percent == null) return "#94a3b8";
  return percent > 90 ? "#dc2626" : percent > 60 ? "#f59e0b" : "#16a34a";
}
function voltageColour(pu) {
  if (pu == null) return "#1d2733";
  const off = Math.abs(pu - 1);
  return off > 0.1 ? "#dc2626" : off > 0.05 ? "#f59e0b" : "#16a34a";
}

let gridBusy = false;
async function refreshGrid() {
  if (gridBusy) return;  // a power flow is on its way; the next event asks again
  gridBusy = true;
  try { await drawGrid(); } finally { gridBusy = false; }
}

async function drawGrid() {
  try {
    gridGeometry ||= await getJSON("/v1/grid");
    $("grid-code").textContent = gridGeometry.grid_code;
  } catch (err) {
    $("grid-map").innerHTML = `<text x="300" y="200" text-anchor="middle" font-size="13">grid map unavailable</text>`;
    return;
  }
  if (!$("grid-map").childElementCount) paintGrid({ lines: {}, buses: {}, interval_start_s: null });
  let state = null;
  try { state = await getJSON("/v1/grid/state"); } catch (_) { return; /* no readings yet: neutral colours */ }
  await displayReady;  // the map names the interval in the configured time zone
  if (state.interval_start_s !== gridInterval) paintGrid(state);
}

function paintGrid(state) {
  gridInterval = state.interval_start_s;
  const at = Object.fromEntries(gridGeometry.buses.map((b) => [b.bus, b]));
  let out = gridGeometry.lines.filter((l) => at[l.from_bus] && at[l.to_bus]).map((l) => {
    const loading = state.lines[l.line] ?? l.loading_percent ?? null;
    return `<line class="grid-line" data-loading="${loading ?? ""}" x1="${at[l.from_bus].x}" y1="${at[l.from_bus].y}" x2="${at[l.to_bus].x}" y2="${at[l.to_bus].y}" stroke="${loadingColour(loading)}" stroke-width="4"><title>${esc(l.name)}: ${loading == null ? "no power flow yet" : loading.toFixed(1) + " % loaded"}</title></line>`;
  }).join("");
  out += gridGeometry.buses.map((b) => {
    const pu = state.buses[b.bus] ?? null;
    return `<circle class="grid-bus" data-vm-pu="${pu ?? ""}" cx="${b.x}" cy="${b.y}" r="5" fill="${voltageColour(pu)}"><title>${esc(b.name)}${pu == null ? "" : ": " + fmt3.format(pu) + " pu (" + fmt2.format(pu * 230) + " V phase)"}</title></circle>`;
  }).join("");
  $("grid-map").innerHTML = out;
  $("grid-when").textContent = gridInterval == null ? "no readings yet" : "metered " + localTime(gridInterval);
}

// -- my account ---------------------------------------------------------------------------
let statementCache = null;

async function refreshAccount() {
  if (!token) { $("account-body").hidden = true; return; }
  try {
    const me = await getJSON("/v1/auth/me", authed());
    const st = await getJSON(`/v1/participants/${me.address}/statement`, authed());
    statementCache = st;
    $("account-error").textContent = "";
    $("account-body").hidden = false;
    $("account-facts").innerHTML = [["address", me.address], ["role", me.role],
      ["escrow (money held for your trades)", money(st.escrow_micro)], ["all settlements so far", net(st.net_settled_micro)],
      ["token expires", localTime(me.expires_at_s)]]
      .map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("");
    document.querySelector("#my-trades tbody").innerHTML = st.trades.slice(0, 20).map((t) => {
      const side = t.buyer === me.address ? "buy" : "sell";
      return `<tr><td>${localTime(t.interval_start_s)}</td><td>${side === "buy" ? "bought" : "sold"}</td><td>${kwh(t.energy_wh)}</td><td>${price(t.price_micro_per_kwh)}</td><td>${side === "buy" ? "paid " + money(t.fee_micro) : "–"}</td></tr>`;
    }).join("");
    renderMyEnergy(st.readings);
    renderMyBill(st, me.address);
    renderConsents(me.address);
    const byInterval = {};
    for (const s of st.settlements) byInterval[s.interval_start_s] = { delta: s.delta_micro, readings: [] };
    for (const r of st.readings) (byInterval[r.intervalStartS] ||= { delta: null, readings: [] }).readings.push(r);
    document.querySelector("#my-statement tbody").innerHTML = Object.keys(byInterval).sort().reverse().slice(0, 20).map((start) => {
      const row = byInterval[start];
      const energy = row.readings.map((r) => `${kwh(r.importedWh)} in / ${kwh(r.exportedWh)} out`).join(", ") || "–";
      return `<tr><td>${localTime(Number(start))}</td><td>${row.delta == null ? "–" : net(row.delta)}</td><td>${energy}</td><td class="proof" data-interval="${start}">–</td></tr>`;
    }).join("");
  } catch (err) {
    $("account-body").hidden = true;
    $("account-error").textContent = err.status === 401 ? "The token is invalid or expired: sign in again." : err.message;
  }
}

// Consents I gave or received, as the Consent contract holds them (status from the node's clock).
async function renderConsents(address) {
  const body = document.querySelector("#my-consents tbody");
  if (!body) return;
  try {
    const grants = await getJSON("/v1/consents", authed());
    body.innerHTML = grants.map((g) => {
      const given = g.owner === address;
      const status = g.status === "revoked" ? `revoked ${localTime(g.revoked_at_s)}` : g.status;
      return `<tr data-grant="${esc(g.grant_id)}" data-status="${esc(g.status)}"><td>#${esc(g.grant_id)}</td>` +
        `<td>${given ? "given" : "received"}</td><td><code title="${esc(given ? g.grantee : g.owner)}">${short(given ? g.grantee : g.owner)}</code></td>` +
        `<td>${esc(g.scopes.join(", "))}</td><td>${localTime(g.data_from_s)} – ${localTime(g.data_to_s)}</td>` +
        `<td>${localTime(g.expires_at_s)}</td><td class="status">${esc(status)}</td></tr>`;
    }).join("") || `<tr><td colspan="7">No consents: nobody but you (and the market's operator and auditors) reads your data.</td></tr>`;
  } catch (err) {
    body.innerHTML = `<tr><td colspan="7" class="error">${esc(err.message)}</td></tr>`;
  }
}

// My energy: what my meters measured, per interval (import up, export down).
function renderMyEnergy(readings) {
  const imported = readings.reduce((n, r) => n + r.importedWh, 0);
  const exported = readings.reduce((n, r) => n + r.exportedWh, 0);
  $("my-energy-facts").innerHTML = [["from the grid and neighbours", kwh(imported)], ["fed in", kwh(exported)],
    ["intervals metered", readings.length]].map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("");
  const points = readings.slice().sort((a, b) => a.intervalStartS - b.intervalStartS);
  const W = 600, H = 160, mid = H / 2, max = Math.max(...points.map((r) => Math.max(r.importedWh, r.exportedWh)), 1);
  const w = Math.max((W - 20) / Math.max(points.length, 1) - 1, 1);
  $("my-energy-chart").innerHTML = points.map((r, i) => {
    const x = 10 + i * (w + 1), up = (r.importedWh * (mid - 6)) / max, down = (r.exportedWh * (mid - 6)) / max;
    const tip = `<title>${localTime(r.intervalStartS)}: ${kwh(r.importedWh)} in, ${kwh(r.exportedWh)} out</title>`;
    return `<rect class="energy-in" x="${x}" y="${mid - up}" width="${w}" height="${up}" fill="#b91c1c">${tip}</rect>` +
      `<rect class="energy-out" x="${x}" y="${mid}" width="${w}" height="${down}" fill="#15803d">${tip}</rect>`;
  }).join("") + `<line x1="0" x2="${W}" y1="${mid}" y2="${mid}" stroke="#94a3b8"/>`;
}

// My bill: what I paid and received, each with its direction in words.
function renderMyBill(st, me) {
  let bought = 0, sold = 0, fees = 0, boughtWh = 0, soldWh = 0;
  for (const t of st.trades) {
    const amount = Math.floor((t.energy_wh * t.price_micro_per_kwh) / 1000);
    if (t.buyer === me) { bought += amount; fees += t.fee_micro || 0; boughtWh += t.energy_wh; } else { sold += amount; soldWh += t.energy_wh; }
  }
  $("my-bill").innerHTML = [
    [`energy bought from neighbours (${kwh(boughtWh)})`, "paid " + money(bought)],
    [`energy sold to neighbours (${kwh(soldWh)})`, "received " + money(sold)],
    ["grid fees for local energy", "paid " + money(fees)],
    ["all settlements, grid supplier included", net(st.net_settled_micro)],
    ["escrow left for trading", money(st.escrow_micro)],
  ].map(([k, v]) => `<tr><th>${esc(k)}</th><td class="bill-amount">${esc(v)}</td></tr>`).join("");
}

// Recompute each reading's leaf here, fetch its proof, and check it against the root the
// Market contract holds (read through /v1/chain/intervals), not against the node's store.
async function verifyStatement() {
  const result = $("verify-result");
  if (!statementCache) return;
  result.textContent = "verifying…";
  result.className = "";
  const { readingLeaf, verifyProof } = window.gridledgerProofs;
  let ok = 0, failed = 0, pending = 0;
  const roots = {};
  for (const reading of statementCache.readings) {
    const start = reading.intervalStartS;
    const cell = document.querySelector(`.proof[data-interval="${start}"]`);
    try {
      roots[start] ||= await getJSON(`/v1/chain/intervals/${start}`);
      if (!roots[start].settled) { pending++; if (cell) cell.textContent = "not settled yet"; continue; }
      const proof = await getJSON(`/v1/readings/${reading.id}/proof`, authed());
      const good = verifyProof(readingLeaf(reading, proof.salt), proof.proof, roots[start].readings_root);
      good ? ok++ : failed++;
      if (cell) { cell.textContent = good ? "✓ on-chain root" : "✗ mismatch"; cell.className = "proof " + (good ? "ok-text" : "bad-text"); }
    } catch (err) {
      pending++;
      if (cell) cell.textContent = err.status === 409 ? "not anchored yet" : "unavailable";
    }
  }
  result.textContent = failed ? `✗ ${failed} proof(s) do not match the chain` : `✓ ${ok} reading proof(s) verified against the chain` + (pending ? ` (${pending} pending)` : "");
  result.className = failed ? "bad-text" : "ok-text";
  result.dataset.verified = String(ok);
  result.dataset.failed = String(failed);
}

// -- alerts -----------------------------------------------------------------------------
// One (subject, day) of /v1/anomalies: what, who, the detectors' votes against the quorum, the
// on-chain status and the evidence hashes (the signed files are kept by the detectors).
function alertItem(a) {
  const short = (h) => `${String(h).slice(0, 10)}…`;
  const day = new Date(a.window_start_s * 1000).toISOString().slice(0, 10);
  const what = [a.kind || "anomaly", ...(a.rules || [])].join(" ");
  const status = a.status === "confirmed" ? "confirmed on-chain" : "flagged";
  const suspended = a.suspended ? `, suspended ${short(a.suspended)}` : "";
  const hashes = (a.evidence_hashes || []).map((h) => `<code title="${esc(h)}">${esc(short(h))}</code>`);
  return `<li data-subject="${esc(a.subject)}" data-status="${esc(a.status)}">` +
    `<b class="${a.status === "confirmed" ? "bad-text" : ""}">${esc(status)}</b> ${esc(what)} · ` +
    `<code title="${esc(a.subject)}">${esc(short(a.subject))}</code> · ${esc(day)} · ` +
    `${esc(a.votes)}/${esc(a.quorum)} detectors${esc(suspended)}` +
    (hashes.length ? ` · evidence ${hashes.join(" ")}` : "") + `</li>`;
}

async function refreshAlerts() {
  try {
    const alerts = (await getJSON("/v1/anomalies?limit=20")).items;
    $("alerts").innerHTML = alerts.length ? alerts.slice(0, 20).map(alertItem).join("")
      : `<li class="muted">no alerts</li>`;
  } catch (_) { /* keep the last list */ }
}

// -- refresh loop: SSE first, polling as the fallback ------------------------------------------
async function refresh() {
  try {
    // fetched while /v1/display is still on its way, rendered once it has answered
    const [intervals, chain, summary, status] = await Promise.all([
      getJSON("/v1/intervals?limit=96").then((page) => page.items), getJSON("/v1/chain"),
      summaryCache ? Promise.resolve(summaryCache) : getJSON("/v1/summary").catch(() => null),
      getJSON("/v1/market").catch(() => null), displayReady]);
    if (summary) summaryCache = summary;
    if (status) { market = status; marketAt = Date.now(); }
    drawChart(intervals, summary || status);
    renderTable(intervals);
    renderChain(chain);
    renderCards(summary, intervals, chain);
    refreshBook(intervals);
    const newest = intervals.find((iv) => iv.status !== "open");
    const gridKey = newest ? `${newest.interval_start_s}:${newest.status}` : "";
    if (gridKey !== lastGridKey) { lastGridKey = gridKey; refreshGrid(); }
    getJSON("/v1/chain/events?limit=15").then((page) => renderEvents(page.items)).catch(() => {});
  } catch (err) {
    console.error(err);
  }
}

let pollTimer = null;
function poll(ms) {
  clearInterval(pollTimer);
  pollTimer = setInterval(refresh, ms);
}

function connectEvents() {
  if (!window.EventSource) { poll(POLL_FAST_MS); return; }
  const source = new EventSource("/v1/events");
  const status = $("live-status");
  source.addEventListener("hello", (e) => {
    market = JSON.parse(e.data); marketAt = Date.now();
    status.dataset.mode = "live"; status.textContent = "live (server-sent events)";
    poll(POLL_SLOW_MS);
  });
  for (const kind of ["gate_closed", "settled"]) {
    source.addEventListener(kind, () => { refresh(); refreshGrid(); if (kind === "settled") refreshAlerts(); });
  }
  source.addEventListener("orders", () => getJSON("/v1/market").then((m) => { market = m; marketAt = Date.now(); }).catch(() => {}));
  source.onerror = () => {
    status.dataset.mode = "polling"; status.textContent = "polling (no event stream)";
    poll(POLL_FAST_MS);
    if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, 5000);
  };
}

function wireAccount() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token-input").value.trim();
    sessionStorage.setItem("gridledger-token", token);
    refreshAccount();
  });
  $("sign-out").addEventListener("click", () => {
    token = ""; sessionStorage.removeItem("gridledger-token"); $("token-input").value = ""; refreshAccount();
  });
  $("verify").addEventListener("click", verifyStatement);
}

// Resolves once /v1/display has answered (or failed: the defaults hold); rendering waits for it.
let displayReady = Promise.resolve();
async function loadDisplay() {
  try { display = await getJSON("/v1/display"); clockFmt = null; } catch (_) { /* keep the defaults */ }
  document.querySelectorAll("[data-unit=currency]").forEach((el) => { el.textContent = display.currency; });
  document.querySelectorAll("[data-unit=timezone]").forEach((el) => { el.textContent = display.timezone; });
}

// Two pages share this script: the market (index.html) and a household's own page.
const PAGE = document.body.dataset.page || "market";
if (PAGE === "household") {
  wireAccount();
  loadDisplay().then(refreshAccount);
  setInterval(() => { if (token) refreshAccount(); }, POLL_SLOW_MS);
} else {
  displayReady = loadDisplay();
  refresh();
  refreshGrid();
  refreshAlerts();
  poll(POLL_FAST_MS);
  connectEvents();
  setInterval(renderClock, 250);
}

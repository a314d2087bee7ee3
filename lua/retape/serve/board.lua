-- retape.serve.board — the live board of `retape serve` (GET /): the 8
-- lanes and Trade By Day / By P&L / History in the report's look (its CSS,
-- retape.report.template), kept current by server-sent events: each event
-- (a batch of webhooks committed) makes the page read /live/board again.
-- window.BOARD holds what is shown (the browser test reads it).
local template = require "retape.report.template"

local M = {}

local BODY = [==[
<header><h1>retape live</h1><div class="sub" id="sub">connecting…</div></header>
<main>
<div class="panel"><h2>Lanes <span class="mute" id="trades-n"></span></h2><div class="board" id="board"></div>
<p class="mute">Each chip shows the time (ET) of its ticker's last receipt.</p></div>
<div class="panel"><h2>Trade By Day</h2><div id="t-day"></div></div>
<div class="grid2"><div class="panel"><h2>Trade By P&amp;L</h2><div id="t-pnl"></div></div>
<div class="panel"><h2>Trade History</h2><div id="t-history" style="overflow-x:auto"></div></div></div>
</main>
]==]

local JS = [==[
"use strict";
const $ = s => document.querySelector(s);
const esc = s => String(s == null ? "" : s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const LANE_COLORS = ["#9aa5b8", "#e3b341", "#2f9e44", "#1c7ed6", "#5f3dc4", "#f08c00", "#e03131", "#495057"];
const key = new URLSearchParams(location.search).get("key");
const q = key ? "?key=" + encodeURIComponent(key) : "";
const ny = new Intl.DateTimeFormat("en-US", {timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
const B = window.BOARD = {seq: 0, events: 0, loaded: 0, lanes: []};
function table(el, rows) {
  if (!rows.length) { el.innerHTML = '<p class="mute">none yet</p>'; return; }
  const cols = Object.keys(rows[0]).filter(k => typeof rows[0][k] !== "object" || rows[0][k] === null);
  el.innerHTML = "<table><thead><tr>" + cols.map(c => `<th>${esc(c)}</th>`).join("") + "</tr></thead><tbody>" +
    rows.map(r => "<tr>" + cols.map(c => `<td>${esc(typeof r[c] === "number" && !Number.isInteger(r[c]) ? r[c].toFixed(2) : r[c])}</td>`).join("") + "</tr>").join("") +
    "</tbody></table>";
}
function render(d) {
  B.lanes = d.lanes.map(l => ({lane: l.lane, title: l.title, tickers: l.tickers.map(t => t.ticker)}));
  $("#board").innerHTML = d.lanes.map((l, i) => `<div class="lane" data-lane="${esc(l.lane)}" style="--c:${LANE_COLORS[i]}"><h3><span>${esc(l.title)}</span><span class="cnt">${l.tickers.length}</span></h3>` +
    l.tickers.map(t => `<span class="chip" data-t="${esc(t.ticker)}"${t.badge === "defend" ? ' data-badge="defend"' : ""}>${esc(t.ticker)}${t.badge === "defend" ? " 🛡" : ""} <small class="mute">${t.last == null ? "" : ny.format(new Date(t.last))}</small></span>`).join("") + `</div>`).join("");
  $("#trades-n").textContent = `(${d.trades} trades)`;
  table($("#t-day"), d.by_day.map(r => ({day: r.day, entries: r.entries, trims: r.trims, exits: r.exits, wins: r.wins, losses: r.losses, flat: r.flat, realized: r.realized})));
  table($("#t-pnl"), d.by_pnl);
  table($("#t-history"), d.history.slice(0, 200));
}
let loading = null, again = false;
async function load() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    do {
      again = false;
      const res = await fetch("/live/board" + q, {cache: "no-store"});
      if (res.ok) { render(await res.json()); B.loaded++; }
    } while (again);
    loading = null;
  })();
  return loading;
}
const es = new EventSource("/live/events" + q);
es.onopen = () => { $("#sub").textContent = "live: waiting for receipts"; load(); };
es.onmessage = e => {
  const ev = JSON.parse(e.data);
  B.seq = ev.seq; B.events++;
  $("#sub").textContent = `live: last batch ${ny.format(new Date(ev.at))} ET, ${ev.receipts} receipt(s)`;
  load();
};
es.onerror = () => { $("#sub").textContent = "live: reconnecting…"; };
load();
]==]

-- page() -> the board's HTML (one page; its data comes from /live/board).
function M.page()
  return table.concat {
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n",
    "<title>retape live</title>\n<style>", template.css, "</style></head>\n<body>\n", BODY,
    "<script>", JS, "</script>\n</body></html>\n",
  }
end

return M

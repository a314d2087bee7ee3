-- retape.report.layout — the report page's CSS and its HTML skeleton (the
-- pages, tabs and panels the script fills in).  retape serve's live board
-- shares the CSS.  Lent by retape.report.template.
local M = {}

M.css = [==[
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#6b7385;--line:#e3e6ec;--win:#1a8f4c;--loss:#c8372d;--acc:#2f5fd0;--b:#8a55d8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{background:#161b26;color:#fff;padding:14px 24px 0}
header h1{margin:0;font-size:18px;font-weight:600}
header .sub{color:#aab2c5;font-size:12px;margin:2px 0 10px}
nav{display:flex;gap:2px}
nav button{background:none;border:0;color:#aab2c5;padding:8px 16px;font:inherit;cursor:pointer;border-bottom:3px solid transparent}
nav button.on{color:#fff;border-bottom-color:#6d93ff}
main{padding:18px 24px;max-width:1880px}
section.page{display:none}section.page.on{display:block}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin-bottom:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card{min-width:0}
.card .v{white-space:nowrap;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{font-size:12px;color:var(--mute);overflow-wrap:anywhere}
.pos{color:var(--win)}.neg{color:var(--loss)}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin-bottom:14px}
.panel h2{font-size:14px;margin:0 0 8px;font-weight:600}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.grid4{display:grid;grid-template-columns:repeat(4,1fr);gap:14px}
.grid21{display:grid;grid-template-columns:2fr 1fr;gap:14px}
.grid21.hist{grid-template-columns:1.8fr 1fr}
.grid2>*,.grid4>*,.grid21>*{min-width:0}
@media(max-width:1100px){.grid2,.grid4,.grid21{grid-template-columns:1fr}}
svg text{font-size:11px;fill:var(--mute)}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{font-weight:600;color:var(--mute);font-size:12px;cursor:pointer;user-select:none;position:sticky;top:0;background:var(--card)}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
td.n,th.n{text-align:right}
td.w{white-space:normal;overflow-wrap:anywhere;min-width:110px;max-width:220px}
tbody tr:hover{background:#f0f4ff}
tr.click{cursor:pointer}
.scroll{max-height:520px;overflow:auto}
.small .scroll{max-height:260px}
.tools{display:flex;gap:10px;align-items:center;margin-bottom:8px;flex-wrap:wrap}
input[type=search]{padding:5px 8px;border:1px solid var(--line);border-radius:6px;font:inherit;min-width:220px}
.mute{color:var(--mute)}
.board{display:grid;grid-template-columns:repeat(8,1fr);gap:8px}
.lane{background:#f2f4f8;border-radius:8px;padding:8px;min-height:120px;max-height:380px;overflow:auto}
.lane h3{margin:0 0 6px;font-size:12px;font-weight:600;display:flex;justify-content:space-between}
.lane h3 .cnt{color:var(--mute);font-weight:400}
.chip{display:inline-block;background:#fff;border:1px solid var(--line);border-left:4px solid var(--c);border-radius:4px;padding:1px 5px;margin:2px;font-size:12px;cursor:pointer}
.chip.moved{box-shadow:0 0 0 2px #ffd34d}
.slider{display:flex;align-items:center;gap:12px;margin-bottom:10px}
.slider input{flex:1}
.slider .when{font-weight:600;min-width:170px;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
#strip-wrap{overflow:auto;max-height:560px;border:1px solid var(--line);border-radius:6px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.badge.complete{background:#dff3e6;color:var(--win)}.badge.interrupted,.badge.stale{background:#fde6e3;color:var(--loss)}.badge.unknown{background:#eceef2;color:var(--mute)}
.kv td:first-child{color:var(--mute);width:200px}
#detail table{font-size:12px}
#detail{position:fixed;right:18px;bottom:18px;width:680px;max-height:60vh;overflow:auto;background:#fff;border:1px solid var(--line);border-radius:10px;box-shadow:0 10px 30px rgba(0,0,0,.18);padding:12px 14px;display:none}
#detail .x{float:right;cursor:pointer;border:0;background:none;font-size:18px}
.warn{background:#fff5d6;border:1px solid #f0d27a;border-radius:6px;padding:8px 10px;margin-bottom:10px}
.more{margin-top:6px}
.stats{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:6px 24px}
.stats h3{font-size:12px;color:var(--mute);text-transform:uppercase;letter-spacing:.04em;margin:4px 0}
.stats table td{padding:3px 6px}
.stats td.n{font-weight:600}
@media(max-width:1100px){.stats{grid-template-columns:1fr}}
.gloss dt{font-weight:600;font-family:ui-monospace,monospace;font-size:12px;margin-top:6px}
.gloss dd{margin:0 0 0 14px;color:var(--ink);font-size:13px}
.empty{background:#fff5d6;border:1px solid #f0d27a;border-radius:8px;padding:10px 14px;margin-bottom:14px}
select{font:inherit;padding:4px 6px;border:1px solid var(--line);border-radius:6px}
]==]

M.body = [==[
<header><h1>retape report</h1><div class="sub" id="sub"></div><nav></nav></header>
<main>
<section class="page" id="page-summary">
  <div id="empty"></div>
  <div class="cards" id="cards"></div>
  <div class="panel"><h2>Statistics</h2><div class="stats" id="stats"></div><p class="mute" id="capital"></p></div>
  <div class="grid21"><div class="panel"><h2>Equity curve (realized P&amp;L, net of costs; trading time)</h2><div id="equity"></div>
  <h2>Underwater (drawdown from the running peak)</h2><div id="underwater"></div></div>
  <div class="panel"><h2>Realized P&amp;L per day</h2><div id="daybars"></div></div></div>
  <div class="grid2 small">
    <div class="panel"><h2>Daily returns</h2><div id="t-daily"></div></div>
    <div class="panel"><h2>Monthly returns</h2><div id="t-monthly"></div></div>
  </div>
  <div class="grid2 small">
    <div class="panel"><h2>By exit reason</h2><div id="bd-exit_reason"></div></div>
    <div class="panel"><h2>By enter rule</h2><div id="bd-enter_rule"></div></div>
    <div class="panel"><h2>By direction</h2><div id="bd-direction"></div></div>
    <div class="panel"><h2>By ticker</h2><div id="bd-ticker"></div></div>
  </div>
  <div class="panel"><h2>Glossary (from the ruleset)</h2><div class="grid2" id="glossary"></div></div>
</section>
<section class="page" id="page-lanes">
  <div class="panel"><div class="slider"><span class="when" id="when"></span><input type="range" id="bucket" min="0" step="1" aria-label="bucket"><span class="mute">← → keys</span></div>
  <div class="board" id="board"></div>
  <p class="mute">Defend badges (🛡) as they were at that bucket; chips outlined in yellow moved since the previous position of the slider.</p></div>
  <div class="panel"><h2 id="strip-title">Lanes of each ticker</h2>
  <div class="tools"><input type="search" id="strip-filter" placeholder="tickers (e.g. NVDA AMD)"><span class="legend" id="legend"></span></div>
  <div id="strip-wrap" style="position:relative"><canvas id="strip"></canvas><div id="cursor" style="position:absolute;top:0;width:2px;background:#111;opacity:.6;pointer-events:none"></div></div></div>
</section>
<section class="page" id="page-trades">
  <div class="panel"><h2>Trades (click a row for its history and its price chart)</h2><div id="t-trades"></div></div>
  <div class="panel"><h2>Price and trades of <select id="px-ticker" aria-label="ticker"></select></h2><div id="price"></div></div>
  <div class="panel"><h2>Trade By Day</h2><div id="t-day"></div></div>
  <div class="grid21 hist"><div class="panel"><h2>Trade History</h2><div id="t-history"></div></div>
  <div class="panel"><h2>Trade By P&amp;L</h2><div id="t-pnl"></div></div></div>
</section>
<section class="page" id="page-run">
  <div class="panel"><h2>Run manifest</h2><div id="manifest"></div></div>
  <div class="panel"><h2>Runs recorded in the store</h2><div id="runs"></div></div>
</section>
<section class="page" id="page-compare">
  <div id="vs-warn"></div>
  <div class="panel"><h2>Equity curves</h2><div id="vs-equity"></div></div>
  <div class="panel"><h2>Totals</h2><div id="vs-totals"></div></div>
  <div class="panel"><h2>Trades added, removed, changed: <select id="vs-pick" aria-label="store"></select></h2><div id="vs-trades"></div></div>
  <div class="panel"><h2>Lanes per ticker</h2><div id="vs-lanes"></div></div>
  <div class="panel"><h2>Manifests</h2><div id="vs-manifests"></div></div>
</section>
</main>
<div id="detail"></div>
]==]

return M

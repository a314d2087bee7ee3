-- retape.report.template — the report page: CSS and JavaScript inlined into
-- one HTML file (no network, no CDN; it opens from disk).  The data model
-- (retape.report.data) arrives as JSON in <script id="report-data">; the
-- script renders every page from it.  Pages: Summary, Lanes, Trades, Run,
-- and Compare with --vs.  Charts are inline SVG; the swimlane strip is a
-- canvas (500 tickers x 400 buckets draw in a few milliseconds).
-- The CSS and the HTML skeleton are retape.report.layout; the script is
-- retape.report.script_kit (data, tabs, charts, tables) followed by
-- retape.report.script_pages (every page).
local layout = require "retape.report.layout"

local M = {}

M.css, M.body = layout.css, layout.body
M.js = (require "retape.report.script_kit") .. (require "retape.report.script_pages")

return M

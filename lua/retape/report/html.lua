-- retape.report.html — turns the report's data model into one
-- self-contained HTML page (inline CSS, JavaScript and SVG; no network).
local json = require "retape.json"
local template = require "retape.report.template"

local M = {}

-- render(model) -> the HTML text.  The model is embedded as JSON in a
-- <script type="application/json"> block; "</" is escaped so no string in
-- the data can close the block.
function M.render(model)
  local data = json.encode(model):gsub("</", "<\\/")
  return table.concat {
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    "<title>retape report</title>\n<style>", template.css, "</style></head>\n<body>\n", template.body,
    "<script type=\"application/json\" id=\"report-data\">", data, "</script>\n<script>", template.js, "</script>\n</body></html>\n",
  }
end

return M

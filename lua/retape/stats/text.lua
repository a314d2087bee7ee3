-- retape.stats.text — the figures of retape.stats.compute as a person
-- reads them: `retape stats`'s lines, money with thousands separators,
-- durations ("3 d 4 h").
local M = {}

local function money(x)
  if x == nil then return "-" end
  local s = string.format("%.2f", math.abs(x))
  local int, frac = s:match("^(%d+)(%.%d+)$")
  int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (x < 0 and "-" or "") .. int .. frac
end
local function pct(x) return x == nil and "-" or string.format("%.2f%%", x * 100) end
local function num(x) return x == nil and "-" or string.format("%.2f", x) end

-- text(s) -> the figures of compute() as the lines `retape stats` prints.
function M.text(s)
  local c = s.capital
  local L = {}
  local function row(label, value) L[#L + 1] = string.format("  %-26s %s", label, value) end
  L[#L + 1] = string.format("capital: %s start, sizing %s, fees %s/order + %s/share + %s bps, slippage %s bps",
    money(c.start), c.sizing == "equity_pct" and (string.format("%g", c.equity_pct) .. " % of equity") or "the ruleset's own",
    money(c.fee_per_order), string.format("%g", c.fee_per_share), string.format("%g", c.fee_bps), string.format("%g", c.slippage_bps))
  L[#L + 1] = "returns"
  row("net P&L", money(s.net_pnl) .. "  (realized " .. money(s.realized) .. ", unrealized " .. money(s.unrealized) .. ")")
  row("return", pct(s.return_pct))
  row("annual return (252 days)", pct(s.annual_return))
  row("fees and commissions", money(s.fees))
  row("best day", s.best_day and (money(s.best_day.pnl) .. "  " .. s.best_day.day) or "-")
  row("worst day", s.worst_day and (money(s.worst_day.pnl) .. "  " .. s.worst_day.day) or "-")
  row("days", tostring(s.days))
  L[#L + 1] = "risk"
  row("max drawdown", money(s.max_drawdown) .. "  (" .. pct(s.max_drawdown_pct) .. ")")
  row("longest drawdown", M.duration(s.max_drawdown_duration_ms))
  row("Sharpe", num(s.sharpe))
  row("Sortino", num(s.sortino))
  row("Calmar", num(s.calmar))
  row("exposure", s.exposure and string.format("%.1f%%", s.exposure * 100) or "-")
  L[#L + 1] = "trades"
  row("trades", string.format("%d  (%d closed: %d won, %d lost, %d flat; %d open)", s.trades, s.closed, s.wins, s.losses, s.flat, s.open))
  row("win rate", string.format("%.1f%%", s.win_rate * 100))
  row("average win / loss", money(s.avg_win) .. " / " .. money(s.avg_loss))
  row("expectancy", money(s.expectancy) .. " per closed trade")
  row("profit factor", num(s.profit_factor))
  row("payoff ratio", num(s.payoff_ratio))
  row("holding time mean / median", M.duration(s.holding_mean_ms) .. " / " .. M.duration(s.holding_median_ms))
  row("best trade", s.best_trade and (money(s.best_trade.pnl) .. "  " .. s.best_trade.id) or "-")
  row("worst trade", s.worst_trade and (money(s.worst_trade.pnl) .. "  " .. s.worst_trade.id) or "-")
  row("longest losing streak", tostring(s.max_losing_streak))
  return table.concat(L, "\n")
end

-- "3 d 4 h", "2 h 05 m", "12 m": a duration a person reads.
function M.duration(ms)
  if ms == nil then return "-" end
  local m = math.floor(ms / 60000 + 0.5)
  if m < 60 then return string.format("%d m", m) end
  local h = m // 60
  if h < 24 then return string.format("%d h %02d m", h, m % 60) end
  return string.format("%d d %d h", h // 24, h % 24)
end
return M

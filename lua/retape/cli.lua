local M = {}
function M.main(argv) print("retape", argv[1]) return 0 end
return M

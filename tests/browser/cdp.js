// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
// (fd 3: commands to the browser, fd 4: replies and events, NUL-separated
// JSON).  No WebSocket, no port, no npm package.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

function launch(executable) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "retape-chromium-"));
  const proc = spawn(executable, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile,
    "--remote-debugging-pipe", "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", d => { stderr += d; });
  const out = proc.stdio[3], input = proc.stdio[4];
  let next = 1, buf = "";
  const waiting = new Map(), listeners = [];
  input.on("data", chunk => {
    buf += chunk.toString("utf8");
    let i;
    while ((i = buf.indexOf("\0")) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (msg.id && waiting.has(msg.id)) {
        const { resolve, reject, method } = waiting.get(msg.id);
        waiting.delete(msg.id);
        if (msg.error) reject(new Error(method + ": " + msg.error.message)); else resolve(msg.result);
      } else if (msg.method) {
        for (const l of listeners) l(msg);
      }
    }
  });
  const exited = new Promise(res => proc.on("exit", res));
  function send(method, params, sessionId) {
    const id = next++;
    const msg = { id, method, params: params || {} };
    if (sessionId) msg.sessionId = sessionId;
    out.write(JSON.stringify(msg) + "\0");
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject, method });
      setTimeout(() => { if (waiting.has(id)) { waiting.delete(id); reject(new Error(method + ": timeout; browser stderr: " + stderr.slice(-800))); } }, 30000);
    });
  }
  async function close() {
    try { await send("Browser.close"); } catch (e) { proc.kill("SIGKILL"); }
    await Promise.race([exited, new Promise(r => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill("SIGKILL");
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return { send, on: fn => listeners.push(fn), close, stderr: () => stderr };
}

module.exports = { launch };

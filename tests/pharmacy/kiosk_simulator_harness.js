// Drives pharmacy/static/pharmacy/kiosk.js (the simulator page's script) in Node with a minimal
// fake DOM, against a real server: node kiosk_simulator_harness.js BASE KIOSK_ID SECRET CODE [jam]
"use strict";
const fs = require("fs");
const path = require("path");
const [base, kioskId, secret, code, mode] = process.argv.slice(2);

const elements = {};
class El {
  constructor(id) {
    this.id = id; this.value = ""; this.textContent = ""; this.innerHTML = ""; this.hidden = false;
    this.disabled = false; this.checked = false; this.open = true; this.dataset = {}; this.children = [];
    this.listeners = {}; this.classes = new Set();
    this.classList = {
      toggle: (c, on) => (on ? this.classes.add(c) : this.classes.delete(c)),
      contains: (c) => this.classes.has(c),
    };
  }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  fire(type, event) { (this.listeners[type] || []).forEach((fn) => fn(event || {})); }
  click() { this.fire("click"); }
  appendChild(child) { this.children.push(child); }
}
const $ = (id) => (elements[id] = elements[id] || new El(id));
const screens = ["screen-code", "screen-guidance", "screen-release", "screen-done"].map($);
$("screen-code").classes.add("active");
$("error").hidden = true;
$("kiosk").dataset.api = "/api/v1/kiosk/";
Object.assign($("strings").dataset, {
  connected: "connected", notConnected: "refused", done: "DONE", doneText: "", jam: "JAM", jamText: "",
  callSent: "CALL SENT", dose: "Dose", frequency: "Frequency", duration: "Duration", warnings: "Warnings",
  slot: "slot", network: "network error",
});
const store = {};
globalThis.localStorage = { getItem: (k) => (k in store ? store[k] : null), setItem: (k, v) => { store[k] = String(v); } };
globalThis.document = {
  getElementById: $,
  querySelectorAll: () => screens,
  createElement: () => new El(""),
};
globalThis.window = globalThis;
const realFetch = globalThis.fetch;
const calls = [];
globalThis.fetch = (url, options) => { calls.push({ url, headers: options.headers }); return realFetch(base + url, options); };
globalThis.setInterval = () => 0;

new Function(fs.readFileSync(path.join(__dirname, "../../pharmacy/static/pharmacy/kiosk.js"), "utf8"))();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(predicate, what) {
  for (let i = 0; i < 200; i++) { if (predicate()) return; await sleep(25); }
  throw new Error("timed out waiting for " + what + "; error: " + $("error").textContent);
}
const active = (id) => $(id).classes.has("active");

(async () => {
  $("kiosk-id").value = kioskId; $("kiosk-secret").value = secret;
  $("save-setup").click();
  await until(() => $("setup-status").textContent === "connected", "heartbeat");
  $("code").value = "ZZZZ-ZZZZ";
  $("submit-code").click();
  await until(() => !$("error").hidden, "unknown code error");
  $("code").value = code;
  $("submit-code").click();
  await until(() => active("screen-guidance"), "guidance screen");
  if (!$("confirm").disabled) throw new Error("confirm enabled before the patient ticked the box");
  $("understood").checked = true; $("understood").fire("change");
  $("confirm").click();
  await until(() => active("screen-release"), "release screen");
  $("call").click();
  await until(() => $("call-status").textContent === "CALL SENT", "call request");
  $(mode === "jam" ? "jam" : "complete").click();
  await until(() => active("screen-done"), "done screen");
  const keys = calls.filter((c) => c.url.endsWith("dispenses/")).map((c) => c.headers["Idempotency-Key"]);
  console.log(JSON.stringify({ result: $("done-h").textContent, guidance: $("guidance").innerHTML, keys }));
})().catch((e) => { console.error(e.message); process.exit(1); });

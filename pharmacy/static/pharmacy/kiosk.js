/* Kiosk simulator: talks to the real kiosk API with the kiosk credential, like a machine would. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("kiosk");
  const api = root.dataset.api;
  const t = $("strings").dataset;
  const ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
  let dispense = null;
  let attemptKey = null; // one Idempotency-Key per attempt, reused on a retry of that attempt

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k-" + Date.now() + "-" + Math.random().toString(36).slice(2);
  }
  function credential() {
    return "Kiosk " + localStorage.getItem("kioskId") + ":" + localStorage.getItem("kioskSecret");
  }
  async function call(path, body, extraHeaders) {
    const headers = Object.assign({ "Content-Type": "application/json", Authorization: credential() }, extraHeaders || {});
    const response = await fetch(api + path, { method: "POST", headers, body: JSON.stringify(body || {}), credentials: "omit" });
    let data = {};
    try { data = await response.json(); } catch (e) { /* empty body */ }
    return { status: response.status, data };
  }
  function show(id) {
    document.querySelectorAll(".kiosk .screen").forEach((s) => s.classList.toggle("active", s.id === id));
    hideError();
  }
  function showError(data) {
    const el = $("error");
    el.textContent = (data && (data.detail || JSON.stringify(data))) || t.network;
    el.hidden = false;
  }
  function hideError() { $("error").hidden = true; }
  function escapeText(s) { const d = document.createElement("div"); d.textContent = s; return d.innerHTML; }

  async function heartbeat() {
    if (!localStorage.getItem("kioskId")) return;
    try {
      const r = await call("heartbeat/", { status: "ok", firmware: "simulator-1" });
      $("setup-status").textContent = r.status === 200 ? t.connected : t.notConnected;
      if (r.status === 200) $("setup").open = false;
    } catch (e) { $("setup-status").textContent = t.network; }
  }

  function renderDispense(d) {
    $("items").innerHTML = d.items.map((i) =>
      "<li><strong>" + escapeText(i.name_ko) + "</strong> " + escapeText(i.strength) + " × " + i.quantity +
      " <small>(" + escapeText(i.name_en) + ", " + t.slot + " " + escapeText(i.slot) + ")</small></li>").join("");
    const block = (lang, c) => "<h2 lang='" + lang + "'>" + (lang === "ko" ? "한국어" : "English") + "</h2><dl lang='" + lang + "'>" +
      ["dose", "frequency", "duration", "warnings"].map((k) => "<dt>" + t[k] + "</dt><dd>" + escapeText(c[k]) + "</dd>").join("") + "</dl>";
    $("guidance").innerHTML = block("ko", d.counselling.ko) + block("en", d.counselling.en);
    $("understood").checked = false;
    $("confirm").disabled = true;
  }

  async function submitCode() {
    const code = $("code").value.trim();
    if (!attemptKey) attemptKey = newKey();
    try {
      const r = await call("dispenses/", { code }, { "Idempotency-Key": attemptKey });
      if (r.status === 201) {
        dispense = r.data; attemptKey = null;
        renderDispense(dispense); show("screen-guidance");
      } else {
        // A refused code is final for this attempt: the next try is a new attempt.
        if (r.status !== 409 || r.data.code !== "idempotency_in_flight") attemptKey = null;
        showError(r.data);
      }
    } catch (e) { showError(null); }
  }

  async function confirmGuidance() {
    const r = await call("dispenses/" + dispense.id + "/confirm-counselling/");
    if (r.status === 200) show("screen-release"); else showError(r.data);
  }
  async function finish(ok) {
    const r = ok ? await call("dispenses/" + dispense.id + "/complete/")
                 : await call("dispenses/" + dispense.id + "/fail/", { reason: "jam (simulated)" });
    if (r.status !== 200) { showError(r.data); return; }
    $("done-h").textContent = ok ? t.done : t.jam;
    $("done-text").textContent = ok ? t.doneText : t.jamText;
    show("screen-done");
  }
  async function askPharmacist() {
    const r = await call("call-requests/", dispense ? { dispense: dispense.id } : {});
    $("call-status").textContent = r.status === 201 ? t.callSent : (r.data.detail || t.network);
  }

  // Keypad of the code alphabet (what a patient types on a touch screen).
  ALPHABET.split("").forEach((ch) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = ch;
    b.addEventListener("click", () => {
      const v = $("code").value.replace(/-/g, "");
      if (v.length < 8) { const n = v + ch; $("code").value = n.length > 4 ? n.slice(0, 4) + "-" + n.slice(4) : n; }
    });
    $("keypad").appendChild(b);
  });
  // A demo kiosk picked on the page (development only, see pharmacy.views.kiosk_simulator)
  // replaces the stored credential, and the heartbeat below connects with it at once.
  if (root.dataset.demoKioskId) {
    localStorage.setItem("kioskId", root.dataset.demoKioskId);
    localStorage.setItem("kioskSecret", root.dataset.demoKioskSecret || "");
    $("kiosk-secret").value = root.dataset.demoKioskSecret || "";
  }
  $("kiosk-id").value = localStorage.getItem("kioskId") || "";
  $("save-setup").addEventListener("click", () => {
    localStorage.setItem("kioskId", $("kiosk-id").value.trim());
    localStorage.setItem("kioskSecret", $("kiosk-secret").value.trim());
    heartbeat();
  });
  $("clear").addEventListener("click", () => { $("code").value = ""; hideError(); });
  $("submit-code").addEventListener("click", submitCode);
  $("code").addEventListener("keydown", (e) => { if (e.key === "Enter") submitCode(); });
  $("understood").addEventListener("change", () => { $("confirm").disabled = !$("understood").checked; });
  $("confirm").addEventListener("click", confirmGuidance);
  $("complete").addEventListener("click", () => finish(true));
  $("jam").addEventListener("click", () => finish(false));
  $("call").addEventListener("click", askPharmacist);
  $("restart").addEventListener("click", () => { dispense = null; $("code").value = ""; show("screen-code"); });
  // QR scanning with the browser's own BarcodeDetector (no library, no CDN); a USB/Bluetooth
  // scanner that types like a keyboard works everywhere through the code field instead.
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    $("scan").hidden = false;
    $("scan").addEventListener("click", async () => {
      const video = $("camera");
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
        video.srcObject = stream; video.hidden = false; await video.play();
        const detector = new BarcodeDetector({ formats: ["qr_code"] });
        for (let i = 0; i < 300; i++) { // about 30 seconds
          const found = await detector.detect(video);
          if (found.length) { $("code").value = found[0].rawValue; break; }
          await new Promise((r) => setTimeout(r, 100));
        }
      } catch (e) { showError(null); }
      if (stream) stream.getTracks().forEach((track) => track.stop());
      video.hidden = true;
      if ($("code").value) submitCode();
    });
  }
  heartbeat();
  setInterval(heartbeat, 60000);
})();

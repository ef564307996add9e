// The Verify page's glue: pins keys in localStorage, reads a dropped or chosen bundle,
// runs ./verify.js on it and fills the results table. Every value goes into the page
// as text (textContent), never as HTML.
const STORE = "inferproof.pinned-keys";
let library = null;

async function verifier() {
  // Loaded on use, so the page still works (pinning, reading) while verify.js is absent.
  if (!library) library = await import("./verify.js");
  return library;
}

function pinned() {
  try {
    const keys = JSON.parse(localStorage.getItem(STORE) || "[]");
    return Array.isArray(keys) ? keys.filter((k) => typeof k === "string") : [];
  } catch {
    return [];
  }
}

function kindOf(key) {
  // A C2SP verifier key is name+hex+base64; a node key is base64 alone (no '+' names).
  return /^[^+\s]+\+[0-9a-f]{8}\+\S+$/.test(key) ? "log" : "node";
}

function save(keys) {
  localStorage.setItem(STORE, JSON.stringify([...new Set(keys)]));
  showKeys();
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

async function showKeys() {
  const body = document.getElementById("pinned");
  body.replaceChildren();
  for (const key of pinned()) {
    const row = document.createElement("tr");
    cell(row, kindOf(key));
    const fp = document.createElement("td");
    fp.className = "mono";
    fp.textContent = "…";
    row.appendChild(fp);
    cell(row, key, "mono");
    body.appendChild(row);
    verifier()
      .then((lib) => (kindOf(key) === "log" ? lib.logKeyFingerprint(key) : lib.keyFingerprint(key)))
      .then((text) => { fp.textContent = String(text); })
      .catch(() => { fp.textContent = "(verify.js unavailable)"; });
  }
  if (!body.children.length) {
    const row = document.createElement("tr");
    cell(row, "No key pinned yet.");
    body.appendChild(row);
  }
}

function showResult(result) {
  const verdict = document.getElementById("verdict");
  // The verdict names where it was reached (this browser, with the keys pinned here) and,
  // on a failure, the first check that failed, as the CLI's "NOT VERIFIED (check)" does.
  const failed = (result.checks || []).find((c) => c.status === "failed");
  verdict.textContent = result.verified
    ? "Verified in this browser: signature, output digest and log inclusion passed."
    : failed
      ? `NOT verified in this browser: ${String(failed.name)} failed.`
      : "NOT verified in this browser.";
  verdict.className = "verdict " + (result.verified ? "passed" : "failed");
  const body = document.getElementById("results");
  body.replaceChildren();
  for (const check of result.checks || []) {
    const row = document.createElement("tr");
    row.className = String(check.status);
    cell(row, String(check.name), "mono");
    cell(row, String(check.status), "status");
    cell(row, String(check.detail ?? ""));
    body.appendChild(row);
  }
}

function showError(message) {
  showResult({ verified: false, checks: [] });
  document.getElementById("verdict").textContent = message;
}

// verify.js reads at most 16 MiB of bundle text; a larger file is not a bundle.
const MAX_BUNDLE = 16 * 1024 * 1024;
// A bundle id is 24 hex digits (the node's bundle store); a link names one.
const LINKED = /\/(?:explore\/receipts|v1\/bundles)\/([0-9a-f]{24})(?:[/?#]|$)/;

async function check(file) {
  if (!file) return;
  if (file.size > MAX_BUNDLE) return showError("That file is over 16 MiB: not a bundle.");
  await checkText(await file.text(), "That file");
}

async function checkLink(text) {
  let url;
  try {
    url = new URL(text.trim(), location.href);
  } catch {
    return showError("That is not a link.");
  }
  const found = LINKED.exec(url.pathname);
  if (url.origin !== location.origin || !found) {
    return showError("That is not a receipt link of this node (/explore/receipts/ID or /v1/bundles/ID).");
  }
  let body;
  try {
    // Same origin only (the page's connect-src 'self' refuses any other).
    const response = await fetch(`/v1/bundles/${found[1]}`, { credentials: "same-origin" });
    if (!response.ok) return showError(`The node answered ${response.status} for that bundle.`);
    body = await response.text();
  } catch {
    return showError("The bundle could not be fetched.");
  }
  if (body.length > MAX_BUNDLE) return showError("That bundle is over 16 MiB.");
  await checkText(body, "That bundle");
}

async function checkText(text, what) {
  let bundle;
  try {
    bundle = JSON.parse(text);
  } catch {
    return showError(`${what} is not JSON.`);
  }
  const keys = pinned();
  const trust = {
    nodeKeys: keys.filter((k) => kindOf(k) === "node"),
    logKeys: keys.filter((k) => kindOf(k) === "log"),
  };
  try {
    const lib = await verifier();
    showResult(await lib.verifyBundle(bundle, trust));
  } catch (err) {
    showError("The verifier failed: " + String(err && err.message ? err.message : err));
  }
}

function setUp() {
  const area = document.getElementById("keys");
  document.getElementById("pin").addEventListener("click", () => {
    const lines = area.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    save([...pinned(), ...lines]);
    area.value = "";
  });
  const own = document.getElementById("pin-node");
  own.addEventListener("click", () => {
    save([...pinned(), own.dataset.nodeKey, own.dataset.logKey].filter(Boolean));
  });
  document.getElementById("unpin").addEventListener("click", () => save([]));
  const input = document.getElementById("file");
  input.addEventListener("change", () => check(input.files[0]));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    check(e.dataTransfer.files[0]);
  });
  const form = document.getElementById("by-link");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    checkLink(document.getElementById("link").value);
  });
  // /explore/verify?bundle=ID (the receipt page's link) fetches and checks that bundle.
  const linked = new URLSearchParams(location.search).get("bundle");
  if (linked && /^[0-9a-f]{24}$/.test(linked)) {
    document.getElementById("link").value = `/v1/bundles/${linked}`;
    checkLink(`/v1/bundles/${linked}`);
  }
  showKeys();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
else setUp();

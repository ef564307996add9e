// The in-browser verifier of inferproof receipt bundles: one ES module, no imports.
// It makes the checks of inferproof.verify.Verifier.check that need nothing but the
// bundle and pinned keys, under the same names, and lists every other one as
// not_checked with the reason. Only WebCrypto (Ed25519, SHA-256), TextEncoder and
// TextDecoder are used, so it runs unchanged in a browser and in Node.js 24.
// tests/explorer/test_browser_verifier.py runs it against the vectors the Python
// verifier checks.

const subtle = globalThis.crypto.subtle;
const UTF8 = new TextEncoder();

// DSSE protocol.md: the payload type of an in-toto statement, and the PAE prefix.
const PAYLOAD_TYPE = "application/vnd.in-toto+json";
const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
const PREDICATE_TYPE = "https://inferproof.dev/receipt/v1";
const BUNDLE_MEDIA_TYPE = "application/vnd.inferproof.bundle.v1+json";
// Caps mirroring the Python library (receipts/_dsse.py, _statement.py, log/_note.py,
// log/_checkpoint.py, runtime/_tensors.py), so hostile input costs bounded work.
const MAX_BUNDLE_CHARS = 16 * 1024 * 1024;
const MAX_ENVELOPE_SIGNATURES = 8;
const MAX_STATEMENT_BYTES = 1024 * 1024;
const MAX_NOTE_BYTES = 1 << 20;
const MAX_NOTE_SIGNATURES = 100; // signed-note "Format": at least 16; Go's limit is 100
const MAX_PROOF_TEXT = 2 << 20;
// RFC 9162 section 2.1.3.2: a tree of at most 2^64 leaves has paths of at most 64 hashes.
const MAX_PROOF_HASHES = 64;
const MAX_TREE_SIZE = (1n << 64n) - 1n; // tlog-checkpoint: tree sizes are uint64
const MAX_ELEMENTS = 16 * 1024 * 1024;
const MAX_TENSORS = 256;
const MAX_DIMS = 32;
const ALG_ED25519 = 0x01; // c2sp.org/signed-note "Signature types"
const SIG_PREFIX = "\u2014 "; // signed-note: a signature line starts with an em dash and a space
const PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const CLOCK_SKEW_SECONDS = 300; // verify/_verifier.py: allowance for receipt times

// -- small helpers ------------------------------------------------------------------------
class Refused extends Error {}

const check = (name, status, detail) => ({ name, status, detail: String(detail).slice(0, 500) });
const passed = (name, detail) => check(name, "passed", detail);
const failed = (name, detail) => check(name, "failed", detail);
const notChecked = (name, detail) => check(name, "not_checked", detail);

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const sameKeys = (obj, keys) =>
  isObject(obj) && Object.keys(obj).length === keys.length && keys.every((k) => Object.hasOwn(obj, k));

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

async function sha256Digest(bytes) {
  return "sha256:" + hex(await sha256(bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// -- base64 (RFC 4648 section 4), strict ----------------------------------------------------
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUE = new Map(Array.from(ALPHABET, (c, i) => [c, i]));

export function b64encode(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? ALPHABET[n & 63] : "=";
  }
  return out;
}

// Standard alphabet with padding, as Python's b64decode(validate=True) accepts. With
// `canonical`, only the one encoding b64encode writes (RFC 4648 section 3.5: the pad
// bits must be zero), so signed material has exactly one serialisation.
export function b64decode(text, what, canonical = true) {
  if (typeof text !== "string" || text.length % 4 !== 0) throw new Refused(`${what} is not valid base64`);
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j];
      const last = i + 4 === text.length;
      const v = c === "=" && last && j >= 4 - pad ? 0 : VALUE.get(c);
      if (v === undefined) throw new Refused(`${what} is not valid base64`);
      n = (n << 6) | v;
    }
    for (const b of [n >> 16, (n >> 8) & 255, n & 255]) if (at < out.length) out[at++] = b;
  }
  if (canonical && b64encode(out) !== text) throw new Refused(`${what} is not canonical base64`);
  return out;
}

// -- RFC 8785 (JCS) -------------------------------------------------------------------------
// Section 3.2.2.2: strings escape only '"', '\\' and C0 controls, the short forms where
// JSON has them and \u00xx (lowercase hex) otherwise; everything else is written as is.
const SHORT = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\" };

function jcsString(s) {
  let out = '"';
  for (const c of s) {
    const code = c.charCodeAt(0);
    if (SHORT[c]) out += SHORT[c];
    else if (code < 0x20) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += c;
  }
  return out + '"';
}

export function canonicalize(value, depth = 0) {
  if (depth > 256) throw new Refused("value is nested too deeply to canonicalise");
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    // Section 3.2.2.3: ECMAScript Number serialisation; NaN and infinities have none.
    if (!Number.isFinite(value)) throw new Refused("a non-finite number has no JSON form");
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") return jcsString(value);
  if (Array.isArray(value)) return "[" + value.map((v) => canonicalize(v, depth + 1)).join(",") + "]";
  if (isObject(value)) {
    // Section 3.2.3: keys sorted by their UTF-16 code units, which is how JS compares strings.
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return "{" + keys.map((k) => jcsString(k) + ":" + canonicalize(value[k], depth + 1)).join(",") + "}";
  }
  throw new Refused(`a ${typeof value} has no JSON form`);
}

// UTF-8 of the canonical text; a lone surrogate has no UTF-8, so it is refused.
export function canonicalBytes(value) {
  const text = canonicalize(value);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw new Refused("a string is not valid Unicode (lone surrogate)");
  }
  return UTF8.encode(text);
}

// -- keys and fingerprints ------------------------------------------------------------------
// A node key's id is sha256:<hex> of its 32 raw Ed25519 bytes (inferproof/_keys.py).
export async function keyFingerprint(base64Key) {
  const raw = b64decode(String(base64Key).trim(), "node key");
  if (raw.length !== 32) throw new Refused("an Ed25519 node key is 32 bytes");
  return sha256Digest(raw);
}

// C2SP signed-note key ID: SHA-256(name || 0x0A || type || public key)[:4].
async function noteKeyId(name, alg, publicKey) {
  const digest = await sha256(concat(UTF8.encode(name + "\n"), Uint8Array.of(alg), publicKey));
  return hex(digest.subarray(0, 4));
}

function checkKeyName(name) {
  // signed-note: key names are non-empty, with no Unicode spaces nor '+'.
  if (!name || name.includes("+") || /[\s\p{C}]/u.test(name)) throw new Refused("invalid signed-note key name");
  return name;
}

// Parse a note verifier key "name+hex(key ID)+base64(type || key)" (log/_note.py).
export async function parseLogKey(text) {
  const parts = String(text).trim().split("+");
  if (parts.length < 3) throw new Refused("verifier key is not name+keyid+base64(key)");
  const [name, id] = parts;
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(id)) throw new Refused("verifier key ID is not 8 lowercase hex digits");
  const typed = b64decode(parts.slice(2).join("+"), "verifier key");
  if (typed.length !== 33 || typed[0] !== ALG_ED25519) throw new Refused("not an Ed25519 note verifier key");
  const publicKey = typed.subarray(1);
  if ((await noteKeyId(name, ALG_ED25519, publicKey)) !== id) throw new Refused(`key ID does not match key ${name}`);
  return { name, id, publicKey, key: await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]) };
}

// The fingerprint a page shows beside a log key: its name and C2SP key hash.
export async function logKeyFingerprint(text) {
  const key = await parseLogKey(text);
  return `${key.name}+${key.id}`;
}

async function ed25519Verify(key, signature, message) {
  if (signature.length !== 64) return false;
  try {
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

async function loadPins(pins) {
  const nodes = new Map();
  for (const text of pins?.nodeKeys ?? []) {
    const raw = b64decode(String(text).trim(), "pinned node key");
    if (raw.length !== 32) throw new Refused("a pinned node key is not 32 bytes");
    nodes.set(await sha256Digest(raw), await subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]));
  }
  const logs = new Map();
  for (const text of pins?.logKeys ?? []) {
    const key = await parseLogKey(text);
    logs.set(key.name, key);
  }
  return { nodes, logs };
}

// -- the envelope and the statement ---------------------------------------------------------
// DSSE protocol.md, "Signature definition": PAE(type, body) =
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes.
function pae(type, body) {
  const t = UTF8.encode(type);
  return concat(UTF8.encode(`DSSEv1 ${t.length} `), t, UTF8.encode(` ${body.length} `), body);
}

// The envelope's shape, as receipts/_dsse.py requires it: payload bytes and signatures.
function readEnvelope(env) {
  if (!sameKeys(env, ["payloadType", "payload", "signatures"])) throw new Refused("bundle has no well-formed DSSE envelope");
  if (env.payloadType !== PAYLOAD_TYPE) throw new Refused(`envelope payloadType must be ${PAYLOAD_TYPE}`);
  const sigs = env.signatures;
  if (!Array.isArray(sigs) || sigs.length < 1 || sigs.length > MAX_ENVELOPE_SIGNATURES) {
    throw new Refused(`envelope must carry 1 to ${MAX_ENVELOPE_SIGNATURES} signatures`);
  }
  const signatures = sigs.map((s) => {
    if (!sameKeys(s, ["keyid", "sig"])) throw new Refused("envelope signature entry must be exactly keyid and sig");
    if (typeof s.keyid !== "string" || !/^[\x20-\x7e]*$/.test(s.keyid)) throw new Refused("envelope signature keyid must be printable ASCII");
    return { keyid: s.keyid, sig: b64decode(s.sig, "envelope signature") };
  });
  return { payload: b64decode(env.payload, "envelope payload"), signatures };
}

async function signatureCheck(envelope, pins, statement) {
  const name = "signature";
  const { payload, signatures } = readEnvelope(envelope);
  const message = pae(PAYLOAD_TYPE, payload);
  for (const { keyid, sig } of signatures) {
    const key = pins.nodes.get(keyid);
    if (!key) continue;
    if (!(await ed25519Verify(key, sig, message))) return failed(name, `envelope signature by node key ${keyid} is invalid`);
    const nodeId = statement?.predicate?.node?.id;
    if (statement && nodeId !== keyid) return failed(name, `receipt names node ${nodeId}, signed by ${keyid}`);
    return passed(name, `DSSE envelope signed by pinned node key ${keyid}`);
  }
  const seen = signatures.map((s) => s.keyid).join(", ");
  return failed(name, `envelope is signed by ${seen}, not a pinned node key`);
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

// The payload: strict UTF-8 JSON, its own RFC 8785 bytes, shaped as a receipt statement
// (receipts/_statement.py). Returns the statement, or throws why it is refused.
function readStatement(payload) {
  if (payload.length > MAX_STATEMENT_BYTES) throw new Refused(`receipt statement is over ${MAX_STATEMENT_BYTES} bytes`);
  let st;
  try {
    st = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new Refused("receipt statement is not valid UTF-8 JSON");
  }
  if (!isObject(st)) throw new Refused("receipt statement must be an object");
  // Duplicate keys, other number forms and escapes all make the bytes differ.
  if (!equalBytes(canonicalBytes(st), payload)) throw new Refused("receipt statement is not in RFC 8785 canonical form");
  if (st._type !== STATEMENT_TYPE || st.predicateType !== PREDICATE_TYPE) throw new Refused("payload is not an inferproof receipt (in-toto Statement v1)");
  if (!Array.isArray(st.subject) || st.subject.length !== 1) throw new Refused("receipt must have exactly one subject (the output)");
  const sha = st.subject[0]?.digest?.sha256;
  if (!DIGEST.test(`sha256:${sha}`)) throw new Refused("receipt subject digest is not sha256:<64 hex>");
  const p = st.predicate;
  const objects = ["model", "input", "runtime", "environment", "node", "time"];
  if (!isObject(p) || !objects.every((k) => isObject(p[k]))) throw new Refused("receipt predicate is missing an object");
  if (!isObject(p.parameters ?? {}) || !Array.isArray(p.proofs) || !p.proofs.every(isObject)) throw new Refused("receipt parameters or proofs are malformed");
  if (!DIGEST.test(p.model.digest)) throw new Refused("receipt model digest is malformed");
  if (Object.hasOwn(p.input, "digest") === Object.hasOwn(p.input, "commitment")) throw new Refused("receipt input must hold exactly one of digest or commitment");
  if (!DIGEST.test(p.input.digest || p.input.commitment)) throw new Refused("receipt input digest is malformed");
  if (p.nonce !== null && p.nonce !== undefined && typeof p.nonce !== "string") throw new Refused("receipt nonce must be a string or null");
  return st;
}

// -- tensors (runtime/_tensors.py) ----------------------------------------------------------
// Every dtype the Python runtime supports: bytes per element and how a value is checked
// and written little-endian (the digest covers C-order little-endian bytes).
const INTS = {
  int8: [1, -(2n ** 7n), 2n ** 7n - 1n], int16: [2, -(2n ** 15n), 2n ** 15n - 1n],
  int32: [4, -(2n ** 31n), 2n ** 31n - 1n], int64: [8, -(2n ** 63n), 2n ** 63n - 1n],
  uint8: [1, 0n, 2n ** 8n - 1n], uint16: [2, 0n, 2n ** 16n - 1n],
  uint32: [4, 0n, 2n ** 32n - 1n], uint64: [8, 0n, 2n ** 64n - 1n],
};
const FLOATS = { float16: [2, 65504], float32: [4, 3.4028234663852886e38], float64: [8, Number.MAX_VALUE] };

const SIZES = { bool: 1 };
for (const [k, v] of Object.entries({ ...INTS, ...FLOATS })) SIZES[k] = v[0];

class NotReadable extends Error {}

function roundHalfEven(m) {
  const f = Math.floor(m);
  const d = m - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

// IEEE 754 binary16 bits of a double, rounded to nearest even (as numpy casts).
function halfBits(x) {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24); // subnormal (or 0)
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a / 2 ** (e - 10));
  if (m === 2048) [e, m] = [e + 1, 1024];
  return sign | ((e + 15) << 10) | (m - 1024);
}

function writeValue(view, at, dtype, v) {
  if (dtype === "bool") view.setUint8(at, v ? 1 : 0);
  else if (dtype === "float16") view.setUint16(at, halfBits(v), true);
  else if (dtype === "float32") view.setFloat32(at, v, true);
  else if (dtype === "float64") view.setFloat64(at, v, true);
  else {
    const size = INTS[dtype][0];
    let n = BigInt(v);
    if (n < 0n) n += 1n << BigInt(8 * size); // two's complement
    for (let i = 0; i < size; i++, n >>= 8n) view.setUint8(at + i, Number(n & 255n));
  }
}

// A nested rectangular list of numbers and booleans, flattened (numpy's np.array rule).
function flatten(values, name) {
  const out = [];
  const walk = (v, depth) => {
    if (Array.isArray(v)) {
      if (depth > MAX_DIMS) throw new Refused(`tensor ${name}: values are nested too deeply`);
      const shapes = v.map((x) => walk(x, depth + 1));
      if (shapes.some((s) => s !== shapes[0])) throw new Refused(`tensor ${name}: values are not a rectangular array`);
      return `[${v.length}${shapes[0] ?? ""}]`;
    }
    if (typeof v !== "number" && typeof v !== "boolean") throw new Refused(`tensor ${name}: values must be numbers in a rectangular array`);
    if (out.length >= MAX_ELEMENTS) throw new Refused(`tensor ${name} is over the cap of ${MAX_ELEMENTS} elements`);
    out.push(v);
    return "";
  };
  walk(values, 0);
  return out;
}

function checkValue(dtype, v, name) {
  const x = typeof v === "boolean" ? Number(v) : v;
  if (dtype === "bool") {
    if (x !== 0 && x !== 1) throw new Refused(`tensor ${name}: expected bool (0/1 or true/false)`);
  } else if (INTS[dtype]) {
    if (!Number.isInteger(x)) throw new Refused(`tensor ${name}: expected ${dtype} but got non-integer values`);
    // A parsed JSON number beyond 2^53 may already have been rounded: it cannot be read exactly.
    if (!Number.isSafeInteger(x)) throw new NotReadable(`tensor ${name}: an integer beyond 2^53 cannot be read exactly from parsed JSON`);
    if (BigInt(x) < INTS[dtype][1] || BigInt(x) > INTS[dtype][2]) throw new Refused(`tensor ${name}: values out of range for ${dtype}`);
  } else if (Math.abs(x) > FLOATS[dtype][1]) throw new Refused(`tensor ${name}: values overflow ${dtype}`);
  return x;
}

function shapeOf(shape, name) {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Refused(`tensor ${name}: shape must be a list of non-negative integers`);
  if (shape.length > MAX_DIMS) throw new Refused(`tensor ${name} has ${shape.length} dimensions, over the cap of ${MAX_DIMS}`);
  if (shape.some((d) => d > MAX_ELEMENTS)) throw new Refused(`tensor ${name}: a dimension is over the cap of ${MAX_ELEMENTS}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) throw new Refused(`tensor ${name} has ${count} elements, over the cap of ${MAX_ELEMENTS}`);
  return count;
}

// One tensor's little-endian bytes, from its JSON form {"dtype","shape","data"|"b64"}.
function tensorBytes(name, obj) {
  if (!isObject(obj)) throw new Refused(`tensor ${name} needs dtype, shape and data`);
  const unknown = Object.keys(obj).filter((k) => !["dtype", "shape", "data", "b64"].includes(k));
  if (unknown.length) throw new Refused(`tensor ${name}: unknown field(s) ${unknown.sort().join(", ")}`);
  const { dtype } = obj;
  const size = typeof dtype === "string" && Object.hasOwn(SIZES, dtype) ? SIZES[dtype] : 0;
  if (!size) throw new Refused(`tensor ${name}: unsupported dtype ${String(dtype).slice(0, 40)}`);
  const count = shapeOf(obj.shape, name);
  if (Object.hasOwn(obj, "data") === Object.hasOwn(obj, "b64")) throw new Refused(`tensor ${name}: give exactly one of 'data' or 'b64'`);
  if (Object.hasOwn(obj, "b64")) {
    // The Python reader checks the alphabet, not the pad bits: the bytes are what count.
    const raw = b64decode(String(obj.b64), `tensor ${name} b64`, false);
    if (raw.length !== count * size) throw new Refused(`tensor ${name}: ${raw.length} bytes do not fill its shape`);
    return raw;
  }
  const values = flatten(obj.data, name);
  if (values.length !== count) throw new Refused(`tensor ${name}: ${values.length} values do not fill its shape`);
  const out = new Uint8Array(count * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => writeValue(view, i * size, dtype, checkValue(dtype, v, name)));
  return out;
}

// sha256 of the RFC 8785 JSON of {name: {dtype, shape, sha256 of the bytes}} (tensors_digest).
export async function tensorsDigest(tensors, what = "tensors") {
  if (!isObject(tensors)) throw new Refused(`${what} must be an object of named tensors`);
  const names = Object.keys(tensors);
  if (names.length > MAX_TENSORS) throw new NotReadable(`${what}: ${names.length} tensors, over the browser's cap of ${MAX_TENSORS}`);
  const manifest = {};
  for (const name of names) {
    const t = tensors[name];
    manifest[name] = { dtype: t?.dtype, shape: t?.shape, sha256: hex(await sha256(tensorBytes(name, t))) };
  }
  return { count: names.length, digest: await sha256Digest(canonicalBytes(manifest)) };
}

// -- the answer: output, model, environment, input ------------------------------------------
const CHAT_TASKS = ["chat", "completion"];
const FINISH_REASONS = ["stop", "length", "content_filter"];

async function outputDigest(bundle, st) {
  const name = "output.digest";
  const signed = `sha256:${st.subject[0].digest.sha256}`;
  const { count, digest } = await tensorsDigest(bundle.outputs, "bundle outputs");
  if (st.predicate.parameters?.output !== "committed") {
    if (digest !== signed) return failed(name, `bundle outputs hash to ${digest}, the signed receipt says ${signed}`);
    return passed(name, `outputs match the signed subject digest ${digest}`);
  }
  // A private receipt: the subject is a salted commitment the browser has no opening for.
  if (!count) return notChecked(name, "the receipt commits to a salted output digest: needs the opening");
  return failed(name, "the receipt commits to a salted output digest: give the opening");
}

async function inputCheck(bundle, st) {
  const name = "input";
  const { digest: want, commitment } = st.predicate.input;
  if (bundle.inputs === undefined || bundle.inputs === null) {
    return notChecked(name, commitment ? "no input given (the receipt holds only a commitment; needs the opening)" : "no input given");
  }
  const { digest } = await tensorsDigest(bundle.inputs, "bundle inputs");
  if (!want) return failed(name, "the receipt commits to a salted input digest: give the opening");
  if (digest !== want) return failed(name, `bundle's input hashes to ${digest}, the receipt says ${want}`);
  return passed(name, `bundle's input matches the receipt's input digest ${digest}`);
}

async function provenanceCheck(bundle, st) {
  const name = "input.provenance";
  const carried = bundle.proofs?.provenance;
  if (carried === undefined) return failed(name, "the receipt commits to data provenance the bundle does not carry");
  const got = await sha256Digest(canonicalBytes(carried));
  const want = st.predicate.input.provenance;
  if (got !== want) return failed(name, `the bundle's provenance hashes to ${got}, the receipt says ${want}`);
  return passed(name, "the bundle's record of the input data's origin is the one the receipt commits to");
}

async function environmentCheck(st) {
  const name = "environment";
  const env = st.predicate.environment;
  if (!isObject(env.measurement) || (await sha256Digest(canonicalBytes(env.measurement))) !== env.digest) {
    return failed(name, "environment digest does not match its measurement");
  }
  if (env.type === "hardware") return notChecked(name, "hardware attestation evidence is not verified in the browser (use inferproof verify)");
  if (env.type !== "software") return failed(name, `unknown environment type ${JSON.stringify(env.type)}`);
  return notChecked(name, `software measurement ${env.digest}: self-reported, not hardware-backed; no allow-list in the browser`);
}

async function modelSignatureCheck(bundle, st) {
  const name = "model.signature";
  const recorded = st.predicate.model.signature ?? null;
  const sig = bundle.modelSignature ?? null;
  if (sig === null || recorded === null) {
    if (recorded !== null) return failed(name, `receipt records signature ${recorded} but the bundle lacks it`);
    return notChecked(name, "model is unsigned (no publisher signature in the bundle)");
  }
  if ((await sha256Digest(UTF8.encode(String(sig)))) !== recorded) return failed(name, `bundle's signature is not the one the receipt records (${recorded})`);
  return notChecked(name, "the publisher's model signature is not verified in the browser (no publisher keys pinned)");
}

async function chatOutput(bundle, st) {
  const name = "output.digest";
  if (st.predicate.input.commitment) return notChecked(name, "private request: the answer is a salted commitment; needs the opening");
  const out = bundle.outputs;
  if (!sameKeys(out, ["text", "finish_reason", "usage"]) || !sameKeys(out.usage, ["prompt_tokens", "completion_tokens"])) {
    return failed(name, "chat output must have exactly text, finish_reason and usage");
  }
  const counts = [out.usage.prompt_tokens, out.usage.completion_tokens];
  if (typeof out.text !== "string" || !FINISH_REASONS.includes(out.finish_reason) || !counts.every((n) => Number.isInteger(n) && n >= 0 && n < 2 ** 31)) {
    return failed(name, "chat output text, finish_reason or token counts are malformed");
  }
  const digest = await sha256Digest(canonicalBytes(out)); // ChatOutput.digest: RFC 8785 of the answer
  const signed = `sha256:${st.subject[0].digest.sha256}`;
  if (digest !== signed) return failed(name, `the answer hashes to ${digest}, the signed receipt says ${signed}`);
  const params = st.predicate.parameters ?? {};
  if (canonicalize(params.usage ?? null) !== canonicalize(out.usage) || params.finish_reason !== out.finish_reason) {
    return failed(name, "the answer's token counts or finish reason differ from the signed");
  }
  return passed(name, `the answer (text, finish reason, token counts) matches the signed subject (${counts[1]} tokens)`);
}

const NO_MODEL = "the model is not re-run in the browser (use inferproof verify with the model)";

async function answerChecks(bundle, st, run) {
  const p = st.predicate;
  const task = p.parameters?.task;
  const modelDigest = notChecked("model.digest", `receipt names model ${p.model.digest}; model bytes not available to compare`);
  const common = async () => [modelDigest, await run("model.signature", () => modelSignatureCheck(bundle, st)), await run("environment", () => environmentCheck(st))];
  if (CHAT_TASKS.includes(task)) {
    const answer = [await run("output.digest", () => chatOutput(bundle, st)), ...(await common())];
    answer.push(notChecked("input", "the browser does not re-derive the canonical chat request"));
    if (p.proofs.some((x) => x.type === "relay")) {
      answer.push(failed("output.relay", "relayed receipt; the default policy does not accept relayed receipts"));
    } else answer.push(notChecked("output.reexecution", NO_MODEL));
    answer.push(notChecked("output.fingerprint", NO_MODEL));
    return answer;
  }
  if (task === "embedding") {
    return [notChecked("output.digest", "embedding vectors are not checked in the browser"), ...(await common()),
      notChecked("input", "embedding requests are not checked in the browser"), notChecked("output.reexecution", NO_MODEL)];
  }
  const checks = [await run("output.digest", () => outputDigest(bundle, st)), ...(await common()), await run("input", () => inputCheck(bundle, st))];
  if (Object.hasOwn(p.input, "provenance")) checks.push(await run("input.provenance", () => provenanceCheck(bundle, st)));
  checks.push(notChecked("output.reexecution", NO_MODEL));
  if (p.proofs.some((x) => x.type === "zk")) checks.push(notChecked("zk.proof", "zero-knowledge proofs are not verified in the browser"));
  return checks;
}

// -- nonce and freshness (only with options.nonce, options.maxAgeSeconds) ----------------------
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function parseTime(text) {
  const m = RFC3339.exec(String(text));
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s) + (frac ? Number(frac) * 1000 : 0);
  if (zone !== "Z") ms -= (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4))) * 60000;
  return ms;
}

function nonceCheck(st, options) {
  const got = st.predicate.nonce ?? null;
  if (options.nonce === undefined || options.nonce === null) return notChecked("nonce", `no expected nonce given (receipt nonce: ${JSON.stringify(got)})`);
  if (got !== options.nonce) return failed("nonce", `receipt nonce ${JSON.stringify(got)} is not the expected ${JSON.stringify(options.nonce)}`);
  return passed("nonce", `receipt carries the expected nonce ${JSON.stringify(options.nonce)}`);
}

function freshnessCheck(st, options) {
  const name = "freshness";
  const finished = st.predicate.time.finished;
  const limit = options.maxAgeSeconds;
  if (limit === undefined || limit === null) return notChecked(name, `no maximum age given (issued ${finished})`);
  const issued = parseTime(finished);
  if (issued === null) return failed(name, `receipt time ${JSON.stringify(finished)} is not RFC 3339`);
  const now = options.now === undefined ? Date.now() : options.now instanceof Date ? options.now.getTime() : parseTime(options.now);
  const age = (now - issued) / 1000;
  if (age < -CLOCK_SKEW_SECONDS) return failed(name, `receipt is dated ${Math.round(-age)} s in the future`);
  if (age > limit) return failed(name, `receipt is ${Math.round(age)} s old, over the maximum of ${limit} s`);
  return passed(name, `receipt is ${Math.round(Math.max(age, 0))} s old (limit ${limit} s)`);
}

// -- the transparency log (c2sp.org/tlog-proof, tlog-checkpoint, signed-note; RFC 9162) -----
function parseDecimal(text, what) {
  // tlog-checkpoint and tlog-proof: ASCII decimal, no leading zeroes, a uint64.
  if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new Refused(`${what} is not a canonical decimal`);
  const n = BigInt(text);
  if (n > MAX_TREE_SIZE) throw new Refused(`${what} is too large`);
  return n;
}

function parseHash(text, what) {
  const raw = b64decode(text, what);
  if (raw.length !== 32) throw new Refused(`${what} is ${raw.length} bytes, not 32`);
  return raw;
}

// c2sp.org/signed-note "Format": text, a blank line, then "— <name> base64(key ID || sig)".
function parseNote(text) {
  const bytes = UTF8.encode(text);
  if (bytes.length > MAX_NOTE_BYTES) throw new Refused(`malformed note: over ${MAX_NOTE_BYTES} bytes`);
  if (/[\x00-\x09\x0b-\x1f]/.test(text)) throw new Refused("malformed note: control character");
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw new Refused("malformed note: no blank line before the signatures");
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (!block.endsWith("\n")) throw new Refused("malformed note: no signature, or no final newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_NOTE_SIGNATURES) throw new Refused(`malformed note: more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIG_PREFIX)) throw new Refused("malformed note: signature line does not start with an em dash");
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0 || space === rest.length - 1) throw new Refused("malformed note: signature line has no signature");
    const name = checkKeyName(rest.slice(0, space));
    const raw = b64decode(rest.slice(space + 1), "note signature");
    if (raw.length < 5) throw new Refused("malformed note: signature shorter than 5 bytes");
    return { name, id: hex(raw.subarray(0, 4)), sig: raw.subarray(4) };
  });
  return { body, signatures };
}

// tlog-checkpoint "Note text": origin, tree size, base64 root hash, extension lines.
function parseCheckpoint(body) {
  if (!body.endsWith("\n")) throw new Refused("checkpoint text does not end with a newline");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3 || lines.some((l) => !l)) throw new Refused("checkpoint needs origin, size and root lines, none empty");
  return { origin: lines[0], size: parseDecimal(lines[1], "tree size"), root: parseHash(lines[2], "root hash") };
}

// c2sp.org/tlog-proof: header, optional "extra", "index N", hashes, blank line, checkpoint.
function parseTlogProof(text) {
  if (typeof text !== "string") throw new Refused("tlog-proof is not text");
  if (text.length > MAX_PROOF_TEXT) throw new Refused(`tlog-proof is over ${MAX_PROOF_TEXT} characters`);
  const cut = text.indexOf("\n\n");
  if (cut < 0 || cut + 2 === text.length) throw new Refused("tlog-proof has no blank line followed by a checkpoint");
  const lines = text.slice(0, cut).split("\n");
  if (lines[0] !== PROOF_HEADER) throw new Refused(`tlog-proof does not start with ${PROOF_HEADER}`);
  let pos = 1;
  if (lines[pos]?.startsWith("extra ")) {
    if (b64decode(lines[pos].slice(6), "tlog-proof extra data").length > 1 << 16) throw new Refused("tlog-proof extra data is too large");
    pos++;
  }
  if (!lines[pos]?.startsWith("index ")) throw new Refused("tlog-proof has no index line");
  const index = parseDecimal(lines[pos].slice(6), "tlog-proof index");
  const hashes = lines.slice(pos + 1);
  if (hashes.length > MAX_PROOF_HASHES) throw new Refused(`tlog-proof has ${hashes.length} hashes, over ${MAX_PROOF_HASHES}`);
  const path = hashes.map((h) => parseHash(h, "tlog-proof hash"));
  const noteText = text.slice(cut + 2);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(noteText)) throw new Refused("tlog-proof checkpoint is not valid UTF-8 text");
  const note = parseNote(noteText);
  return { index, path, note, checkpoint: parseCheckpoint(note.body) };
}

// RFC 6962 section 2.1: leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || l || r).
const hashLeaf = (data) => sha256(concat(Uint8Array.of(0x00), data));
const hashChildren = (l, r) => sha256(concat(Uint8Array.of(0x01), l, r));

// RFC 9162 section 2.1.3.2, step by step; returns why the proof fails, or null.
async function inclusionFailure(leafHash, index, size, path, root) {
  if (index >= size) return `leaf index ${index} is not inside tree size ${size}`;
  let fn = index;
  let sn = size - 1n;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0n) return "proof is longer than the path to the root";
    if (fn & 1n || fn === sn) {
      r = await hashChildren(p, r);
      while (fn !== 0n && !(fn & 1n)) [fn, sn] = [fn >> 1n, sn >> 1n];
    } else r = await hashChildren(r, p);
    [fn, sn] = [fn >> 1n, sn >> 1n];
  }
  if (sn !== 0n) return "proof is shorter than the path to the root";
  return equalBytes(r, root) ? null : "recomputed root does not match the checkpoint root";
}

async function logChecks(bundle, pins, options) {
  const NO_WITNESS = notChecked("log.witness_quorum", "no witness keys are pinned in the browser; none required");
  const NO_MEMORY = notChecked("log.consistency", "no checkpoint memory kept by the browser");
  const unread = (why) => [failed("log.inclusion", why), notChecked("log.checkpoint_signature", "the proof was not read"), NO_WITNESS, NO_MEMORY];
  if (bundle.tlogEntry === undefined || bundle.tlogEntry === null) {
    const why = "the bundle carries no log entry";
    return [options.requireLog ? failed("log.inclusion", `required: ${why}`) : notChecked("log.inclusion", why)];
  }
  let proof;
  try {
    proof = parseTlogProof(bundle.tlogEntry);
  } catch (exc) {
    return unread(`malformed tlog-proof: ${exc.message}`);
  }
  const { origin, size, root } = proof.checkpoint;
  const key = pins.logs.get(origin);
  if (!key) return unread(`log ${JSON.stringify(origin)} is not a pinned log`);
  // signed-note: signatures by unknown keys are ignored; an invalid one by a known key
  // rejects the note, and at least one by the log's key is needed.
  const mine = proof.note.signatures.filter((s) => s.name === key.name && s.id === key.id);
  let good = mine.length > 0;
  for (const s of mine) good = good && (await ed25519Verify(key.key, s.sig, UTF8.encode(proof.note.body)));
  const untrusted = notChecked("log.inclusion", "the checkpoint is not signed by the pinned log key");
  if (!good) {
    const why = mine.length ? `invalid signature for key ${key.name}+${key.id}` : `no signature by ${key.name}`;
    return [failed("log.checkpoint_signature", why), untrusted, NO_WITNESS, NO_MEMORY];
  }
  const sig = passed("log.checkpoint_signature", `checkpoint signed by ${key.name}`);
  // The leaf is the RFC 8785 canonical JSON of the bundle's DSSE envelope (verify/_logcheck.py).
  const leaf = await hashLeaf(canonicalBytes(bundle.dsseEnvelope));
  const why = await inclusionFailure(leaf, proof.index, size, proof.path, root);
  const inclusion = why ? failed("log.inclusion", why) : passed("log.inclusion", `entry ${proof.index} in tree of size ${size}`);
  return [sig, inclusion, NO_WITNESS, NO_MEMORY];
}

// -- the whole bundle -------------------------------------------------------------------------
const BUNDLE_FIELDS = ["mediaType", "dsseEnvelope", "outputs", "inputs", "modelSignature", "proofs", "tlogEntry", "attestation"];

function readBundle(bundle) {
  let obj = bundle;
  if (typeof bundle === "string") {
    if (bundle.length > MAX_BUNDLE_CHARS) throw new Refused(`bundle is over ${MAX_BUNDLE_CHARS} characters`);
    try {
      obj = JSON.parse(bundle);
    } catch {
      throw new Refused("bundle is not valid JSON");
    }
  }
  if (!isObject(obj)) throw new Refused("bundle must be a JSON object");
  if (obj.mediaType !== BUNDLE_MEDIA_TYPE) throw new Refused(`not an inferproof bundle (mediaType must be ${BUNDLE_MEDIA_TYPE})`);
  const unknown = Object.keys(obj).filter((k) => !BUNDLE_FIELDS.includes(k));
  if (unknown.length) throw new Refused(`bundle has unknown field(s) ${unknown.sort().join(", ")}`);
  return obj;
}

// Run one check group; whatever a hostile bundle makes it stumble on fails it, by name.
async function run(name, step) {
  try {
    return await step();
  } catch (exc) {
    if (exc instanceof NotReadable) return notChecked(name, exc.message);
    const why = exc instanceof Refused ? exc.message : `malformed bundle (${exc?.name}): ${exc?.message}`;
    return failed(name, why);
  }
}

const MUST_PASS = ["signature", "output.digest", "log.inclusion"];

/**
 * Verify a receipt bundle (its parsed JSON, or the JSON text) against pinned keys.
 * pins: {nodeKeys: [base64 of 32 raw Ed25519 bytes], logKeys: [C2SP note verifier keys]}.
 * options: {nonce, now (Date or RFC 3339), maxAgeSeconds, requireLog}.
 * Returns {verified, checks: [{name, status, detail}]}; never throws. verified is true only
 * when no check failed and signature, output.digest and log.inclusion all passed.
 */
export async function verifyBundle(bundle, pins, options = {}) {
  const checks = [];
  try {
    options = isObject(options) ? options : {};
    let trusted;
    try {
      trusted = await loadPins(pins);
    } catch (exc) {
      return { verified: false, checks: [failed("pins", `a pinned key is malformed: ${exc.message}`)] };
    }
    let obj;
    try {
      obj = readBundle(bundle);
    } catch (exc) {
      return { verified: false, checks: [failed("bundle", exc.message)] };
    }
    let st = null;
    let refused = "the statement was not read";
    try {
      st = readStatement(readEnvelopePayload(obj.dsseEnvelope));
    } catch (exc) {
      refused = exc instanceof Refused ? exc.message : `malformed statement (${exc?.name})`;
    }
    checks.push(await run("signature", () => signatureCheck(obj.dsseEnvelope, trusted, st)));
    checks.push(st ? passed("statement", "payload is a receipt statement in RFC 8785 canonical form") : failed("statement", refused));
    if (st) {
      checks.push(...(await answerChecks(obj, st, run)));
      checks.push(await run("nonce", () => nonceCheck(st, options)));
      checks.push(await run("freshness", () => freshnessCheck(st, options)));
    } else {
      const why = "not checked: the statement could not be read";
      checks.push(...["output.digest", "input", "nonce", "freshness"].map((n) => notChecked(n, why)));
    }
    const logged = await run("log.inclusion", () => logChecks(obj, trusted, options));
    checks.push(...(Array.isArray(logged) ? logged : [logged]));
  } catch (exc) {
    checks.push(failed("verifier", `unexpected error (${exc?.name}): ${exc?.message}`));
  }
  const status = new Map(checks.map((c) => [c.name, c.status]));
  const verified = checks.every((c) => c.status !== "failed") && MUST_PASS.every((n) => status.get(n) === "passed");
  return { verified, checks };
}

// The payload bytes of an envelope, read leniently enough to show a statement whose
// envelope fails its own check (the signature check reports that).
function readEnvelopePayload(env) {
  if (!isObject(env)) throw new Refused("bundle has no DSSE envelope");
  return b64decode(env.payload, "envelope payload");
}

// Run verify.js over every vector of tests/explorer/vectors and print the results as JSON:
// node run_vectors.mjs [vectors folder]  ->  {"<case>": {verified, checks}, ...}
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const folder = process.argv[2] ?? join(here, "vectors");
const verifier = join(here, "..", "..", "src", "inferproof", "node", "explorer", "static", "verify.js");
const { verifyBundle, keyFingerprint, logKeyFingerprint } = await import(pathToFileURL(verifier).href);

const manifest = JSON.parse(await readFile(join(folder, "manifest.json"), "utf8"));
const results = { cases: {}, fingerprints: {} };
for (const [name, pins] of Object.entries(manifest.pins)) {
  results.fingerprints[name] = {
    nodeKeys: await Promise.all(pins.nodeKeys.map(keyFingerprint)),
    logKeys: await Promise.all(pins.logKeys.map(logKeyFingerprint)),
  };
}
for (const [i, c] of manifest.cases.entries()) {
  const text = await readFile(join(folder, c.file), "utf8");
  // Half the cases are given as parsed objects, half as JSON text: both forms are accepted.
  const bundle = i % 2 ? text : JSON.parse(text);
  results.cases[c.name] = await verifyBundle(bundle, manifest.pins[c.pins], c.options);
}
// Hostile inputs that must fail, never throw.
results.hostile = {
  notJson: await verifyBundle("{", manifest.pins.default),
  tooLarge: await verifyBundle(" ".repeat(16 * 1024 * 1024 + 1), manifest.pins.default),
  notObject: await verifyBundle([1, 2], manifest.pins.default),
  badPins: await verifyBundle({}, { nodeKeys: ["AAAA"], logKeys: [] }),
};
process.stdout.write(JSON.stringify(results) + "\n");

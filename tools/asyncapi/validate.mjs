// Validates an AsyncAPI document with the AsyncAPI project's own parser and its default
// (Spectral) ruleset. Prints every diagnostic as JSON; exits 1 on any error or warning.
//   node validate.mjs ../../docs/generated/asyncapi.json
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";

const path = resolve(process.argv[2] ?? "../../docs/generated/asyncapi.json");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), {
  source: path,
});
const severity = ["error", "warning", "info", "hint"];
const found = diagnostics.map((d) => ({
  severity: severity[d.severity],
  code: d.code,
  message: d.message,
  path: d.path.join("/"),
}));
const blocking = found.filter((d) => d.severity === "error" || d.severity === "warning");
console.log(
  JSON.stringify({
    parsed: document !== undefined,
    channels: document ? document.channels().length : 0,
    operations: document ? document.operations().length : 0,
    messages: document ? document.components().messages().length : 0,
    diagnostics: found,
  }),
);
process.exit(document !== undefined && blocking.length === 0 ? 0 : 1);

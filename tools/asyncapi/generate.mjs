// Generates a subscriber's Python (Pydantic) models from the AsyncAPI document with AsyncAPI
// Modelina: one module holding a model per message payload (the envelope with its typed payload).
//   node generate.mjs ../../docs/generated/asyncapi.json OUT.py
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";
import { PythonGenerator, PYTHON_PYDANTIC_PRESET } from "@asyncapi/modelina";

const [source, target] = process.argv.slice(2);
const path = resolve(source);
const { document } = await new Parser().parse(readFileSync(path, "utf8"), { source: path });
if (!document) throw new Error(`${path} does not parse`);
const generator = new PythonGenerator({ presets: [PYTHON_PYDANTIC_PRESET] });
const models = await generator.generate(document);
// Modelina 5.10.1 writes a string const as ''value'' (a syntax error): one quote pair is right.
const body = models
  .filter((m) => m.modelName)
  .map((m) => m.result.replace(/default=''([^']*)''/g, "default='$1'"))
  .join("\n\n");
writeFileSync(
  target,
  "from __future__ import annotations\nfrom enum import Enum\nfrom typing import Any, Dict, List, Optional, Union\nfrom pydantic import BaseModel, Field, model_serializer, model_validator\n\n" +
    body +
    "\n",
);
console.log(JSON.stringify({ models: models.map((m) => m.modelName) }));

#!/usr/bin/env python3
"""Derive Latch's slim configuration key file from Ory Kratos' config JSON Schema.

The output keeps only what validation needs (structure and constraints) and drops
all prose, so it is small enough to embed in the binary. Rerunning the script on
the same input produces byte-identical output.

Usage: scripts/gen-config-keys.py [SCHEMA] [OUTPUT]

Defaults: ../shared/reference/kratos-config.schema.json -> crates/latch/src/config/kratos-config.keys.json
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_IN = HERE.parent.parent / "shared" / "reference" / "kratos-config.schema.json"
DEFAULT_OUT = HERE.parent / "crates" / "latch" / "src" / "config" / "kratos-config.keys.json"

# Keywords whose value is a single sub-schema.
SCHEMA_VALUED = {"additionalProperties", "additionalItems", "not", "if", "then", "else",
                 "contains", "propertyNames"}
# Keywords whose value is a list of sub-schemas.
SCHEMA_LIST_VALUED = {"oneOf", "anyOf", "allOf"}
# Keywords whose value maps names to sub-schemas.
SCHEMA_MAP_VALUED = {"properties", "patternProperties", "definitions"}
# Keywords copied verbatim (plain data, no sub-schemas inside).
VERBATIM = {"type", "enum", "const", "pattern", "required", "format", "default",
            "$schema", "$id", "$ref", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems",
            "maxItems", "uniqueItems", "minProperties", "maxProperties"}
# The one reference that points outside the document (needs the network).
REMOTE_REFS = {"ory://tracing-config": {"type": "object"}}

NOTE = ("Derived from Ory Kratos' configuration JSON Schema (Apache-2.0) by "
        "gen-config-keys.py; prose removed, validation structure kept.")


def slim(node):
    """Return a copy of a schema node with only validation keywords kept."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise TypeError(f"unexpected schema node: {node!r}")
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in REMOTE_REFS:
        return dict(REMOTE_REFS[ref])
    out = {}
    for key, value in node.items():
        if key in VERBATIM:
            out[key] = value
        elif key in SCHEMA_VALUED:
            out[key] = slim(value)
        elif key in SCHEMA_LIST_VALUED:
            out[key] = [slim(v) for v in value]
        elif key in SCHEMA_MAP_VALUED:
            out[key] = {name: slim(v) for name, v in value.items()}
        elif key == "items":
            out[key] = [slim(v) for v in value] if isinstance(value, list) else slim(value)
        elif key == "dependencies":
            out[key] = {name: (v if isinstance(v, list) else slim(v)) for name, v in value.items()}
        # Everything else (description, title, examples, $comment, editor hints,
        # misspelled keywords) carries no validation meaning and is dropped.
    return out


def main():
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_IN
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT
    schema = json.loads(src.read_text(encoding="utf-8"))
    out = slim(schema)
    out["x-latch-source"] = NOTE
    text = json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    dst.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {dst} ({len(text) + 1} bytes)")


if __name__ == "__main__":
    main()

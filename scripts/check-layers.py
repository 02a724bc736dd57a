#!/usr/bin/env python3
"""Checks the module layering of crates/latch/src (ADR 0004):

- no import cycle that passes through two of `deps`, `flow`, `strategy`, `session`;
- no import cycle between the files of `flow/`;
- `strategy/` never imports the engine (`flow`) nor `http`; `flow/` never imports `http`;
- `axum` appears only under `http/`, `app.rs` and `main.rs`.

Imports are read from `crate::x` / `super::x` paths outside `#[cfg(test)] mod tests` and
comments. Exits 1 with the offending cycle or file on failure.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "latch", "src")
WATCHED = {"deps", "flow", "strategy", "session"}


def module_parts(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return rel[:-1] if rel[-1] == "mod" else rel


def strip(src):
    src = re.split(r"#\[cfg\(test\)\]\s*mod tests", src)[0]
    return re.sub(r"//[^\n]*", "", src)


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    tops = {f[:-3] if f.endswith(".rs") else f for f in os.listdir(ROOT)}
    top_edges, flow_edges, failures = {}, {}, []
    for dirpath, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = module_parts(path)
            raw = open(path, encoding="utf-8").read()
            src = strip(raw)
            top = parts[0]
            rel = os.path.relpath(path, ROOT)
            if "axum" in src and top not in ("http", "app", "main"):
                failures.append(f"{rel}: uses axum outside http/")
            for m in re.finditer(r"crate::([a-z_]+)(?:::([a-z_]+))?", src):
                target = m.group(1)
                if target in tops and target != top:
                    top_edges.setdefault(top, set()).add(target)
                if top == "strategy" and target in ("flow", "http"):
                    failures.append(f"{rel}: strategy imports crate::{target}")
                if top == "flow" and target == "http":
                    failures.append(f"{rel}: flow imports crate::http")
                if top == "flow" and target == "flow" and len(parts) > 1 and m.group(2):
                    if m.group(2) != parts[1]:
                        flow_edges.setdefault(parts[1], set()).add(m.group(2))
            if top == "flow" and len(parts) == 2:
                for m in re.finditer(r"super::([a-z_]+)", src):
                    if m.group(1) != parts[1]:
                        flow_edges.setdefault(parts[1], set()).add(m.group(1))
    for comp in sccs(top_edges):
        if len(WATCHED & set(comp)) > 1:
            failures.append("import cycle through " + ", ".join(comp))
    for comp in sccs(flow_edges):
        failures.append("import cycle inside flow/: " + ", ".join(comp))
    for f in failures:
        print("layering:", f)
    if failures:
        sys.exit(1)
    print("layering: ok")


if __name__ == "__main__":
    main()

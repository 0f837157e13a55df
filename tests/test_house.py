"""The house of decaylib: rooms in one order, no cycles, no private names across rooms, one vocabulary.

Walks every import in the package with the AST, those inside functions included (issue 18).
"""

from __future__ import annotations

import ast
from pathlib import Path

import decaylib
from decaylib import schema

PKG = Path(decaylib.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(PKG.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


MODULES = _modules()


def _target(mod: str, node: ast.AST) -> list[tuple[str, str | None, bool]]:
    """(imported module, imported name or None, is a module import) for one import node of ``mod``."""
    pkg = mod if MODULES[mod].name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    if isinstance(node, ast.ImportFrom):
        if node.level:
            parts = pkg.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for a in node.names:
            full = f"{base}.{a.name}"
            out.append((full, None, True) if full in MODULES else (base, a.name, False))
    else:
        out = [(a.name, None, True) for a in node.names]
    return [(m, n, is_mod) for m, n, is_mod in out if m == "decaylib" or m.startswith("decaylib.")]


def _edges():
    """Every package-internal import: (importer, imported module, name, line, inside a function)."""
    found = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, name, _ in _target(mod, node):
                    while target not in MODULES and "." in target:
                        target = target.rsplit(".", 1)[0]
                    found.append((mod, target, name, node.lineno, id(node) not in top))
    return found


EDGES = _edges()


def _room(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_rooms_are_declared_once_and_exist():
    assert len(decaylib.ROOMS) == len(set(decaylib.ROOMS))
    rooms = {_room(m) for m in MODULES} - {""}
    assert rooms == set(decaylib.ROOMS), rooms ^ set(decaylib.ROOMS)
    assert sum((PKG / r).is_dir() for r in decaylib.ROOMS) >= 6  # subpackages, not a flat folder
    for r in decaylib.ROOMS:
        assert r in decaylib.__doc__, f"the package docstring does not list the room {r}"


def test_imports_run_down_the_rooms():
    rank = {r: i for i, r in enumerate(decaylib.ROOMS)}
    against = [f"{m}:{line} imports {t}" for m, t, _, line, _ in EDGES
               if _room(t) and _room(m) and rank[_room(t)] > rank[_room(m)]]
    assert not against, "imports against the order of decaylib.ROOMS:\n" + "\n".join(against)


def test_no_import_cycles_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, t, *_ in EDGES:
        if t != m and t != "decaylib":
            graph[m].add(t)
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_names_across_rooms():
    bad = [f"{m}:{line} imports {t}.{n}" for m, t, n, line, _ in EDGES
           if n and n.startswith("_") and not n.startswith("__") and _room(m) != _room(t)]
    assert not bad, "\n".join(bad)


def _imports_torch() -> set[str]:
    """Modules that import PyTorch when imported (directly or through a top-level package import)."""
    direct = {m for m, p in MODULES.items()
              if any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
                  (a.name if isinstance(n, ast.Import) else (n.module or "")).split(".")[0] == "torch" for a in n.names)
                  for n in ast.parse(p.read_text(encoding="utf-8")).body)}
    top = {(m, t) for m, t, _, _, inside in EDGES if not inside}
    grew = True
    while grew:
        more = {m for m, t in top if t in direct} - direct
        direct |= more
        grew = bool(more)
    return direct


TORCH = _imports_torch()


def test_no_function_level_import_of_a_module_below():
    """An import inside a function is allowed for one reason only: to keep PyTorch (seconds to import)
    out of a module that does not need it for most of its work. Never to dodge a cycle."""
    rank = {r: i for i, r in enumerate(decaylib.ROOMS)}
    hidden = [f"{m}:{line} imports {t} inside a function" for m, t, _, line, inside in EDGES
              if inside and _room(t) and _room(m) and rank[_room(t)] <= rank[_room(m)]
              and not (t in TORCH and m not in TORCH)]
    assert not hidden, "\n".join(hidden)


def test_only_the_forecaster_pulls_in_torch():
    """The data, evaluation, decay, recommend and workflow rooms import without PyTorch (notebooks 01,
    02 and the report start in about a second)."""
    import subprocess
    import sys

    assert TORCH and all(_room(m) == "forecast" for m in TORCH), sorted(TORCH)
    light = sorted(m for m in MODULES if m not in TORCH and _room(m) not in ("", "plots"))
    code = "import sys\n" + "".join(f"import {m}\n" for m in light) + "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "importing the rooms outside forecast/ imported torch"


def _string_constants(tree: ast.AST):
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_event_names_are_written_only_in_schema():
    names = set(schema.EVENT_TYPES)
    found = []
    for mod, path in MODULES.items():
        if mod == "decaylib.schema":
            continue
        for node in _string_constants(ast.parse(path.read_text(encoding="utf-8"))):
            if node.value in names:
                found.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.value!r}")
    assert not found, "event names outside decaylib/schema.py:\n" + "\n".join(found)




def test_column_sets_are_written_only_in_schema():
    """A tuple or list of column names that schema defines (the pair, the panel key, the event log,
    the count columns ...) is not written out again anywhere else."""
    sets = {tuple(v): k for k, v in vars(schema).items() if k.isupper() and isinstance(v, tuple) and len(v) > 1}
    found = []
    for mod, path in MODULES.items():
        if mod == "decaylib.schema":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List)) and node.elts and all(isinstance(e, ast.Constant) for e in node.elts):
                name = sets.get(tuple(e.value for e in node.elts))
                if name:
                    found.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: schema.{name}")
    assert not found, "column sets written outside decaylib/schema.py:\n" + "\n".join(found)


def test_every_exported_name_exists():
    """``__all__`` lists only names the module defines (nothing left behind by a move)."""
    import importlib

    for mod in MODULES:
        m = importlib.import_module(mod)
        missing = [n for n in getattr(m, "__all__", ()) if not hasattr(m, n)]
        assert not missing, f"{mod}.__all__ names {missing}"


def test_every_public_name_says_which_notebook_teaches_it():
    """Like d2l's chapter tags: the library indexes the tutorial (``Notebook 04.``, ``Notebooks 02 and 09.``)."""
    import re

    missing = []
    for mod, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if not re.search(r"[Nn]otebooks? \d\d", ast.get_docstring(node) or ""):
                    missing.append(f"{mod}.{node.name}")
    assert not missing, "public names whose docstring names no notebook:\n" + "\n".join(missing)

"""The package's shape: every import of the package's own modules (at the top, inside functions, or
named in a string for ``importlib``) goes down the layers, none closes a circle, and every module
imports on its own in a fresh interpreter."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "recbole_llmemb"
#: lowest first; a module imports only from lower layers or from its own unit (package or module)
LAYERS = [
    ["recbole_llmemb.errors"],
    ["recbole_llmemb.compat", "recbole_llmemb.settings", "recbole_llmemb.losses", "recbole_llmemb.distributed"],
    ["recbole_llmemb.data"],
    ["recbole_llmemb.generator", "recbole_llmemb.model"],
    ["recbole_llmemb.evaluation"],
    ["recbole_llmemb.pipeline"],
]
MODULE_STRING = re.compile(r"^recbole_llmemb(\.[A-Za-z_]+)+$")


def module_names():
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def import_graph():
    """module -> the package modules it imports anywhere in its file (and their parent packages)."""
    names = module_names()
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            found = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value):
                found = [node.value]  # importlib.import_module("recbole_llmemb....") and the like
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in node.names]
            for target in found:
                while target and target not in names:
                    target = target.rpartition(".")[0]
                while target.startswith("recbole_llmemb"):  # importing a.b.c runs a and a.b first
                    if target != name and not name.startswith(target + "."):  # (a module's own packages are under way)
                        targets.add(target)
                    target = target.rpartition(".")[0]
        graph[name] = targets
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def unit_of(module):
    """``(layer, unit)`` of a module: the entry of :data:`LAYERS` it falls under."""
    for layer, units in enumerate(LAYERS):
        for unit in units:
            if module == unit or module.startswith(unit + "."):
                return layer, unit
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def upward_imports(graph):
    """Every import that does not go down the layers (the root package, which only applies the
    compatibility patches, is left out)."""
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if "recbole_llmemb" in (src, dst):
                continue
            (src_layer, src_unit), (dst_layer, dst_unit) = unit_of(src), unit_of(dst)
            if dst_unit != src_unit and dst_layer >= src_layer:
                bad.append(f"{src} -> {dst}")
    return sorted(bad)


def test_the_graph_sees_lazy_and_string_imports(tmp_path, monkeypatch):
    graph = import_graph()
    assert "recbole_llmemb.model" in graph["recbole_llmemb.pipeline.config"]  # get_model_class imports it inside a function
    assert "recbole_llmemb.pipeline.training" in graph["recbole_llmemb.pipeline.collaborative"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # a package made here: a string import that climbs up and a lazy one that closes a circle
    fake = tmp_path / "recbole_llmemb"
    for sub in ("data", "pipeline"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "data" / "rows.py").write_text('import importlib\nX = importlib.import_module("recbole_llmemb.pipeline.run")\n')
    (fake / "pipeline" / "run.py").write_text("def f():\n    from recbole_llmemb.data import rows\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    made = import_graph()
    assert upward_imports(made) == ["recbole_llmemb.data.rows -> recbole_llmemb.pipeline",
                                    "recbole_llmemb.data.rows -> recbole_llmemb.pipeline.run"]
    assert find_cycle(made) is not None


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_every_import_goes_down_the_layers():
    assert upward_imports(import_graph()) == []


@pytest.mark.parametrize("module", sorted(module_names()))
def test_each_module_imports_alone(module):
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                         cwd=PACKAGE.parent, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]

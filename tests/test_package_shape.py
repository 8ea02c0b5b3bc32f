"""The package's shape: no import circle (lazy imports inside functions count), layers below the
pipeline never import it, and every module imports on its own in a fresh interpreter."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "recbole_llmemb"
#: the pipeline: only the command-line entry points sit above it
PIPELINE = "recbole_llmemb.quick_start"


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


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "recbole_llmemb.model" in graph["recbole_llmemb.config"]  # get_model_class imports it inside a function
    assert "recbole_llmemb.training" in graph["recbole_llmemb.collaborative"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_nothing_below_the_pipeline_imports_it():
    importers = sorted(m for m, targets in import_graph().items() if PIPELINE in targets)
    assert importers == [], importers


@pytest.mark.parametrize("module", sorted(module_names()))
def test_each_module_imports_alone(module):
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                         cwd=PACKAGE.parent, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]

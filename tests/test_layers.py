"""The worker's layers import one way (workers/README.md): each module only what is below it.

An upward conversation is a method on an object handed down, never an import;
this reads every module's imports (top level and inside functions) and checks
them against the order, and that no module has grown past what one person can
hold in their head.
"""

import ast
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parent.parent / "workers"

# Bottom first. A module may import only modules listed before it.
ORDER = ["counters", "xprt", "tls", "loop", "channel", "balance", "pool", "runtime",
         "h1_back", "stream", "tunnel", "h1_front", "txlog", "listener", "runtime_cmds",
         "worker"]
MAX_LINES = 620


def workers_imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workers."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("workers."))
    return names


def test_every_module_is_placed_in_the_order():
    modules = {p.stem for p in WORKERS.glob("*.py") if p.stem != "__init__"}
    assert modules == set(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_a_module_imports_only_what_is_below_it(name):
    below = set(ORDER[:ORDER.index(name)])
    upward = workers_imports(WORKERS / (name + ".py")) - below
    assert not upward, "%s imports %s, which is not below it" % (name, sorted(upward))


@pytest.mark.parametrize("name", ORDER)
def test_no_module_is_too_long_to_hold_in_ones_head(name):
    lines = len((WORKERS / (name + ".py")).read_text().splitlines())
    assert lines <= MAX_LINES, "%s.py has %d lines" % (name, lines)

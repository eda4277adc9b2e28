"""The consensus package must stay free of I/O, clocks and global randomness."""

import ast
from pathlib import Path

import consensus

FORBIDDEN_MODULES = {"asyncio", "socket", "time", "os", "random", "threading", "plyvel", "node", "subprocess"}
PACKAGE_DIR = Path(consensus.__file__).parent


def imported_roots(path: Path) -> set[str]:
    """Return the top-level module names a file imports at module level or inside functions."""
    roots = set()
    for tree_node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(tree_node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in tree_node.names)
        elif isinstance(tree_node, ast.ImportFrom) and tree_node.level == 0 and tree_node.module:
            roots.add(tree_node.module.split(".")[0])
    return roots


def test_package_has_modules():
    assert len(list(PACKAGE_DIR.glob("*.py"))) >= 8


def test_no_forbidden_imports():
    offenders = {}
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        forbidden = imported_roots(path) & FORBIDDEN_MODULES
        if forbidden:
            offenders[path.name] = sorted(forbidden)
    assert offenders == {}


def test_scanner_detects_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import time\n    from os import path\n")
    assert imported_roots(sample) & FORBIDDEN_MODULES == {"time", "os"}

"""The layer rules of the project and the repository layout.

import-linter checks the ``[tool.importlinter]`` contracts of ``pyproject.toml`` on the static imports. An AST
scan here checks the same layer and forbidden rules on the imports import-linter cannot see: dynamic imports
(``importlib.import_module("…")``, ``__import__("…")`` with a literal name; a dynamic import whose name is not a
literal cannot be checked and is refused). It also checks that TensorFlow and Keras are imported only by
``ich_viewer/inference/tf_runtime.py``. Both are shown to catch violations injected into a copy of the tree.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ich_viewer", "training")
#: The one module of ich_viewer that may import TensorFlow and Keras.
TF_RUNTIME = "ich_viewer.inference.tf_runtime"
TF_MODULES = ("tensorflow", "keras")


# -- the rules, read from pyproject.toml ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Modules in ``sources`` may not import modules in ``forbidden`` (``allowed``: exact "a -> b" exceptions)."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: frozenset[tuple[str, str]] = frozenset()


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _layer_rules(contract: dict) -> list[Rule]:
    """One rule per layer (or independent sibling): nothing in it imports a higher layer or an independent sibling."""
    rules = []
    for container in contract.get("containers", [""]):
        prefix = f"{container}." if container else ""
        layers = []
        for layer in contract["layers"]:
            independent = "|" in layer
            names = [n.strip() for n in layer.replace("|", ":").split(":")]
            layers.append(([prefix + n for n in names], independent))
        for k, (names, independent) in enumerate(layers):
            higher = [m for above, _ in layers[:k] for m in above]
            for name in names:
                siblings = [n for n in names if n != name] if independent else []
                rules.append(Rule(f"{contract['name']} ({name})", (name,), tuple(higher + siblings)))
    return rules


def load_rules(pyproject: Path = ROOT / "pyproject.toml") -> list[Rule]:
    """Return the layer and forbidden rules of the ``[tool.importlinter]`` contracts, plus the TF rule."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            rules += _layer_rules(contract)
        elif contract["type"] == "forbidden":
            allowed = frozenset(
                tuple(part.strip() for part in line.split("->"))
                for line in contract.get("ignore_imports", [])
            )
            rules.append(
                Rule(
                    contract["name"],
                    tuple(contract["source_modules"]),
                    tuple(contract["forbidden_modules"]),
                    allowed,
                )
            )
    # independent of the contracts: the one place TensorFlow is imported
    rules.append(
        Rule(
            f"only {TF_RUNTIME} imports TensorFlow",
            ("ich_viewer",),
            TF_MODULES,
            frozenset((TF_RUNTIME, m) for m in TF_MODULES),
        )
    )
    return rules


# -- the scan ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One import in a module: ``target`` is None for a dynamic import whose name is not a literal."""

    module: str
    path: str
    line: int
    target: str | None
    dynamic: bool


def _module_name(path: Path, base: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(base).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _resolve(name: str, level: int, module: str, is_package: bool) -> str:
    if level == 0:
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _dynamic_call(node: ast.Call) -> bool:
    """``importlib.import_module(…)``, ``import_module(…)`` or ``__import__(…)``."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def scan_imports(base: Path, packages: tuple[str, ...] = PACKAGES) -> list[Found]:
    """Every static and dynamic import of every module of ``packages`` under ``base``."""
    found: list[Found] = []
    for package in packages:
        for path in sorted((base / package).rglob("*.py")):
            module, is_package = _module_name(path, base)
            rel = str(path.relative_to(base))
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [Found(module, rel, node.lineno, a.name, False) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    target = _resolve(node.module or "", node.level, module, is_package)
                    found.append(Found(module, rel, node.lineno, target, False))
                elif isinstance(node, ast.Call) and _dynamic_call(node):
                    name = _literal(node.args[0] if node.args else None)
                    if name is not None and name.startswith("."):
                        anchor = next((k.value for k in node.keywords if k.arg == "package"), None)
                        anchor = (
                            anchor if anchor is not None else (node.args[1] if len(node.args) > 1 else None)
                        )
                        anchor_name = _literal(anchor)
                        level = len(name) - len(name.lstrip("."))
                        name = (
                            None
                            if anchor_name is None
                            else _resolve(name.lstrip("."), level, anchor_name, is_package=True)
                        )
                    found.append(Found(module, rel, node.lineno, name, True))
    return found


def find_violations(base: Path, rules: list[Rule] | None = None, *, dynamic_only: bool = False) -> list[str]:
    """Return one line per import under ``base`` that breaks a rule (empty when all hold).

    Parameters
    ----------
    base : Path
        The folder holding the ``ich_viewer`` and ``training`` packages (the repository, or a copy).
    rules : list of Rule, optional
        Default :func:`load_rules` of the repository's pyproject.toml.
    dynamic_only : bool
        Check only dynamic imports (import-linter checks the static ones).
    """
    rules = load_rules() if rules is None else rules
    problems = []
    for item in scan_imports(base):
        if dynamic_only and not item.dynamic:
            continue
        where = f"{item.path}:{item.line}"
        if item.target is None:
            problems.append(f"{where}: dynamic import of a computed name cannot be checked")
            continue
        for rule in rules:
            if not _within(item.module, rule.sources) or not _within(item.target, rule.forbidden):
                continue
            if any(_within(item.target, (b,)) for a, b in rule.allowed if item.module == a):
                continue
            kind = "dynamically imports" if item.dynamic else "imports"
            problems.append(f"{where}: {item.module} {kind} {item.target} ({rule.name})")
    return problems


# -- the tests --------------------------------------------------------------------------------------------------


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_no_dynamic_import_breaks_a_rule() -> None:
    assert find_violations(ROOT, dynamic_only=True) == []


def test_only_tf_runtime_imports_tensorflow_or_keras() -> None:
    tf_rule = [r for r in load_rules() if r.name.startswith("only ")]
    assert find_violations(ROOT, tf_rule) == []
    importers = {f.module for f in scan_imports(ROOT, ("ich_viewer",)) if f.target in TF_MODULES}
    assert importers == {TF_RUNTIME}


def test_the_rules_express_the_agreed_arrows() -> None:
    rules = load_rules()

    def forbidden(source: str, target: str) -> bool:
        return any(
            _within(source, r.sources) and _within(target, r.forbidden) and (source, target) not in r.allowed
            for r in rules
        )

    below_qt = ("ich_viewer.inference", "ich_viewer.phantom", "ich_viewer.dicom", "ich_viewer.core")
    for lower in below_qt:
        assert forbidden(lower, "ich_viewer.qt"), lower
        assert not forbidden("ich_viewer.qt", lower), lower
    assert forbidden("ich_viewer.inference", "ich_viewer.phantom")
    assert forbidden("ich_viewer.phantom", "ich_viewer.inference")
    assert forbidden("ich_viewer.dicom", "ich_viewer.phantom") and forbidden(
        "ich_viewer.dicom", "ich_viewer.inference"
    )
    assert forbidden("ich_viewer.core", "ich_viewer.dicom")
    assert not forbidden("ich_viewer.phantom", "ich_viewer.dicom")
    for package in ("ich_viewer.core", "ich_viewer.dicom", "ich_viewer.phantom"):
        for external in ("PySide6", "pyqtgraph", "tensorflow", "keras"):
            assert forbidden(package, external), (package, external)
    for package in ("ich_viewer.qt", "ich_viewer.core", "ich_viewer.self_test", "ich_viewer.__main__"):
        assert forbidden(package, "training"), package
    assert forbidden("training.train", "ich_viewer.qt") and forbidden("training", "PySide6")
    assert not forbidden("training.train", "tensorflow") and not forbidden(TF_RUNTIME, "tensorflow")
    assert forbidden("ich_viewer.inference.engine", "tensorflow")
    for leaf in ("ich_viewer.errors", "ich_viewer.resources", "ich_viewer.schemas"):
        assert forbidden(leaf, "ich_viewer.core") and forbidden(leaf, "ich_viewer.qt"), leaf
        assert not forbidden("ich_viewer.core.labels", leaf), leaf


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")


def test_the_scan_catches_injected_dynamic_and_tensorflow_imports(tmp_path: Path) -> None:
    base = _copy_tree(tmp_path)
    assert find_violations(base, dynamic_only=True) == []
    _append(
        base / "ich_viewer/core/labels.py",
        'def _sneak():\n    import importlib\n\n    return importlib.import_module("PySide6.QtWidgets")',
    )
    _append(base / "ich_viewer/dicom/records.py", 'def _sneak():\n    return __import__("tensorflow")')
    _append(
        base / "ich_viewer/phantom/anatomy.py",
        'def _sneak():\n    from importlib import import_module\n\n    return import_module(".engine", "ich_viewer.inference")',
    )
    _append(
        base / "ich_viewer/inference/engine.py",
        'def _sneak():\n    import importlib\n\n    return importlib.import_module("ich_viewer.qt.app")',
    )
    _append(base / "ich_viewer/qt/__init__.py", 'def _sneak():\n    return __import__("training.train")')
    _append(base / "training/__init__.py", 'def _sneak():\n    return __import__("ich_viewer.qt")')
    _append(base / "ich_viewer/core/windowing.py", "def _sneak(name):\n    return __import__(name)")
    _append(base / "ich_viewer/inference/gradcam.py", "def _sneak():\n    import keras\n\n    return keras")

    problems = find_violations(base)
    flagged = {p.split(":", 1)[0] for p in problems}
    assert flagged == {
        "ich_viewer/core/labels.py",
        "ich_viewer/dicom/records.py",
        "ich_viewer/phantom/anatomy.py",
        "ich_viewer/inference/engine.py",
        "ich_viewer/qt/__init__.py",
        "training/__init__.py",
        "ich_viewer/core/windowing.py",
        "ich_viewer/inference/gradcam.py",
    }, problems
    text = "\n".join(problems)
    assert "ich_viewer.core.labels dynamically imports PySide6.QtWidgets" in text
    assert "ich_viewer.phantom.anatomy dynamically imports ich_viewer.inference.engine" in text
    assert "ich_viewer.inference.gradcam imports keras (only ich_viewer.inference.tf_runtime" in text
    assert "ich_viewer/core/windowing.py" in text and "computed name cannot be checked" in text
    # import-linter sees the static keras import too, but none of the dynamic ones
    assert {p.split(":", 1)[0] for p in find_violations(base, dynamic_only=True)} == flagged - {
        "ich_viewer/inference/gradcam.py"
    }


def test_import_linter_catches_an_injected_static_violation(tmp_path: Path) -> None:
    base = _copy_tree(tmp_path)
    _append(base / "ich_viewer/dicom/records.py", "def _sneak():\n    import ich_viewer.phantom.study")
    _append(base / "ich_viewer/core/labels.py", "def _sneak():\n    import tensorflow")
    _append(base / "ich_viewer/inference/gradcam.py", "def _sneak():\n    import keras")
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = dict(os.environ, PYTHONPATH=str(base))
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=base, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "ich_viewer.dicom.records -> ich_viewer.phantom.study" in out
    assert "ich_viewer.core.labels -> tensorflow" in out
    assert "ich_viewer.inference.gradcam -> keras" in out


@pytest.mark.parametrize(
    ("name", "level", "module", "is_package", "expected"),
    [
        ("series", 1, "ich_viewer.dicom.report", False, "ich_viewer.dicom.series"),
        ("core.labels", 2, "ich_viewer.dicom.report", False, "ich_viewer.core.labels"),
        ("records", 1, "ich_viewer.dicom", True, "ich_viewer.dicom.records"),
        ("", 1, "ich_viewer.dicom.report", False, "ich_viewer.dicom"),
        ("numpy", 0, "ich_viewer.dicom.report", False, "numpy"),
    ],
)
def test_relative_imports_resolve(
    name: str, level: int, module: str, is_package: bool, expected: str
) -> None:
    assert _resolve(name, level, module, is_package) == expected


def test_top_level_layout_is_exactly_the_agreed_one() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top = {line.split("/", 1)[0] for line in tracked.splitlines() if line}
    visible = {name for name in top if not name.startswith(".")}
    assert visible <= {
        "ich_viewer",
        "resources",
        "training",
        "tests",
        "pyproject.toml",
        "build.spec",
        "README.md",
        "LICENSE",
    }


def test_the_license_is_the_apache_2_0_text_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["project"]["license"] in ({"text": "Apache-2.0"}, "Apache-2.0")


def test_core_imports_without_qt_or_tensorflow() -> None:
    code = (
        "import sys, ich_viewer.core.windowing, ich_viewer.core.labels, ich_viewer.dicom.records;"
        "bad=[m for m in ('PySide6','tensorflow','keras','pyqtgraph') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr

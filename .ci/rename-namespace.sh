#!/usr/bin/env bash
# The suite's packages under one name: `scenarios` and `reports` become `velro_perf.scenarios`
# and `velro_perf.reports` (issue 17, item 5). The repository keeps its top-level scenarios/
# and reports/ folders (the project's layout); src/velro_perf/ links to them, and the wheel
# ships them through those links, so no installed environment has a top-level `reports`.
#
# Idempotent: it can be run again on a tree that merged other branches after it ran, and
# rewrites what they added. It does the whole rename by itself:
#   1. the links src/velro_perf/{scenarios,reports} -> ../../{scenarios,reports};
#   2. in every .py file of the tree (not .venv*, .git, nor through links): imports
#      (`from scenarios.x import`, `import reports.y`, also inside strings of generated code)
#      and module names in strings ("reports.x", f"scenarios.{...}", PackageLoader("reports"));
#      prose ("the gate's reports.stats") is left as written: it names the folder's module;
#   3. pyproject.toml: the wheel's packages, mypy's packages, ruff's first-party names;
#   4. ruff's import sorting and formatter over the files it changed.
#
#   bash .ci/rename-namespace.sh        # from anywhere in the clone
set -euo pipefail
cd "$(dirname "$0")/.."

for pkg in scenarios reports; do
  link="src/velro_perf/$pkg"
  if [ ! -L "$link" ]; then
    if [ -e "$link" ]; then
      echo "rename-namespace: $link exists and is not a link; move it away first" >&2
      exit 2
    fi
    ln -s "../../$pkg" "$link"
  fi
done

changed_list="$(mktemp)"
trap 'rm -f "$changed_list"' EXIT

python3 - "$changed_list" <<'PY'
import os
import re
import sys
from pathlib import Path

PACKAGES = ("scenarios", "reports")
ROOT = Path.cwd()
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


pkgs = "|".join(PACKAGES)
# `from scenarios.x import`, `from reports import charts`, `import scenarios.hooks`: anywhere
# in a line, so generated code in strings is renamed too; `velro_perf.` before the name
# does not match, which keeps a second run from prefixing twice
IMPORT = re.compile(rf"\b(from|import)(\s+)({pkgs})(?=[\s.,;)\"']|$)", re.MULTILINE)


def modules(pkg: str) -> list[str]:
    """The package's modules and subpackages as the tree has them now (a merged branch's
    new modules included), longest first."""
    names = {p.stem for p in (ROOT / pkg).glob("*.py") if p.stem != "__init__"}
    names |= {p.parent.name for p in (ROOT / pkg).glob("*/__init__.py")}
    return sorted(names, key=len, reverse=True)


# a module named in a string: "reports.stats", "scenarios.hooks.install", f"reports.{name}";
# only the packages' own module names, so a file name like "reports.json" stays
MODULES = "|".join(re.escape(m) for pkg in PACKAGES for m in modules(pkg))
STRING = re.compile(rf"([\"'])({pkgs})\.(?=(?:{MODULES})\b|\{{)")
# Jinja's PackageLoader("reports", "templates")
LOADER = re.compile(rf"PackageLoader\(\s*([\"'])({pkgs})\1")


def rename_python(text: str) -> str:
    text = IMPORT.sub(lambda m: f"{m[1]}{m[2]}velro_perf.{m[3]}", text)
    text = STRING.sub(lambda m: f"{m[1]}velro_perf.{m[2]}.", text)
    return LOADER.sub(lambda m: f"PackageLoader({m[1]}velro_perf.{m[2]}{m[1]}", text)


def files(suffix: str):
    for dirpath, dirnames, filenames in os.walk(ROOT):  # links are not followed
        dirnames[:] = [
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv")
            and not (Path(dirpath) / d).is_symlink()
        ]
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(suffix) and not path.is_symlink():
                yield path


changed = []
for path in files(".py"):
    text = path.read_text(encoding="utf-8")
    new = rename_python(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        changed.append(path)

pyproject = ROOT / "pyproject.toml"
text = pyproject.read_text(encoding="utf-8")
new = text
# the wheel: velro and velro_perf, which carries scenarios/ and reports/ through its links
new = re.sub(
    r'(\[tool\.hatch\.build\.targets\.wheel\]\s*\npackages\s*=\s*)\[[^\]]*\]',
    r'\1["src/velro", "src/velro_perf"]',
    new,
)


def drop(match: re.Match[str]) -> str:
    names = [n for n in re.findall(r'"([^"]+)"', match[2]) if n not in PACKAGES]
    return match[1] + "[" + ", ".join(f'"{n}"' for n in names) + "]"


# mypy checks them as velro_perf's subpackages; ruff knows them as velro_perf's
new = re.sub(r'(\[tool\.mypy\][^\[]*?\npackages\s*=\s*)\[([^\]]*)\]', drop, new, flags=re.S)
new = re.sub(r'(\nknown-first-party\s*=\s*)\[([^\]]*)\]', drop, new)
if new != text:
    pyproject.write_text(new, encoding="utf-8")
    changed.append(pyproject)

Path(sys.argv[1]).write_text(
    "".join(f"{p.relative_to(ROOT)}\n" for p in changed if p.suffix == ".py"), encoding="utf-8"
)
print(f"rename-namespace: {len(changed)} files rewritten")
PY

# the imports' order: velro_perf.reports now sorts among velro_perf's own imports
ruff=".venv/bin/ruff"
[ -x "$ruff" ] || ruff="$(command -v ruff || true)"
if [ -s "$changed_list" ]; then
  if [ -n "$ruff" ]; then
    xargs -a "$changed_list" "$ruff" check --quiet --select I --fix --exit-zero
    xargs -a "$changed_list" "$ruff" format --quiet
  else
    echo "rename-namespace: ruff not found; run 'make fmt' to sort the imports" >&2
  fi
fi

# nothing may still import the old names (a second copy of a module breaks isinstance and
# Locust's event handlers); `git grep` sees tracked files only, so plain grep
if grep -rnE --include='*.py' --exclude-dir='.venv*' --exclude-dir=.git \
  "^\s*(from|import)\s+(scenarios|reports)\b" . ; then
  echo "rename-namespace: the imports above still name the old top-level packages" >&2
  exit 1
fi
echo "rename-namespace: done"

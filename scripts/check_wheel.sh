#!/usr/bin/env bash
# The packaged install, as a user gets it: build a wheel from the checkout's files, install it
# with no extras into a fresh virtual environment, and from a directory outside the repository
# run `profuser --help` and `profuser validate demo` (the config shipped in the package).
# Any failing step fails the script. KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/profuser-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "check_wheel: keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
step() { echo "check_wheel: [$SECONDS s] $*"; }

# Build from a copy of the files git would ship (tracked and new, not ignored): a build
# inside the checkout could pick up stale modules from an old build/ directory.
step "copying the checkout's files"
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$tmp/src"
step "building the wheel"
"$PY" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src"
wheel=$(ls "$tmp"/dist/profuser-*.whl)
"$PY" - "$wheel" <<'PYTHON'
import sys, zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = ["profuser/configs/demo.yaml", "profuser/configs/paper.yaml",
          "profuser/configs/accelerate/ddp.yaml"]
missing = [n for n in wanted if n not in names]
if missing:
    sys.exit(f"check_wheel: not in the wheel: {', '.join(missing)}")
PYTHON

step "installing $(basename "$wheel") (no extras) into a fresh venv"
"$PY" -m venv "$tmp/venv"
# --no-compile: byte-compiling every installed module would be most of the CPU time here.
# pip warns about every package the local index mirrors lack; those lines go.
pip() {
  "$tmp/venv/bin/python" -m pip install -q --no-compile "$@" \
    2> >(grep -v -i "^warning: location" >&2)
}
# PyTorch as scripts/setup.sh installs it: the pinned CPU build where no GPU is present.
if command -v nvidia-smi >/dev/null 2>&1; then
  pip torch
else
  pip torch==2.13.0
fi
step "installing the wheel and its dependencies"
pip "$wheel"

step "running the installed command outside the repository"
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
case "$("$tmp/venv/bin/python" -c 'import profuser, sys; sys.stdout.write(profuser.__file__)')" in
  "$repo"/*) echo "check_wheel: profuser was imported from the checkout, not the wheel" >&2; exit 1 ;;
esac
"$tmp/venv/bin/profuser" --help >/dev/null
# Every module imports without the extras (those import theirs only where used).
"$tmp/venv/bin/python" - <<'PYTHON'
import importlib, pkgutil, profuser

for m in pkgutil.walk_packages(profuser.__path__, "profuser."):
    importlib.import_module(m.name)
PYTHON
HF_HUB_OFFLINE=1 "$tmp/venv/bin/profuser" validate demo
HF_HUB_OFFLINE=1 "$tmp/venv/bin/profuser" configs accelerate/ddp >/dev/null
step "ok"

#!/usr/bin/env bash
# Run the reducer, hooks, pool, services and workers suites on other CPythons
# (make test-pythons).
#
# Usage: tools/other_pythons.sh VERSION...   e.g. 3.10 3.13
# Each version is looked up as pythonX.Y on PATH, then under pyenv; each gets
# a venv of its own (.venv-X.Y) with the package and requirements-dev.txt.
# A version that is not on this machine is reported, never passed silently.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITES=(tests/reducer tests/hooks tests/pool tests/services tests/workers)
status=0
missing=()
for version in "$@"; do
    python=""
    for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python; do
        # A pyenv shim exists for versions it cannot run: try it for real.
        if "$candidate" -c "import sys; sys.exit(sys.version[:len('$version.')] != '$version.')" \
            >/dev/null 2>&1; then
            python=$(command -v "$candidate")
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "!! CPython $version is not on this machine (PATH, pyenv): its tests did NOT run"
        missing+=("$version")
        continue
    fi
    venv=".venv-$version"
    stamp="$venv/.dev-installed"
    echo "== CPython $version ($("$python" -V 2>&1), $python): ${SUITES[*]}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            -e '.[redis,prometheus,otel]' -r requirements-dev.txt \
            2> >(grep -v "^WARNING: Location" >&2)
        touch "$stamp"
    fi
    if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider "${SUITES[@]}"; then
        echo "!! CPython $version: FAILED"
        status=1
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "!! not run on CPython ${missing[*]}: not installed here"
fi
exit $status

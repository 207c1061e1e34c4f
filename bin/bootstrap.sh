# Sourced by bin/casework and bin/test: makes .venv on first use, from the lock file
# requirements/test.txt (every version and hash pinned; bin/lock regenerates it), so a
# developer, CI and the image (requirements/runtime.txt) install the same bytes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMP=".venv/.installed-$(cat pyproject.toml requirements/test.txt | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "setting up .venv (first run)…" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --require-hashes -r requirements/test.txt
  # the project itself, editable; its dependencies came from the lock above
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$STAMP"
fi
# shellcheck disable=SC1091
. .venv/bin/activate

#!/usr/bin/env bash
# README command (b): set up, then run everything CI runs: ruff lint + format check, mypy, and
# all tests (unit, integration with one real vLLM server, browser). Extra args go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Kept across runs (gitignored): the converted model is reused instead of converted again.
export RAG_TEST_DATA_DIR=${RAG_TEST_DATA_DIR:-$PWD/.rag-test-data}

bash scripts/setup.sh || exit 1

if [ ! -x /usr/bin/chromium ]; then  # the browser tests drive Debian's Chromium
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium || exit 1
fi

# The suite's model (smollm2-135m, quick) and qwen2.5-coder-0.5b for its own test; the default
# preset is `auto` (the 1.5B on machines with the RAM for it, else this 0.5B), not prepared here
for preset in smollm2-135m qwen2.5-coder-0.5b; do
  RAG_DATA_DIR=$RAG_TEST_DATA_DIR .venv/bin/rag model prepare --preset "$preset" || exit 1
done

failed=()
step() {  # run every check even after a failure, so one CI run reports them all
  echo "== $*"
  "$@" || failed+=("$*")
}
step .venv/bin/ruff check .
step .venv/bin/ruff format --check .
step .venv/bin/mypy
step .venv/bin/lint-imports --no-cache
step .venv/bin/pytest --timeout=1800 "$@"

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all checks passed"

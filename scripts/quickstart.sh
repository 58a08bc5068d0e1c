#!/usr/bin/env bash
# README command (a): set up, prepare the default model, ingest the bundled samples, start the
# local vLLM server, answer one question, then open the chat UI and print its URL.
# QUICKSTART_NO_UI=1 stops after the answered question (for scripted runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

bash scripts/setup.sh
RAG=.venv/bin/rag
$RAG model prepare
$RAG ingest samples/docs  # the documents only: samples/README.md describes them
$RAG llm serve
# a first answer, with its citations
$RAG ask "How many steps lead up to the lantern room of the Harrow Point Lighthouse?"

if [ "${QUICKSTART_NO_UI:-0}" = 1 ]; then
  echo "done: the vLLM server keeps running (stop it with: $RAG llm stop)"
  exit 0
fi
exec $RAG ui  # prints the URL; Ctrl-C stops the UI, `rag llm stop` stops the model server

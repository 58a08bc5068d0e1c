#!/usr/bin/env bash
# README command (a): set up, prepare the default model, ingest the bundled samples, start the
# local vLLM server, answer one question, then open the chat UI and print its URL.
# What can run at once does: the samples are ingested (that needs only the embedding model)
# while the model is prepared, and `rag ask` loads and retrieves while vLLM starts (it waits for
# the server's start-up to finish before asking). Each phase's seconds are printed at the end.
# QUICKSTART_NO_UI=1 stops after the answered question (for scripted runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

RAG=.venv/bin/rag
QUESTION="How many steps lead up to the lantern room of the Harrow Point Lighthouse?"
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/rag-quickstart.XXXXXX")
PHASES=$LOGS/phases
trap 'rm -rf "$LOGS"' EXIT

now() { date +%s.%N; }
T0=$(now)

timed() {  # timed NAME COMMAND...: run it and record "NAME START END" (seconds since T0)
  local name=$1 start rc=0
  shift
  start=$(now)
  "$@" || rc=$?
  echo "$name $start $(now) $T0" >>"$PHASES"
  return "$rc"
}

print_phases() {  # each phase's seconds and when it ran (overlapping phases ran at once)
  [ -s "$PHASES" ] || return 0
  echo "quickstart phases (seconds; those whose spans overlap ran at once):"
  sort -k2,2n "$PHASES" |
    awk '{ printf "  %-8s %6.1f s   (%6.1f -> %6.1f)\n", $1, $3 - $2, $2 - $4, $3 - $4 }'
  awk -v end="$(now)" -v t0="$T0" 'BEGIN { printf "  %-8s %6.1f s\n", "total", end - t0 }'
}

background() {  # background NAME COMMAND...: timed, its output kept in $LOGS/NAME.log
  local name=$1
  timed "$@" >"$LOGS/$name.log" 2>&1 &
}

fail() {  # fail NAME RC: say which phase failed, show the phases so far, exit with its status
  echo "quickstart: $1 failed (exit $2)" >&2
  print_phases
  if [ -n "${server_pid:-}" ]; then
    echo "a vLLM server may have been started: stop it with $RAG llm stop" >&2
  fi
  exit "$2"
}

finish() {  # finish NAME PID: wait for a background phase, show its output, stop if it failed
  local rc=0
  wait "$2" || rc=$?
  cat "$LOGS/$1.log"
  [ "$rc" = 0 ] || fail "$1" "$rc"
}

timed setup bash scripts/setup.sh || fail setup $?
echo "ingesting samples/docs in the background while the model is prepared ..."
background ingest "$RAG" ingest samples/docs  # the documents only: samples/README.md describes them
ingest_pid=$!
timed prepare "$RAG" model prepare || { rc=$?; wait "$ingest_pid" || true; fail prepare "$rc"; }
background server "$RAG" llm serve
server_pid=$!
finish ingest "$ingest_pid"
echo "asking while vLLM starts (the question waits for it to answer) ..."
# a first answer, with its citations; on failure, the server's start-up output says why
timed ask "$RAG" ask "$QUESTION" || { rc=$?; finish server "$server_pid"; fail ask "$rc"; }
finish server "$server_pid"
print_phases

if [ "${QUICKSTART_NO_UI:-0}" = 1 ]; then
  echo "done: the vLLM server keeps running (stop it with: $RAG llm stop)"
  exit 0
fi
rm -rf "$LOGS"
exec "$RAG" ui  # prints the URL; Ctrl-C stops the UI, `rag llm stop` stops the model server

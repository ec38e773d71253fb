#!/usr/bin/env bash
# Smoke test of the terminal UI as a user gets it: the real `longslit` console script in tmux at 80x24.
# Waits for the first screen (must appear within 5 s), walks every step with keys, quits with q (answering
# the unsaved-results question), and checks the exit status is 0.
#
#   scripts/tui_smoke.sh [FILE] [--captures DIR] [--command CMD --timeout SECONDS]
#
# FILE defaults to the built-in example. With --captures, each step's screen is saved as DIR/NN-step.txt
# (the README's tour comes from these). With --command, CMD (e.g. the README's first command, which
# installs the package first) is run instead of `longslit tui FILE`, and the first screen may take up to
# --timeout seconds.
set -euo pipefail
file=""
captures=""
command=""
first_limit=5
while [ $# -gt 0 ]; do
  case "$1" in
    --captures) captures=$(realpath -m "$2"); shift 2 ;;
    --command) command=$2; shift 2 ;;
    --timeout) first_limit=$2; shift 2 ;;
    *) file=$(realpath "$1"); shift ;;
  esac
done
command -v tmux >/dev/null || { echo "tui_smoke: tmux is not installed" >&2; exit 2; }
longslit=${LONGSLIT:-$(command -v longslit || true)}
[ -n "$command" ] || [ -n "$longslit" ] || { echo "tui_smoke: no longslit on PATH" >&2; exit 2; }
[ -n "$command" ] || command="'$longslit' tui $file"
work=$(mktemp -d)
session="longslit-smoke-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"' EXIT
[ -n "$captures" ] && mkdir -p "$captures"

# The session gets this shell's PATH explicitly: a running tmux server would otherwise lend its own.
tmux new-session -d -s "$session" -x 80 -y 24 -c "$PWD" \
  "export PATH='$PATH' TERM=xterm-256color; $command; echo \$? > '$work/exit'; sleep 5"

screen() { tmux capture-pane -p -t "$session" 2>/dev/null; }
wait_for() {  # wait_for TEXT SECONDS: until TEXT is on screen, else fail showing the screen
  local text=$1 limit=$2 waited=0
  until screen | grep -qF -- "$text"; do
    if ! tmux has-session -t "$session" 2>/dev/null; then
      echo "tui_smoke: the tmux session ended while waiting for '$text'" >&2; exit 1
    fi
    sleep 0.1; waited=$((waited + 1))
    if [ "$waited" -ge $((limit * 10)) ]; then
      echo "tui_smoke: '$text' did not appear within ${limit}s; the screen was:" >&2; screen >&2; exit 1
    fi
  done
}
save() { [ -n "$captures" ] && screen > "$captures/$1.txt" || true; }

start=$(date +%s%N)
wait_for " 1 Frame " "$first_limit"
first=$((($(date +%s%N) - start) / 1000000))
wait_for "cosmic-ray pixels replaced" 20  # the first reduction finished in its worker
echo "tui_smoke: first screen after ${first} ms; first reduction after $((($(date +%s%N) - start) / 1000000)) ms"
save 01-frame
for step in "2:calibrate:no overscan" "3:locate:aperture" "4:wavelength:method header" \
            "5:cosmic:pixels replaced" "6:background:pixels used" "7:extract:median S/N" "8:flux:Flux:" \
            "9:save:Write files"; do
  IFS=: read -r key name text <<< "$step"
  tmux send-keys -t "$session" "$key"
  wait_for "$text" 10
  sleep 0.3
  save "0$key-$name"
done
tmux send-keys -t "$session" "?"
wait_for "Every screen" 5
save 10-help
tmux send-keys -t "$session" Escape
sleep 0.5  # a key right after Escape would read as Alt+key
tmux send-keys -t "$session" q
wait_for "Quit anyway" 5
tmux send-keys -t "$session" y
for _ in $(seq 50); do [ -s "$work/exit" ] && break; sleep 0.1; done
status=$(cat "$work/exit" 2>/dev/null || echo "none")
[ "$status" = 0 ] || { echo "tui_smoke: exit status $status" >&2; exit 1; }
echo "tui_smoke: walked every step and quit with status 0"

#!/bin/sh
# resume.sh — a killed training run loses nothing but its current epoch.
#
#   tests/resume.sh NNC        (run from the repository root)
#
# Trains a small HW1 model for 200 epochs without interruption and keeps its
# final state. Then, several times, starts the same training, kills it with
# SIGKILL at a random moment, and continues it with --resume (again and
# again, until it finishes): the state on disk must always load, and the
# final state must be byte-identical to the uninterrupted run's.
set -u
if [ $# -ne 1 ]; then echo "usage: $0 NNC" >&2; exit 2; fi
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
ROOT=$(pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-resume.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 2
cat >r.nn <<SPEC
data covid = csv("$ROOT/data/hw1/covid.train.csv", header: true) { x = cols(1..116); y = col(117) }
model M {
  fc1 = Linear(116, 16)
  fc2 = Linear(16, 1)
  forward(x: [B, 116]) -> [B] { return squeeze(fc2(relu(fc1(x))), 1) }
}
train {
  seed = 1
  data = covid.map(normalize())
  valid = 0.2
  batch = 32
  epochs = 200
  save_best = "ck/m.safetensors"
  net = M()
  loss = mse(net(x), y)
  optimizer = Adam(net, lr: 1e-3)
}
SPEC
pass=0 total=0
check() {  # name, condition (0 = pass)
  total=$((total + 1))
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "[PASS] $1"; else echo "[FAIL] $1"; fi
}

"$NNC" train r.nn >full.log 2>&1
check "uninterrupted run" $?
cp ck/m.state.safetensors full.state
rm -rf ck

runs=${RESUME_RUNS:-4}
i=1
while [ $i -le "$runs" ]; do
  rm -rf ck
  kills=0
  # start, kill at a random moment, resume ... until a run finishes
  "$NNC" train r.nn >run.log 2>&1 &
  pid=$!
  while :; do
    sleep "0.$(awk -v s="$i$kills" 'BEGIN { srand(s); printf "%02d", 5 + int(rand() * 40) }')"
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      kills=$((kills + 1))
      "$NNC" train r.nn --resume >run.log 2>&1 &
      pid=$!
    else
      wait "$pid"
      break
    fi
    [ $kills -ge 6 ] && { wait "$pid"; break; }
  done
  cmp -s full.state ck/m.state.safetensors
  check "run $i (killed $kills times) ends with the uninterrupted run's state" $?
  # a state that did not load would have stopped the resumed run with an error
  grep -q "error" run.log && { echo "    $(grep error run.log | head -1)"; }
  i=$((i + 1))
done
echo "$pass/$total passed"
[ "$pass" -eq "$total" ]

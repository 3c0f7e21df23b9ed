#!/bin/sh
# nnc against PyTorch, workload by workload, on this machine.
#
#   bench/run.sh                 the full run (about 10-20 minutes on 2 cores)
#   bench/run.sh --quick         a smoke run: fewer repeats, epochs over 3,000 images
#   bench/run.sh --only 2,4      only these sections (1-5 workloads, 6 compile times)
#
# Options:
#   --nnc PATH                   the nnc binary (default: $NNC, else build-bench/nnc,
#                                build-release/nnc or build/nnc)
#   --openblas-core NAME         run everything (nnc, PyTorch, the sgemm ceiling) with
#                                OPENBLAS_CORETYPE=NAME, e.g. SkylakeX
#
# Needs a Release build of nnc and what bench/setup.sh installs (Debian's
# python3-torch and python3-numpy, GNU time, OpenBLAS, Fashion-MNIST).
# bench/README.md explains every column.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
TIME=/usr/bin/time
export PYTHONDONTWRITEBYTECODE=1    # no __pycache__ in bench/

ARGS="$*"
QUICK=0
ONLY=""
NNC_BIN=${NNC:-}
CORE=""

usage() {   # the comment at the top of this file
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) [ $# -ge 2 ] || { echo "run.sh: --only needs a list, e.g. --only 1,4" >&2; exit 2; }
            ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    --nnc) [ $# -ge 2 ] || { echo "run.sh: --nnc needs a path" >&2; exit 2; }
           NNC_BIN=$2; shift ;;
    --nnc=*) NNC_BIN=${1#--nnc=} ;;
    --openblas-core) [ $# -ge 2 ] || { echo "run.sh: --openblas-core needs a name, e.g. SkylakeX" >&2; exit 2; }
                     CORE=$2; shift ;;
    --openblas-core=*) CORE=${1#--openblas-core=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case $ONLY in
  *[!0-9,]*) echo "run.sh: --only takes section numbers 1-6 separated by commas, not '$ONLY'" >&2; exit 2 ;;
esac

# An empty OPENBLAS_CORETYPE is not the same as none: OpenBLAS 0.3.21 then
# picks the last core of its list. Set it only when a name is given.
if [ -n "$CORE" ]; then
  export OPENBLAS_CORETYPE="$CORE"
elif [ "${OPENBLAS_CORETYPE+set}" = set ] && [ -z "$OPENBLAS_CORETYPE" ]; then
  unset OPENBLAS_CORETYPE
fi

if [ -z "$NNC_BIN" ]; then
  for b in build-bench build-release build; do
    if [ -x "$ROOT/$b/nnc" ]; then NNC_BIN="$ROOT/$b/nnc"; break; fi
  done
fi
if [ -z "$NNC_BIN" ] || [ ! -x "$NNC_BIN" ]; then
  echo "run.sh: no nnc binary; build one first:" >&2
  echo "  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2" >&2
  exit 2
fi
if [ ! -x "$TIME" ] || ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "run.sh: needs GNU time and Debian's PyTorch and NumPy for $PY: run bench/setup.sh" >&2
  exit 2
fi

if [ "$QUICK" = 1 ]; then
  REPEATS=3          # PyTorch's timed runs per step measurement (nnc bench always does 11)
  N_TRAIN=3000       # images per epoch in the epoch workloads
  EPOCHS_MLP=1
  EPOCHS_CNN=1
  CHECK_RUNS=3
else
  REPEATS=11
  N_TRAIN=60000
  EPOCHS_MLP=3
  EPOCHS_CNN=2
  CHECK_RUNS=7
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnc-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
SUMMARY=$TMP/summary
: >"$SUMMARY"
: >"$TMP/gemm_summary"

# ---- helpers ---------------------------------------------------------------

want() {   # want N: is section N selected?
  [ -z "$ONLY" ] && return 0
  case ",$ONLY," in *",$1,"*) return 0 ;; esac
  return 1
}

kv() {     # kv KEY LINE: the value of KEY=value in LINE
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

ms_fmt() { # a time in ms with 4 significant-ish digits
  awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v < 1) printf "%.4f\n", v;
    else if (v < 10) printf "%.3f\n", v; else if (v < 100) printf "%.2f\n", v; else printf "%.1f\n", v }'
}

mb() {     # kB -> MB
  awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.0f MB\n", k / 1024 }'
}

stats() {  # numbers on stdin -> "median min max"
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

ratio() {  # ratio A B -> A/B to 2 decimals, "-" when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

minof() {  # the smallest of the non-empty arguments
  for v in "$@"; do [ -n "$v" ] && echo "$v"; done | sort -g | head -n 1
}

maxof() {
  for v in "$@"; do [ -n "$v" ] && echo "$v"; done | sort -g | tail -n 1
}

verdict() { # verdict VALUE TARGET -> yes / NO / -
  awk -v v="$1" -v t="$2" 'BEGIN { if (v == "" || v == "-") print "-"; else if (v + 0 >= t + 0) print "yes"; else print "NO" }'
}

summary() { printf '%s\n' "$*" >>"$SUMMARY"; }

# timed OUT RSS CMD...: run CMD with stdout+stderr in OUT and its peak RSS (kB) in RSS
timed() {
  out=$1 rssf=$2
  shift 2
  st=0
  "$TIME" -f '%M' -o "$rssf" "$@" >"$out" 2>&1 || st=$?
  return $st
}

# the first line of nnc's error message
first_error() {
  l=$(grep -m 1 'error' "$1" || true)
  [ -n "$l" ] || l=$(head -n 1 "$1")
  printf '%s\n' "$l" | sed "s|^$ROOT/||"
}

# threads label -> environment for PyTorch: 1, 2, 2p (OMP_WAIT_POLICY=PASSIVE)
torch_env() {
  case $1 in
    1) echo "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1" ;;
    2) echo "OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2" ;;
    2p) echo "OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE" ;;
  esac
}
threads_label() {
  case $1 in 2p) echo "2 passive" ;; *) echo "$1" ;; esac
}

# Results of one run are kept in shell variables R_<key>; R_status is ok,
# refused (nnc cannot compile it yet) or failed; R_msg says why.
reset_r() { R_status=failed R_msg="" R_med="" R_min="" R_max="" R_sps="" R_rss="" R_compile="" R_acc=""; }

# nnc_step SPEC BATCH THREADS: nnc bench, the training step alone
nnc_step() {
  reset_r
  o=$TMP/out r=$TMP/rss st=0
  timed "$o" "$r" env OPENBLAS_NUM_THREADS="$3" "$NNC_BIN" bench "$1" --batch "$2" || st=$?
  if [ $st -ne 0 ]; then
    R_msg=$(first_error "$o")
    if grep -q 'cannot be compiled' "$o"; then R_status=refused; fi
    return 0
  fi
  line=$(grep -m 1 '^  step ' "$o")
  R_med=$(printf '%s\n' "$line" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
  R_min=$(printf '%s\n' "$line" | sed -n 's/.*range \([0-9.]*\) \.\..*/\1/p')
  R_max=$(printf '%s\n' "$line" | sed -n 's/.*\.\. \([0-9.]*\) ms.*/\1/p')
  R_compile=$(sed -n 's/^  compile *\([0-9.]*\) ms.*/\1/p' "$o" | head -n 1)
  R_sps=$(awk -v b="$2" -v m="$R_med" 'BEGIN { if (m > 0) printf "%.0f\n", b * 1000 / m }')
  R_rss=$(tail -n 1 "$r")
  if [ -n "$R_med" ]; then R_status=ok; else R_msg="unexpected output: $(head -n 1 "$o")"; fi
}

# torch_step SCRIPT BATCH THREADS(1|2|2p): the same step in PyTorch
torch_step() {
  reset_r
  o=$TMP/out r=$TMP/rss st=0 n=${3%p}
  # shellcheck disable=SC2046
  timed "$o" "$r" env -u OMP_WAIT_POLICY $(torch_env "$3") "$PY" "$HERE/$1" --batch "$2" --threads "$n" \
    --repeats "$REPEATS" || st=$?
  line=$(grep -m 1 '^RESULT ' "$o" || true)
  if [ $st -ne 0 ] || [ -z "$line" ]; then R_msg=$(tail -n 1 "$o"); return 0; fi
  R_med=$(kv ms_median "$line") R_min=$(kv ms_min "$line") R_max=$(kv ms_max "$line")
  R_sps=$(kv samples_per_s "$line" | awk '{ printf "%.0f\n", $1 }')
  R_rss=$(tail -n 1 "$r")
  R_status=ok
}

# nnc_epochs SPEC NAME EPOCHS THREADS: nnc train; epoch times from its log
nnc_epochs() {
  reset_r
  o=$TMP/out r=$TMP/rss st=0 log=$ROOT/out/bench/$2.log.jsonl
  rm -f "$log"
  timed "$o" "$r" env OPENBLAS_NUM_THREADS="$4" "$NNC_BIN" train "$1" --epochs "$3" --set N_TRAIN="$N_TRAIN" || st=$?
  if [ $st -ne 0 ]; then
    R_msg=$(first_error "$o")
    if grep -q 'cannot be compiled' "$o"; then R_status=refused; fi
    return 0
  fi
  if [ ! -s "$log" ]; then R_msg="no log $log"; return 0; fi
  s=$(sed -n 's/.*"ms":\([0-9.eE+-]*\).*/\1/p' "$log" | stats)
  R_med=${s%% *} R_max=${s##* }
  s=${s#* }
  R_min=${s%% *}
  R_compile=$(sed -n 's/^compiled .* in \([0-9.]*\) ms.*/\1/p' "$o" | head -n 1)
  R_acc=$(sed -n 's/.*test_accuracy \([0-9.]*\).*/\1/p' "$o" | head -n 1)
  R_rss=$(tail -n 1 "$r")
  R_status=ok
}

# torch_epochs SCRIPT EPOCHS THREADS(1|2|2p)
torch_epochs() {
  reset_r
  o=$TMP/out r=$TMP/rss st=0 n=${3%p}
  # shellcheck disable=SC2046
  timed "$o" "$r" env -u OMP_WAIT_POLICY $(torch_env "$3") "$PY" "$HERE/$1" --epochs "$2" --threads "$n" \
    --n-train "$N_TRAIN" || st=$?
  line=$(grep -m 1 '^RESULT ' "$o" || true)
  if [ $st -ne 0 ] || [ -z "$line" ]; then R_msg=$(tail -n 1 "$o"); return 0; fi
  R_med=$(kv epoch_ms_median "$line") R_min=$(kv epoch_ms_min "$line") R_max=$(kv epoch_ms_max "$line")
  R_acc=$(kv test_acc "$line")
  R_rss=$(tail -n 1 "$r")
  R_status=ok
}

STEP_HEAD="  batch  runner   threads     ms/step   range (ms)             samples/s   peak RSS    compile"
# step_row BATCH RUNNER THREADS: one row of a step table from R_*
step_row() {
  case $R_status in
    ok) printf '  %5s  %-7s  %-9s %9s   %-20s %10s  %9s  %9s\n' "$1" "$2" "$3" "$(ms_fmt "$R_med")" \
          "$(ms_fmt "$R_min") .. $(ms_fmt "$R_max")" "$R_sps" "$(mb "$R_rss")" \
          "$([ -n "$R_compile" ] && echo "$R_compile ms" || echo -)" ;;
    refused) printf '  %5s  %-7s  %-9s %s\n' "$1" "$2" "$3" "$2: not compiled yet ($R_msg)" ;;
    *) printf '  %5s  %-7s  %-9s %s\n' "$1" "$2" "$3" "$2: failed ($R_msg)" ;;
  esac
}

EPOCH_HEAD="  runner   threads     s/epoch  range (s)          ms/step  samples/s  test acc   peak RSS    compile"
# epoch_row RUNNER THREADS BATCH: one row of an epoch table from R_* (times scaled to 60,000 images)
epoch_row() {
  case $R_status in
    ok) awk -v r="$1" -v t="$2" -v b="$3" -v n="$N_TRAIN" -v med="$R_med" -v lo="$R_min" -v hi="$R_max" \
          -v acc="$R_acc" -v rss="$(mb "$R_rss")" -v c="$R_compile" 'BEGIN {
          s = 60000 / n; steps = int((n + b - 1) / b)
          printf "  %-7s  %-9s %9.2f  %5.2f .. %-8.2f %9.3f  %9.0f  %8s  %9s  %9s\n", r, t, med * s / 1000,
            lo * s / 1000, hi * s / 1000, med / steps, n * 1000 / med, (acc == "" ? "-" : sprintf("%.4f", acc)),
            rss, (c == "" ? "-" : c " ms") }' ;;
    refused) printf '  %-7s  %-9s %s\n' "$1" "$2" "$1: not compiled yet ($R_msg)" ;;
    *) printf '  %-7s  %-9s %s\n' "$1" "$2" "$1: failed ($R_msg)" ;;
  esac
}

# collects a workload's results: the best time and largest/smallest RSS per runner
begin_workload() { N1="" N2="" T1="" T2="" T2P="" NRSS="" TRSS="" NSTATUS=""; }
keep_nnc() {  # keep_nnc THREADS
  NSTATUS=$R_status
  [ "$R_status" = ok ] || return 0
  if [ "$1" = 1 ]; then N1=$R_med; else N2=$R_med; fi
  NRSS=$(maxof "$NRSS" "$R_rss")
}
keep_torch() {  # keep_torch THREADS(1|2|2p)
  [ "$R_status" = ok ] || return 0
  case $1 in 1) T1=$R_med ;; 2) T2=$R_med ;; 2p) T2P=$R_med ;; esac
  if [ -z "$TRSS" ]; then TRSS=$R_rss; else TRSS=$(minof "$TRSS" "$R_rss"); fi
}
# end_workload NAME TARGET(x, or "") MEMORY-TARGET(1|0)
end_workload() {
  tb=$(minof "$T1" "$T2" "$T2P") t2b=$(minof "$T2" "$T2P") nb=$(minof "$N1" "$N2")
  r1=$(ratio "$T1" "$N1") r2=$(ratio "$t2b" "$N2") rb=$(ratio "$tb" "$nb")
  if [ "$NSTATUS" = refused ]; then
    echo "  nnc/PyTorch speed: - (nnc: not compiled yet)"
    summary "$(printf '%-30s %-32s %-12s %s' "$1" "not compiled yet" "${2:+>= ${2}x}" "${2:+NO}")"
    return 0
  fi
  echo "  nnc/PyTorch speed: 1 thread ${r1}x, 2 threads ${r2}x (against PyTorch's better 2-thread run), best against best ${rb}x"
  summary "$(printf '%-30s %-32s %-12s %s' "$1" "${rb}x (1t ${r1}x, 2t ${r2}x)" "${2:+>= ${2}x}" \
    "$([ -n "$2" ] && verdict "$rb" "$2")")"
  if [ "$3" = 1 ] && [ -n "$NRSS" ] && [ -n "$TRSS" ]; then
    summary "$(printf '%-30s %-32s %-12s %s' "  peak memory" "nnc $(mb "$NRSS"), PyTorch $(mb "$TRSS")" "< PyTorch" \
      "$(awk -v a="$NRSS" -v b="$TRSS" 'BEGIN { print (a < b ? "yes" : "NO") }')")"
  fi
}

# gemm_line NAME THREADS: nnc's GEMM throughput over its whole step (R_med,
# R_min of the nnc bench run just made) next to the sgemm ceiling with as many
# threads. The ceiling is measured right before and right after nnc's run (the
# caller passes the "before" output in CEIL_BEFORE) and the faster counts; the
# share compares the fastest runs of both, which are the least disturbed by
# anything else running on the machine.
gemm_line() {
  [ "$R_status" = ok ] || return 0
  c1=$(printf '%s\n' "$CEIL_BEFORE" | grep "^sgemm $1 ")
  c2=$(OPENBLAS_NUM_THREADS="$2" "$TMP/sgemm_ceiling" "$REPEATS" | grep "^sgemm $1 ")
  f=$(kv mflop "$c2")          # the FLOPs of the step's GEMMs, the same for nnc
  cm=$(maxof "$(kv gflops "$c1")" "$(kv gflops "$c2")") cb=$(maxof "$(kv best_gflops "$c1")" "$(kv best_gflops "$c2")")
  pct=$(awk -v f="$f" -v ms="$R_min" -v c="$cb" 'BEGIN { printf "%.0f\n", 100 * f / ms / c }')
  awk -v f="$f" -v med="$R_med" -v lo="$R_min" -v cm="$cm" -v cb="$cb" -v t="$2" -v p="$pct" 'BEGIN {
    printf "  GEMMs, %s thread%s: nnc %.1f GFLOP/s over its whole step (fastest run %.1f); ", t, (t == 1 ? "" : "s"),
      f / med, f / lo
    printf "sgemm ceiling %.1f (fastest %.1f): %s%%\n", cm, cb, p }'
  printf '%-30s %-32s %-12s %s\n' "  GEMMs, $2 thread(s)" "${pct}% of sgemm ceiling" ">= 70%" \
    "$(verdict "$pct" 70)" >>"$TMP/gemm_summary"
}
ceil_before() { CEIL_BEFORE=$(OPENBLAS_NUM_THREADS="$1" "$TMP/sgemm_ceiling" "$REPEATS"); }
flush_gemm() { cat "$TMP/gemm_summary" >>"$SUMMARY"; : >"$TMP/gemm_summary"; }

# ---- header ------------------------------------------------------------------

LOAD0=$(cut -d ' ' -f 1-3 /proc/loadavg)
MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
CPUS=$(grep -c '^processor' /proc/cpuinfo)
cc -O2 -o "$TMP/sgemm_ceiling" "$HERE/sgemm_ceiling.c" -lopenblas
BLAS_CORE=$(OPENBLAS_NUM_THREADS=1 "$TMP/sgemm_ceiling" --core)
TORCH_V=$("$PY" -c 'import torch; print(torch.__version__)')
NUMPY_V=$("$PY" -c 'import numpy; print(numpy.__version__)')

echo "nnc benchmarks against PyTorch"
echo "date      $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine   $MODEL, $CPUS logical CPUs ($(nproc) usable)"
echo "load      $LOAD0 (1, 5, 15 min) at the start$(awk -v l="${LOAD0%% *}" 'BEGIN { if (l > 1) print ": busy, numbers are preliminary" }')"
echo "nnc       $("$NNC_BIN" --version 2>/dev/null | head -n 1) (${NNC_BIN#"$ROOT"/})"
echo "pytorch   $TORCH_V with numpy $NUMPY_V ($PY)"
echo "openblas  core $BLAS_CORE${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}; nnc and PyTorch use the same libopenblas"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q ' avx512f' /proc/cpuinfo; then
  case $BLAS_CORE in
    Prescott|Core2|Katmai|Penryn|Dunnington|Nehalem|Atom|Generic)
      echo "          (a generic core on an AVX-512 CPU: OpenBLAS does not know this CPU; try --openblas-core SkylakeX)" ;;
  esac
fi
if [ "$QUICK" = 1 ]; then
  echo "mode      quick: PyTorch $REPEATS timed runs per step, epochs over the first $N_TRAIN images (times scaled to 60,000)"
else
  echo "mode      full: PyTorch $REPEATS timed runs per step, epochs over all 60,000 images"
fi
echo "          nnc bench: 11 timed runs after 5 warm-up steps; PyTorch the same way; each run >= 50 ms of steps"
echo "command   bench/run.sh${ARGS:+ $ARGS}"
echo

# the sgemm ceiling, for workloads 2 and 4
if want 2 || want 4; then
  CEIL1=$(OPENBLAS_NUM_THREADS=1 "$TMP/sgemm_ceiling" "$REPEATS")
  CEIL2=$(OPENBLAS_NUM_THREADS=2 "$TMP/sgemm_ceiling" "$REPEATS")
  echo "sgemm ceiling (bench/sgemm_ceiling.c: cblas_sgemm alone on the GEMMs of one training step; median GFLOP/s, fastest run)"
  printf '  %-50s %-24s %s\n' products "1 thread" "2 threads"
  for w in fmnist_mlp autoencoder square512; do
    l1=$(printf '%s\n' "$CEIL1" | grep "^sgemm $w ") l2=$(printf '%s\n' "$CEIL2" | grep "^sgemm $w ")
    a1="$(kv gflops "$l1") ($(kv best_gflops "$l1"))" a2="$(kv gflops "$l2") ($(kv best_gflops "$l2"))"
    d=$(printf '%s\n' "$CEIL1" | sed -n "s/^sgemm $w gemms=\([0-9]*\) mflop=\([0-9.]*\).*/\1 GEMMs, \2 MFLOP/p")
    case $w in
      fmnist_mlp) label="2. MLP, b128 ($d)" ;;
      autoencoder) label="4. autoencoder, b128 ($d)" ;;
      *) label="512x512x512, for reference" ;;
    esac
    printf '  %-50s %-24s %s\n' "$label" "$a1" "$a2"
  done
  echo
fi

# ---- 1. HW1 ------------------------------------------------------------------

if want 1; then
  echo "1. HW1 MLP 117-16-8-1 (covid.train.csv), MSE, SGD lr 1e-5 momentum 0.9: one training step"
  echo "$STEP_HEAD"
  for b in 256 32 1; do
    begin_workload
    for t in 1 2; do nnc_step "$HERE/hw1_mlp.nn" "$b" "$t"; step_row "$b" nnc "$t"; keep_nnc "$t"; done
    for t in 1 2 2p; do torch_step torch_hw1_mlp.py "$b" "$t"; step_row "$b" pytorch "$(threads_label "$t")"; keep_torch "$t"; done
    case $b in 256) tgt=8 ;; 1) tgt=30 ;; *) tgt="" ;; esac
    end_workload "1. HW1 step, batch $b" "$tgt" "$([ "$b" = 256 ] && echo 1 || echo 0)"
  done
  echo
fi

# ---- 2. Fashion-MNIST MLP ------------------------------------------------------

if want 2; then
  echo "2. Fashion-MNIST MLP 784-512-256-10, ReLU, cross-entropy, Adam 1e-3, batch 128: $EPOCHS_MLP epoch(s) over $N_TRAIN images"
  echo "$EPOCH_HEAD"
  begin_workload
  for t in 1 2; do nnc_epochs "$HERE/fmnist_mlp.nn" fmnist_mlp "$EPOCHS_MLP" "$t"; epoch_row nnc "$t" 128; keep_nnc "$t"; done
  for t in 1 2 2p; do torch_epochs torch_fmnist_mlp.py "$EPOCHS_MLP" "$t"; epoch_row pytorch "$(threads_label "$t")" 128; keep_torch "$t"; done
  end_workload "2. MLP epoch" 1.3 1
  echo "  the training step alone (nnc bench bench/fmnist_mlp.nn):"
  for t in 1 2; do
    ceil_before "$t"
    nnc_step "$HERE/fmnist_mlp.nn" 128 "$t"
    if [ "$R_status" = ok ]; then
      printf '    %s thread%s: %s ms per step (range %s .. %s)\n' "$t" "$([ "$t" = 1 ] || echo s)" "$(ms_fmt "$R_med")" \
        "$(ms_fmt "$R_min")" "$(ms_fmt "$R_max")"
      gemm_line fmnist_mlp "$t" | sed 's/^/  /'
    else
      echo "    $t thread(s): nnc bench failed ($R_msg)"
    fi
  done
  flush_gemm
  echo
fi

# ---- 3. Fashion-MNIST CNN --------------------------------------------------------

if want 3; then
  echo "3. Fashion-MNIST CNN conv32-pool-conv64-pool-128-10, Adam 1e-3, batch 64: $EPOCHS_CNN epoch(s) over $N_TRAIN images"
  echo "$EPOCH_HEAD"
  begin_workload
  for t in 1 2; do
    nnc_epochs "$HERE/fmnist_cnn.nn" fmnist_cnn "$EPOCHS_CNN" "$t"
    epoch_row nnc "$t" 64
    keep_nnc "$t"
    [ "$R_status" = refused ] && break    # the same answer with 2 threads
  done
  for t in 1 2 2p; do torch_epochs torch_fmnist_cnn.py "$EPOCHS_CNN" "$t"; epoch_row pytorch "$(threads_label "$t")" 64; keep_torch "$t"; done
  end_workload "3. CNN epoch" 2 1
  echo
fi

# ---- 4. autoencoder ----------------------------------------------------------------

if want 4; then
  echo "4. Autoencoder 784-128-64-128-784 (Fashion-MNIST), ReLU, sigmoid out, MSE, Adam 1e-3: one training step"
  echo "$STEP_HEAD"
  begin_workload
  : >"$TMP/gemm"
  for t in 1 2; do
    ceil_before "$t"
    nnc_step "$HERE/autoencoder.nn" 128 "$t"; step_row 128 nnc "$t"; keep_nnc "$t"
    gemm_line autoencoder "$t" >>"$TMP/gemm"
  done
  for t in 1 2 2p; do torch_step torch_autoencoder.py 128 "$t"; step_row 128 pytorch "$(threads_label "$t")"; keep_torch "$t"; done
  end_workload "4. autoencoder step" 2 1
  cat "$TMP/gemm"
  flush_gemm
  echo
fi

# ---- 5. DCGAN ---------------------------------------------------------------------

if want 5; then
  echo "5. DCGAN 28x28 (ConvTranspose2d), BCE with logits, Adam 2e-4: one D step + one G step, batch 64"
  echo "$STEP_HEAD"
  begin_workload
  for t in 1 2; do
    nnc_step "$HERE/dcgan.nn" 64 "$t"
    step_row 64 nnc "$t"
    keep_nnc "$t"
    [ "$R_status" = refused ] && break
  done
  for t in 1 2 2p; do torch_step torch_dcgan.py 64 "$t"; step_row 64 pytorch "$(threads_label "$t")"; keep_torch "$t"; done
  end_workload "5. DCGAN D+G step" 1.5 1
  echo
fi

# ---- 6. compile and check times ----------------------------------------------------

if want 6; then
  echo "6. nnc check and compile times for specs/ (targets: check < 50 ms, compile < 300 ms)"
  echo "   check: wall time of 'nnc check SPEC' (process start and data files included), median of $CHECK_RUNS"
  echo "   compile: what 'nnc bench' reports for the block's training step (1 OpenBLAS thread)"
  printf '  %-14s %-19s %8s   %-9s %s\n' spec block check compile ""
  worst_check="" worst_compile=""
  # specs/hw1.nn ... hw15.nn in numeric order (the names have no spaces)
  for spec in $(printf '%s\n' "$ROOT"/specs/*.nn | sort -V); do
    name=${spec#"$ROOT"/}
    i=0
    : >"$TMP/checks"
    while [ $i -lt "$CHECK_RUNS" ]; do
      t0=$(date +%s%N)
      "$NNC_BIN" check "$spec" >/dev/null 2>&1 || true
      t1=$(date +%s%N)
      echo $(((t1 - t0) / 1000)) >>"$TMP/checks"
      i=$((i + 1))
    done
    chk=$(stats <"$TMP/checks" | awk '{ printf "%.1f\n", $1 / 1000 }')
    worst_check=$(maxof "$worst_check" "$chk")
    blocks=$("$NNC_BIN" check "$spec" 2>/dev/null | sed -n 's/^train \([A-Za-z_][A-Za-z0-9_]*\)  (line.*/\1/p; s/^train  (line.*/-/p')
    [ -n "$blocks" ] || blocks="-"
    first=1
    for blk in $blocks; do
      if [ "$blk" = "-" ]; then set --; label="(first)"; else set -- --block "$blk"; label=$blk; fi
      st=0
      env OPENBLAS_NUM_THREADS=1 "$NNC_BIN" bench "$spec" "$@" >"$TMP/out" 2>&1 || st=$?
      if [ $st -eq 0 ]; then
        c=$(sed -n 's/^  compile *\([0-9.]*\) ms.*/\1/p' "$TMP/out" | head -n 1)
        worst_compile=$(maxof "$worst_compile" "$c")
        cstr="$c ms"
        note=""
      else
        cstr="-"
        note="not compiled yet: $(first_error "$TMP/out" | sed 's/^[^ ]*: error: //')"
        grep -q 'cannot be compiled' "$TMP/out" || note="failed: $(first_error "$TMP/out")"
      fi
      if [ $first = 1 ]; then cs="$chk ms"; else cs=""; fi
      printf '  %-14s %-19s %8s   %-9s %s\n' "$([ $first = 1 ] && echo "$name")" "$label" "$cs" "$cstr" "$note"
      first=0
    done
  done
  echo "  slowest check ${worst_check:-?} ms (target < 50), slowest compile ${worst_compile:-?} ms (target < 300)"
  summary "$(printf '%-30s %-32s %-12s %s' "6. slowest nnc check" "${worst_check:-?} ms" "< 50 ms" \
    "$(awk -v v="${worst_check:-}" 'BEGIN { if (v == "") print "-"; else print (v < 50 ? "yes" : "NO") }')")"
  summary "$(printf '%-30s %-32s %-12s %s' "6. slowest nnc compile" "${worst_compile:-?} ms" "< 300 ms" \
    "$(awk -v v="${worst_compile:-}" 'BEGIN { if (v == "") print "-"; else print (v < 300 ? "yes" : "NO") }')")"
  echo
fi

# ---- summary ------------------------------------------------------------------------

LOAD1=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "Targets (nnc/PyTorch speed: PyTorch's ms per step or epoch over nnc's; best = each side's fastest thread setting)"
printf '  %-30s %-32s %-12s %s\n' "what" "measured" "target" "met"
sed 's/^/  /' "$SUMMARY"
echo
echo "load      $LOAD1 (1, 5, 15 min) at the end$(awk -v a="${LOAD0%% *}" -v b="${LOAD1%% *}" \
  'BEGIN { if (a > 1 || b > 1) print ": the machine was busy, numbers are preliminary" }')"

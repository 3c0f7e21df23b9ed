#!/bin/sh
# train_e2e.sh NNC — end-to-end training with the real nnc binary on the real
# HW1 data (data/hw1/covid.train.csv): the compiled training step must learn,
# be deterministic for a seed, stop on a diverging loss, and name a missing
# data file; predict, --init, --set, gradcheck and bench work on the model it
# trained. About 15 s in a Debug (ASan) build.
#
# Each spec is written into a temporary folder and names the CSV by its
# absolute path. Prints `[PASS] name` or `[FAIL] name` (with the output that
# failed) per check, then `N/M passed`; exits 0 only if every check passed,
# 77 (skipped) without the data.
#
# Numbers behind the bound (Debug build, seed 5201314, 500 epochs, Adam 1e-3,
# normalize(), 20% held out): a correct run reaches a valid MSE of about 1.08
# (1.14 after 300 epochs, 1.04 after 1000); the untrained model is at ~139,
# predicting the mean gives ~41 (the variance of the target), a model whose
# matmul input gradients are negated stays at ~97. So the bound, 1.5, is
# far from anything untrained or grossly broken. Subtler gradient errors
# (relu's derivative ignored: 1.22-1.43; the bias gradient's sign flipped:
# 1.05-1.25) still train with Adam: the finite-difference unit tests
# (test_autodiff) are what catches those.
set -u

. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CSV=$ROOT/data/hw1/covid.train.csv
BOUND=1.5

if [ ! -f "$CSV" ]; then
  echo "skipped: $CSV is missing"
  exit 77
fi

setup e2e "$@"

# spec FILE DATA OPTIMIZER EPOCHS SEED [CSV]: the HW1 model and train block
spec() {
  cat > "$1" <<EOF
data covid = csv("${6:-$CSV}", header: true) {
  x = cols(1..116)
  y = col(117)
}

model My_Model(input_dim: int) {
  layers = seq {
    Linear(input_dim, 16), ReLU
    Linear(16, 8), ReLU
    Linear(8, 1)
  }
  forward(x: [B, input_dim]) -> [B] {
    return squeeze(layers(x), 1)
  }
}

train {
  seed = $5
  data = $2
  valid = 0.2
  batch = 256
  epochs = $4
  save_best = "best.safetensors"
  net = My_Model(116)
  loss = mse(net(x), y)
  optimizer = $3
}
EOF
}

# train SPEC [ARGS...]: runs nnc train in the spec's folder; sets $rc
train() {
  s=$1
  shift
  (cd "$(dirname "$s")" && "$NNC" train "$(basename "$s")" "$@") > "$TMP/out" 2> "$TMP/err"
  rc=$?
}

# the X of "best valid_loss X at epoch ..." (empty if absent)
best() { sed -n 's/^best valid_loss \([^ ]*\) .*/\1/p' "$TMP/out"; }

# the tensor bytes of a safetensors file (after its 8-byte length and header)
tensors() {
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((8 + n + 1)) "$1"
}

# ---- (a) it learns --------------------------------------------------------
mkdir -p "$TMP/learn" "$TMP/untrained"
spec "$TMP/learn/hw1.nn" "covid.map(normalize())" "Adam(net, lr: 1e-3)" 500 5201314
train "$TMP/learn/hw1.nn"
x=$(best)
name="hw1_with_normalize_and_adam_reaches_valid_mse_below_$BOUND"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif [ -z "$x" ]; then bad "$name" "no 'best valid_loss' line"
elif awk -v x="$x" -v b="$BOUND" 'BEGIN { exit !(x < b) }'; then ok "$name (valid MSE $x)"
else bad "$name" "best valid_loss $x"
fi

# the same model, barely moving: the bound is out of its reach
spec "$TMP/untrained/hw1.nn" "covid.map(normalize())" "Adam(net, lr: 1e-9)" 20 5201314
train "$TMP/untrained/hw1.nn"
x=$(best)
name="an_untrained_hw1_model_stays_far_above_the_bound"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif [ -z "$x" ]; then bad "$name" "no 'best valid_loss' line"
elif awk -v x="$x" -v b="$BOUND" 'BEGIN { exit !(x > 10 * b) }'; then ok "$name (valid MSE $x)"
else bad "$name" "best valid_loss $x"
fi

# ---- (b) determinism --------------------------------------------------------
mkdir -p "$TMP/det1" "$TMP/det2" "$TMP/det3"
for d in det1 det2 det3; do
  spec "$TMP/$d/hw1.nn" "covid.map(normalize())" "Adam(net, lr: 1e-3)" 20 7
done
train "$TMP/det1/hw1.nn"
rc1=$rc
train "$TMP/det2/hw1.nn"
rc2=$rc
name="the_same_seed_gives_byte_identical_checkpoints"
if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ]; then bad "$name" "exit $rc1 and $rc2"
elif [ ! -s "$TMP/det1/best.safetensors" ]; then bad "$name" "no checkpoint written"
elif cmp -s "$TMP/det1/best.safetensors" "$TMP/det2/best.safetensors"; then ok "$name"
else bad "$name" "$(cmp "$TMP/det1/best.safetensors" "$TMP/det2/best.safetensors" 2>&1)"
fi

# another seed: other initial weights and another split, so other weights
# (the tensor bytes are compared: the header records the seed anyway)
train "$TMP/det3/hw1.nn" --seed 8
name="another_seed_gives_different_weights"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif [ ! -s "$TMP/det3/best.safetensors" ]; then bad "$name" "no checkpoint written"
else
  tensors "$TMP/det1/best.safetensors" > "$TMP/w1"
  tensors "$TMP/det3/best.safetensors" > "$TMP/w3"
  if [ -s "$TMP/w1" ] && ! cmp -s "$TMP/w1" "$TMP/w3"; then ok "$name"
  else bad "$name" "the weights of seeds 7 and 8 are identical"
  fi
fi

# --resume of a run that trained all its epochs: nothing is left to train;
# it says so and reports the best epoch of that run ("of 20", not "of 0")
train "$TMP/det1/hw1.nn" --resume
name="resuming_a_finished_run_trains_nothing_and_says_so"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif ! grep -q "^all 20 epochs were trained already" "$TMP/out"; then bad "$name" "no 'all 20 epochs were trained already'"
elif grep -q "^epoch " "$TMP/out"; then bad "$name" "it trained an epoch"
elif grep -q "^best valid_loss [^ ]* at epoch [0-9]* of 20;" "$TMP/out"; then ok "$name"
else bad "$name" "no 'best valid_loss ... of 20'"
fi

# ---- (c) a diverging loss ---------------------------------------------------
mkdir -p "$TMP/nan"
spec "$TMP/nan/hw1.nn" "covid" "SGD(net, lr: 10, momentum: 0.9)" 5 1
train "$TMP/nan/hw1.nn"
name="a_huge_learning_rate_stops_with_a_non_finite_loss_error"
if [ $rc -ne 1 ]; then bad "$name" "exit $rc, expected 1"
elif grep -Eq 'error: .*loss became (NaN|infinite)' "$TMP/err"; then ok "$name"
else bad "$name" "no message about a NaN or infinite loss"
fi
# ... and the rerun that checks every value names the op, at a spec line
name="the_first_non_finite_value_is_reported_at_its_op_and_spec_line"
if grep -Eq 'hw1.nn:[0-9]+:[0-9]+: error: the first (NaN|infinity) comes from %[0-9]+ = [a-z_]+' "$TMP/err"; then ok "$name"
else bad "$name" "no report of the op where the NaN or infinity first appeared"
fi

# ---- (d) a missing data file -----------------------------------------------
mkdir -p "$TMP/missing"
spec "$TMP/missing/hw1.nn" "covid" "Adam(net, lr: 1e-3)" 5 1 "$TMP/missing/no_such_covid.csv"
train "$TMP/missing/hw1.nn"
name="a_missing_data_file_exits_1_and_names_it"
if [ $rc -ne 1 ]; then bad "$name" "exit $rc, expected 1"
elif grep -q "error: .*no_such_covid.csv" "$TMP/err"; then ok "$name"
else bad "$name" "the message does not name no_such_covid.csv"
fi

# ---- (e) the other commands, on the model (a) trained ----------------------
# predict: the checkpoint, its normalization statistics and the predict step
# together must give predictions as good as the training said (a wrong
# normalization or weight layout gives errors in the hundreds)
cat > "$TMP/learn/pred.nn" <<EOF
data covid = csv("$CSV", header: true) {
  id = col(0)
  x = cols(1..116)
}
model My_Model(input_dim: int) {
  layers = seq {
    Linear(input_dim, 16), ReLU
    Linear(16, 8), ReLU
    Linear(8, 1)
  }
  forward(x: [B, input_dim]) -> [B] {
    return squeeze(layers(x), 1)
  }
}
predict {
  data = covid.map(normalize())
  batch = 100
  net = My_Model(116)
  load(net, "best.safetensors")
  write csv("pred.csv") {
    id = id
    tested_positive = net(x)
  }
}
EOF
(cd "$TMP/learn" && "$NNC" predict pred.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="predict_writes_the_submission_with_the_trained_weights"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif [ "$(head -n 1 "$TMP/learn/pred.csv")" != "id,tested_positive" ]; then bad "$name" "header: $(head -n 1 "$TMP/learn/pred.csv")"
elif [ "$(wc -l < "$TMP/learn/pred.csv")" -ne 2700 ]; then bad "$name" "$(wc -l < "$TMP/learn/pred.csv") lines, expected 2700"
else
  mse=$(awk -F, 'NR == FNR { if (FNR > 1) y[FNR] = $NF; next } FNR > 1 { d = $2 - y[FNR]; s += d * d; n++ } END { printf "%.4f", s / n }' \
        "$CSV" "$TMP/learn/pred.csv")
  if awk -v m="$mse" -v b="$BOUND" 'BEGIN { exit !(m < b) }'; then ok "$name (MSE $mse over all rows)"
  else bad "$name" "the predictions' MSE is $mse, not below $BOUND"
  fi
fi

# --init: starting from the trained weights, one epoch at a negligible
# learning rate is already as good (from random weights it would be ~139)
spec "$TMP/learn/init.nn" "covid.map(normalize())" "Adam(net, lr: 1e-9)" 1 5201314
train "$TMP/learn/init.nn" --init best.safetensors
name="init_starts_from_the_weights_of_a_checkpoint"
v=$(best)
if [ $rc -ne 0 ] || [ -z "$v" ]; then bad "$name" "exit $rc"
elif awk -v v="$v" -v b="$BOUND" 'BEGIN { exit !(v < b) }'; then ok "$name"
else bad "$name" "valid loss $v after one epoch from the trained weights"
fi

# --set replaces a block setting
train "$TMP/learn/hw1.nn" --set epochs=3
name="set_replaces_a_block_setting"
if [ $rc -eq 0 ] && grep -q " 3 epochs," "$TMP/out" && grep -q "at epoch [0-9]* of 3;" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc, or not 3 epochs"
fi

# gradcheck and bench on the same block
(cd "$TMP/learn" && "$NNC" gradcheck hw1.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="gradcheck_finds_the_compiled_gradients_right"
if [ $rc -eq 0 ] && grep -q "^ok: worst relative error" "$TMP/out" && grep -q "layers.0.weight" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi
# ... and that it can fail: grad_reverse leaves the loss as it is but flips
# every gradient behind it, so the compiled gradients are the finite
# differences' negatives
sed 's/loss = mse(net(x), y)/loss = mse(grad_reverse(net(x), lambda: 1.0), y)/' "$TMP/learn/hw1.nn" > "$TMP/learn/flipped.nn"
(cd "$TMP/learn" && "$NNC" gradcheck flipped.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="gradcheck_finds_flipped_gradients_wrong"
if [ $rc -eq 1 ] && grep -q "grad_reverse" "$TMP/learn/flipped.nn" && grep -q "^FAILED: worst relative error" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc, expected 1 and FAILED"
fi
(cd "$TMP/learn" && "$NNC" bench hw1.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="bench_times_the_training_step"
if [ $rc -eq 0 ] && grep -Eq "step +median [0-9.]+ ms, range" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi
# the step's threads: OPENBLAS_NUM_THREADS=1 means one; two on a machine with two CPUs
(cd "$TMP/learn" && OPENBLAS_NUM_THREADS=1 "$NNC" bench hw1.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="bench_with_one_blas_thread_runs_the_step_on_one_thread"
if [ $rc -eq 0 ] && grep -q "the step on 1 thread, OpenBLAS on 1 in each" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc: $(grep blas "$TMP/out")"
fi
(cd "$TMP/learn" && NNC_KERNEL_THREADS=1 "$NNC" bench hw1.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="bench_with_nnc_kernel_threads_1_runs_the_step_on_one_thread"
if [ $rc -eq 0 ] && grep -q "the step on 1 thread" "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc: $(grep blas "$TMP/out")"
fi
if [ "$(nproc)" -ge 2 ]; then
  (cd "$TMP/learn" && OPENBLAS_NUM_THREADS=2 "$NNC" bench hw1.nn) > "$TMP/out" 2> "$TMP/err"
  rc=$?
  name="bench_with_two_blas_threads_runs_the_step_on_two"
  if [ $rc -eq 0 ] && grep -q "the step on 2 threads, OpenBLAS on 1 in each" "$TMP/out"; then ok "$name"
  else bad "$name" "exit $rc: $(grep blas "$TMP/out")"
  fi
fi
(cd "$TMP/learn" && "$NNC" bench hw1.nn --kernels) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="bench_kernels_lists_the_kernels_with_their_spec_lines"
# the 15 slowest, each with its time, share, what it does and its spec line
if [ $rc -eq 0 ] && grep -Eq "^  kernels +[0-9]+, [0-9.]+ ms a step in all:" "$TMP/out" &&
   [ "$(grep -Ec "^ +[0-9]+ +[0-9.]+ +[0-9.]+% +.* over \[.*\] +[0-9]+:[0-9]+( \(gradient\))?\$" "$TMP/out")" -eq 15 ]; then ok "$name"
else bad "$name" "exit $rc"
fi

# ---- (f) a CSV file without a header line ----------------------------------
# every line is a sample: the rows of covid.train.csv less its header line
# (an older version always skipped a first line)
mkdir -p "$TMP/nohead"
tail -n +2 "$CSV" > "$TMP/nohead/covid.csv"
spec "$TMP/nohead/hw1.nn" covid "SGD(net, lr: 1e-5, momentum: 0.9)" 1 1 "$TMP/nohead/covid.csv"
sed -i 's/header: true/header: false/' "$TMP/nohead/hw1.nn"
rows=$(wc -l < "$TMP/nohead/covid.csv" | tr -d ' ')
(cd "$TMP/nohead" && "$NNC" train hw1.nn) > "$TMP/out" 2> "$TMP/err"
rc=$?
name="header_false_trains_on_every_line"
if [ $rc -eq 0 ] && grep -q "^train: .* $rows samples" "$TMP/out"; then ok "$name ($rows samples)"
else bad "$name" "exit $rc, expected $rows samples"
fi

finish

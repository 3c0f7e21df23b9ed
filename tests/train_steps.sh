#!/bin/sh
# train_steps.sh NNC — train blocks of several steps (a GAN) with the real
# nnc binary on real Fashion-MNIST images: a small GAN trains for a few
# hundred batches with finite losses, its discriminator learns and its
# samples change; each step updates only what its optimizer names; `every`
# runs a step on every N-th batch; --resume continues byte for byte; a
# WGAN-GP critic differentiates its gradient penalty;
# gradcheck checks each step and fails on a flipped gradient; bench times
# all steps; a NaN is reported with its step; what a block of several steps
# cannot do yet is refused at its line. About 30 s in a Debug (ASan) build.
#
# Prints `[PASS] name` or `[FAIL] name` per check, then `N/M passed`; exits
# 0 only if every check passed, 77 (skipped) without Fashion-MNIST.
#
# Numbers behind the bound (seed 1, 2048 images, batch 32, 4 epochs, the
# generator's step on every second batch): the discriminator's loss (the
# sum of two BCEs) starts near 2 ln 2 = 1.386, a discriminator that cannot
# tell at all stays there, and this one ends near 0.8. The bound is 1.2.
set -u

. "$(dirname "$0")/lib.sh"
setup steps "$@"
need_fashion_mnist

# spec FILE D_LR G_LR EVERY: a small GAN on 2048 real images, D and G
# each an MLP, the generator's step on every EVERY-th batch
spec() {
  cat > "$1" <<EOF
data fashion = take(fashion_mnist(split: "train"), 2048)

model Gen {
  fc1 = Linear(16, 64)
  fc2 = Linear(64, 784)
  forward(z: [B, 16]) -> [B, 1, 28, 28] {
    return reshape(tanh(fc2(relu(fc1(z)))), [B, 1, 28, 28])
  }
}

model Disc {
  fc1 = Linear(784, 64)
  fc2 = Linear(64, 1)
  forward(x: [B, 1, 28, 28]) -> [B] {
    return squeeze(fc2(leaky_relu(fc1(flatten(x)), 0.2)), 1)
  }
}

train {
  seed = 1
  data = fashion.map(normalize(0.5, 0.5))
  batch = 32
  epochs = 4
  save_last = "ck/gan.safetensors"
  gen = Gen()
  disc = Disc()
  z_fixed = randn([16, 16])
  step discriminator {
    fake = stop_grad(gen(randn([B, 16])))
    loss = bce_with_logits(disc(x), ones([B])) + bce_with_logits(disc(fake), zeros([B]))
    optimizer = Adam(disc, lr: $2, betas: (0.5, 0.999))
  }
  step generator {
    every = $4
    loss = bce_with_logits(disc(gen(randn([B, 16]))), ones([B]))
    optimizer = Adam(gen, lr: $3, betas: (0.5, 0.999))
  }
  after epoch {
    write png_grid("ck/samples.png", gen(z_fixed) * 0.5 + 0.5, rows: 4)
  }
}
EOF
}

# run DIR CMD ARGS...: nnc CMD gan.nn ARGS in DIR; sets rc
run() {
  dir=$1 cmd=$2
  shift 2
  (cd "$dir" && "$NNC" "$cmd" gan.nn "$@") > "$TMP/out" 2> "$TMP/err"
  rc=$?
}

# tensor FILE NAME: the bytes of tensor NAME in a safetensors file (its
# header is JSON without spaces: "NAME":{...,"data_offsets":[a,b]})
tensor() {
  [ -f "$1" ] || return 1
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  offs=$(head -c $((8 + n)) "$1" | tail -c "$n" |
         sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/p")
  [ -n "$offs" ] || return 1
  set -- "$1" $offs
  tail -c +$((8 + n + $2 + 1)) "$1" | head -c $(($3 - $2))
}

# model FILE PREFIX: the bytes of a model's four tensors
model() {
  for t in fc1.weight fc1.bias fc2.weight fc2.bias; do tensor "$1" "$2.$t" || echo "missing $2.$t"; done
}

# the value of the scalar tensor NAME (a step counter)
scalar() { tensor "$1" "$2" | od -An -t f4 | tr -d ' '; }

# ---- (a) it trains: finite losses, a discriminator that learns, samples that change
mkdir -p "$TMP/gan" "$TMP/one"
spec "$TMP/gan/gan.nn" 2e-4 2e-4 2
spec "$TMP/one/gan.nn" 2e-4 2e-4 2
run "$TMP/one" train --epochs 1
cp "$TMP/one/ck/samples.png" "$TMP/samples1.png" 2>/dev/null
run "$TMP/gan" train
name="a_small_gan_trains_256_batches_with_finite_losses"
lines=$(grep -c '^epoch [0-9]*/4  discriminator_loss [0-9.]*  generator_loss [0-9.]* ' "$TMP/out")
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif [ "$lines" -ne 4 ]; then bad "$name" "$lines epoch lines with two finite losses, not 4"
elif grep -qi 'nan\|inf' "$TMP/out"; then bad "$name" "a loss is not finite"
else ok "$name"
fi
d=$(sed -n 's/^epoch 4\/4  discriminator_loss \([0-9.]*\) .*/\1/p' "$TMP/out")
name="the_discriminator_learns_to_tell_real_from_generated"
if [ -n "$d" ] && awk -v x="$d" 'BEGIN { exit !(x < 1.2) }'; then ok "$name (loss $d, chance 1.386)"
else bad "$name" "discriminator_loss '$d' after 4 epochs"
fi
name="the_generator_s_samples_change_from_epoch_1_to_epoch_4"
if [ "$(grep -c 'wrote ck/samples.png: 16 images' "$TMP/out")" -ne 4 ]; then bad "$name" "the samples were not written after every epoch"
elif [ ! -s "$TMP/samples1.png" ]; then bad "$name" "no samples after one epoch"
elif cmp -s "$TMP/samples1.png" "$TMP/gan/ck/samples.png"; then bad "$name" "the samples after epoch 4 are those of epoch 1"
else ok "$name"
fi
name="the_checkpoint_holds_both_models_and_each_step_s_optimizer_state"
missing=""
for t in gen.fc1.weight disc.fc2.bias discriminator.step generator.step discriminator.disc.fc1.weight.exp_avg \
         generator.gen.fc2.bias.exp_avg_sq; do
  tensor "$TMP/gan/ck/gan.state.safetensors" "$t" > /dev/null || missing="$missing $t"
done
if [ -z "$missing" ]; then ok "$name"; else bad "$name" "missing:$missing"; fi

# ---- (b) every = 2: the generator's step ran on half of the 256 batches
name="every_2_runs_the_generator_s_step_on_every_second_batch"
ds=$(scalar "$TMP/gan/ck/gan.state.safetensors" discriminator.step)
gs=$(scalar "$TMP/gan/ck/gan.state.safetensors" generator.step)
if [ "$ds" = 256 ] && [ "$gs" = 128 ]; then ok "$name (256 and 128 updates)"
else bad "$name" "discriminator.step '$ds', generator.step '$gs' (want 256 and 128)"
fi

# ---- (c) each step updates only its own model: with the other's lr at
# 1e-30 (Adam moves a weight by about lr, far below a float's resolution),
# a model ends as it started (the runs with both at 1e-30 say how it started)
mkdir -p "$TMP/none" "$TMP/donly" "$TMP/gonly"
spec "$TMP/none/gan.nn" 1e-30 1e-30 1
spec "$TMP/donly/gan.nn" 2e-4 1e-30 1
spec "$TMP/gonly/gan.nn" 1e-30 2e-4 1
for d in none donly gonly; do
  run "$TMP/$d" train --epochs 1
  [ $rc -eq 0 ] || bad "isolation_run_$d" "exit $rc"
  model "$TMP/$d/ck/gan.safetensors" gen > "$TMP/$d.gen"
  model "$TMP/$d/ck/gan.safetensors" disc > "$TMP/$d.disc"
done
name="the_discriminator_s_step_leaves_the_generator_unchanged"
if ! cmp -s "$TMP/none.gen" "$TMP/donly.gen"; then bad "$name" "gen's parameters changed"
elif cmp -s "$TMP/none.disc" "$TMP/donly.disc"; then bad "$name" "disc did not change either: the check cannot fail"
else ok "$name"
fi
name="the_generator_s_step_leaves_the_discriminator_unchanged"
if ! cmp -s "$TMP/none.disc" "$TMP/gonly.disc"; then bad "$name" "disc's parameters changed"
elif cmp -s "$TMP/none.gen" "$TMP/gonly.gen"; then bad "$name" "gen did not change either: the check cannot fail"
else ok "$name"
fi

# ---- (d) --resume after 2 of 4 epochs ends byte for byte as the run above
mkdir -p "$TMP/res"
spec "$TMP/res/gan.nn" 2e-4 2e-4 2
run "$TMP/res" train --epochs 2
run "$TMP/res" train --resume
name="resume_of_a_two_step_block_is_byte_identical"
if [ $rc -ne 0 ]; then bad "$name" "exit $rc"
elif ! grep -q 'resuming from ck/gan.state.safetensors after epoch 2' "$TMP/out"; then bad "$name" "did not resume"
elif ! cmp -s "$TMP/res/ck/gan.state.safetensors" "$TMP/gan/ck/gan.state.safetensors"; then bad "$name" "the states differ"
elif ! cmp -s "$TMP/res/ck/gan.safetensors" "$TMP/gan/ck/gan.safetensors"; then bad "$name" "the checkpoints differ"
else ok "$name"
fi

# ---- (e) gradcheck: each step's parameters; a flipped gradient fails
run "$TMP/gan" gradcheck
name="gradcheck_checks_each_step_s_parameters"
if [ $rc -eq 0 ] && grep -q '^  step discriminator' "$TMP/out" && grep -q '^  step generator' "$TMP/out" &&
   grep -q '^ok: worst relative error' "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi
mkdir -p "$TMP/flip"
sed 's/loss = bce_with_logits(disc(x), ones(\[B\]))/loss = bce_with_logits(grad_reverse(disc(x), lambda: 1.0), ones([B]))/' \
  "$TMP/gan/gan.nn" > "$TMP/flip/gan.nn"
run "$TMP/flip" gradcheck
name="gradcheck_of_a_step_fails_when_its_gradient_is_flipped"
if [ $rc -eq 1 ] && grep -q grad_reverse "$TMP/flip/gan.nn" && grep -q '^FAILED: worst relative error' "$TMP/out"; then
  ok "$name"
else bad "$name" "exit $rc"
fi

# ---- (f) bench times all steps once, and each step's kernels; ir prints each step
run "$TMP/gan" bench
name="bench_times_both_steps_as_one_step"
if [ $rc -eq 0 ] && grep -q '^  steps     2, each once a step: discriminator generator' "$TMP/out" &&
   grep -q '^  step      median [0-9.]* ms' "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi
run "$TMP/gan" bench --kernels
name="bench_kernels_times_the_kernels_of_each_step"
# a table per step, each with its own kernels' times: none all 0, and the
# two together about one iteration (were the steps to share the profiler's
# places, each table would hold both steps' times, twice the iteration)
tables=$(grep -c '^  the kernels of step \(discriminator\|generator\):$' "$TMP/out")
totals=$(sed -n 's/^  kernels *[0-9]*, \([0-9.]*\) ms a step in all:.*/\1/p' "$TMP/out" | awk '$1 > 0' | wc -l)
sum=$(sed -n 's/^  kernels *[0-9]*, \([0-9.]*\) ms a step in all:.*/\1/p' "$TMP/out" | awk '{ s += $1 } END { print s + 0 }')
median=$(sed -n 's/^  step *median \([0-9.]*\) ms.*/\1/p' "$TMP/out")
if [ $rc -eq 0 ] && [ "$tables" -eq 2 ] && [ "$totals" -eq 2 ] && awk -v s="$sum" -v m="$median" 'BEGIN { exit !(s < 1.5 * m) }'; then
  ok "$name"
else bad "$name" "exit $rc, $tables tables, $totals with times, $sum ms in all against a $median ms iteration"
fi
run "$TMP/gan" ir --stage=opt
name="ir_prints_each_step_under_its_name"
if [ $rc -eq 0 ] && grep -q '^step discriminator:$' "$TMP/out" && grep -q '^step generator (every 2 batches):$' "$TMP/out"; then
  ok "$name"
else bad "$name" "exit $rc"
fi

# ---- (g) a NaN names its step; the unfused rerun names the op
mkdir -p "$TMP/nan"
sed 's/    loss = bce_with_logits(disc(gen(randn(\[B, 16\]))), ones(\[B\]))/    loss = sqrt(-1 - mean(square(gen(randn([B, 16])))))/' \
  "$TMP/gan/gan.nn" > "$TMP/nan/gan.nn"
run "$TMP/nan" train
name="a_nan_loss_names_its_step_and_its_op"
if [ $rc -eq 1 ] && grep -q 'error: the generator loss became NaN at epoch 1, batch 1' "$TMP/err" &&
   grep -q 'the first NaN comes from %[0-9]* = sqrt' "$TMP/err" && grep -q 'note: in step generator of epoch 1, batch 1' "$TMP/err"; then
  ok "$name"
else bad "$name" "exit $rc"
fi

# ---- (h) WGAN-GP: the critic's step differentiates its gradient penalty
# (grad() of the critic, differentiated again when the critic is updated)
mkdir -p "$TMP/wgan"
cat > "$TMP/wgan/gan.nn" <<'EOF'
data fashion = take(fashion_mnist(split: "train"), 1024)

model Gen {
  fc1 = Linear(16, 64)
  fc2 = Linear(64, 784)
  forward(z: [B, 16]) -> [B, 1, 28, 28] {
    return reshape(tanh(fc2(relu(fc1(z)))), [B, 1, 28, 28])
  }
}

model Critic {
  fc1 = Linear(784, 64)
  fc2 = Linear(64, 1)
  forward(x: [B, 1, 28, 28]) -> [B] {
    return squeeze(fc2(tanh(fc1(flatten(x)))), 1)
  }
}

train {
  seed = 1
  data = fashion.map(normalize(0.5, 0.5))
  batch = 32
  epochs = 1
  gen = Gen()
  critic = Critic()
  step critic {
    f_imgs = stop_grad(gen(randn([B, 16])))
    alpha = rand([B, 1, 1, 1])
    x_hat = alpha * x + (1 - alpha) * f_imgs
    g = grad(sum(critic(x_hat)), x_hat)
    gp = mean(square(sqrt(sum(square(g), dim: (1, 2, 3)) + 1e-12) - 1))
    loss = mean(critic(f_imgs)) - mean(critic(x)) + 10 * gp
    optimizer = Adam(critic, lr: 1e-4, betas: (0.0, 0.9))
  }
  step generator {
    every = 5
    loss = -mean(critic(gen(randn([B, 16]))))
    optimizer = Adam(gen, lr: 1e-4, betas: (0.0, 0.9))
  }
}
EOF
run "$TMP/wgan" train
name="wgan_gp_trains_with_a_gradient_penalty_in_the_critic_s_step"
if [ $rc -eq 0 ] && grep -q '^epoch 1/1  critic_loss -*[0-9.]*  generator_loss -*[0-9.]* ' "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi
run "$TMP/wgan" gradcheck
name="gradcheck_passes_through_the_gradient_penalty"
if [ $rc -eq 0 ] && grep -q '^  step critic' "$TMP/out" && grep -q '^ok: worst relative error' "$TMP/out"; then ok "$name"
else bad "$name" "exit $rc"
fi

# ---- (i) what a block of several steps cannot do yet is refused at its line
mkdir -p "$TMP/best"
sed 's/  save_last = /  save_best = /' "$TMP/gan/gan.nn" > "$TMP/best/gan.nn"
run "$TMP/best" train
name="save_best_in_a_block_of_several_steps_is_refused_at_its_line"
if [ $rc -eq 1 ] && grep -q "^gan.nn:24:3: error: the setting 'save_best' in a train block of several steps cannot be compiled for training yet" "$TMP/err"; then
  ok "$name"
else bad "$name" "exit $rc"
fi

finish

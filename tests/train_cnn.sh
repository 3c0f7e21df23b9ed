#!/bin/sh
# train_cnn.sh NNC — a small CNN learns on real Fashion-MNIST: 2,000
# training images, 4 epochs of Adam, then the accuracy on 1,000 test images.
# About 40 s in a Release build, 2-3 minutes in a Debug (ASan) build.
#
# The model (conv 8, conv 16, conv 32, BatchNorm, max pooling, global
# average pooling, one Linear(32, 10)) can only do well if its convolutions
# learn: the head sees 32 averaged channels. The numbers behind the bound
# (seed 3): a correct run reaches test accuracy 0.63 to 0.70 (the last bits
# of the arithmetic, such as how many images one GEMM takes, move it within
# that range; seeds 1-6 give 0.64-0.72); the same run with the
# convolutions' filter gradients zeroed (a broken CONV2D_BWD_W) stays at
# 0.40, and an untrained model is at chance, 0.10. The bound, 0.55, lies
# between. A second run with augmentation (random crop with padding, flip,
# rotation) must learn too, to a lower bound, 0.30 (three times chance):
# on 2,000 images, 4 epochs of augmented batches reach 0.44 (and 0.55 after
# 8 epochs; a crop or a flip alone reach 0.64). A third run, with the same
# seed, must write a byte-identical checkpoint (the augmentation draws from
# the run's RNG).
#
# Exits 0 if every check passed, 77 (skipped) without the Fashion-MNIST
# package (dataset-fashion-mnist).
set -u

NNC=${1:?usage: train_cnn.sh NNC}
case $NNC in /*) ;; *) NNC=$(pwd)/$NNC ;; esac
BOUND=0.55
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skipped: the Fashion-MNIST package (dataset-fashion-mnist) is not installed"
  exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnc_cnn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
pass=0
total=0
ok() { pass=$((pass + 1)); total=$((total + 1)); echo "[PASS] $1"; }
bad() { total=$((total + 1)); echo "[FAIL] $1"; shift; for f in "$@"; do sed 's/^/    /' "$f" | tail -20; done; }

# spec NAME TRAIN_DATA: the CNN trained on TRAIN_DATA, tested on 1,000 images
spec() {
  cat > "$TMP/$1.nn" <<NN
data fashion = fashion_mnist(split: "train")
data fashion_test = fashion_mnist(split: "test")
model Net {
  features = seq {
    Conv2d(1, 8, 3, padding: 1), BatchNorm2d(8), ReLU, MaxPool2d(2)
    Conv2d(8, 16, 3, padding: 1), BatchNorm2d(16), ReLU, MaxPool2d(2)
    Conv2d(16, 32, 3, padding: 1), ReLU, AdaptiveAvgPool2d(1)
  }
  head = seq { Flatten, Linear(32, 10) }
  forward(x: [B, 1, 28, 28]) -> [B, 10] { return head(features(x)) }
}
train {
  seed = 3
  data = $2
  test = take(fashion_test, 1000)
  batch = 32
  epochs = 4
  save_last = "$1.safetensors"
  net = Net()
  logits = net(x)
  loss = cross_entropy(logits, y)
  metrics = [accuracy(logits, y)]
  optimizer = Adam(net, lr: 3e-3)
}
NN
}

# accuracy_of OUT: the test accuracy nnc printed
accuracy_of() { sed -n 's/.*test_accuracy \([0-9.]*\).*/\1/p' "$1" | tail -1; }

check_learns() {
  name=$1 bound=$2
  if "$NNC" train "$TMP/$name.nn" > "$TMP/$name.out" 2> "$TMP/$name.err"; then
    acc=$(accuracy_of "$TMP/$name.out")
    if [ -n "$acc" ] && awk -v a="$acc" -v b="$bound" 'BEGIN { exit !(a >= b) }'; then
      ok "$name: test accuracy $acc >= $bound"
    else
      bad "$name: test accuracy '$acc' < $bound" "$TMP/$name.out"
    fi
  else
    bad "$name: nnc train failed" "$TMP/$name.out" "$TMP/$name.err"
  fi
}

spec plain "take(fashion, 2000)"
check_learns plain $BOUND
# one epoch on one thread and on the step's two threads (convolutions,
# poolings, products, loops and sums in halves): the same training, up to
# the order in which a filter gradient's halves are summed
loss_of() { sed -n 's/^epoch 1\/1 *train_loss \([0-9.]*\).*/\1/p' "$1"; }
OPENBLAS_NUM_THREADS=1 "$NNC" train "$TMP/plain.nn" --epochs 1 > "$TMP/one.out" 2>&1
OPENBLAS_NUM_THREADS=2 "$NNC" train "$TMP/plain.nn" --epochs 1 > "$TMP/two.out" 2>&1
l1=$(loss_of "$TMP/one.out") l2=$(loss_of "$TMP/two.out")
if [ -n "$l1" ] && [ -n "$l2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; exit !(d <= 0.001 && d >= -0.001) }'; then
  ok "one thread and two threads train alike: epoch 1 loss $l1 and $l2"
else
  bad "one thread and two threads differ: epoch 1 loss '$l1' and '$l2'" "$TMP/one.out" "$TMP/two.out"
fi
spec augmented "take(fashion, 2000).map(crop(28, padding: 2)).map(flip(p: 0.5)).map(rotate(10))"
check_learns augmented 0.30
cp "$TMP/augmented.safetensors" "$TMP/first.safetensors" 2>/dev/null
if "$NNC" train "$TMP/augmented.nn" > "$TMP/again.out" 2>&1 && cmp -s "$TMP/first.safetensors" "$TMP/augmented.safetensors"; then
  ok "the same seed with augmentation gives a byte-identical checkpoint"
else
  bad "the same seed with augmentation gives different weights" "$TMP/again.out"
fi

# an image folder (tests/data/image_folder: 3 classes, 30 PNGs each), labels
# from the class folders, with a random flip: the 18 held-out images must be
# mostly right (chance: 0.33; seeds 1-3 reach 0.94-1.0)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cat > "$TMP/folder.nn" <<NN
data imgs = image_folder("$ROOT/tests/data/image_folder", size: 28, gray: true)
model Net {
  f = seq { Conv2d(1, 8, 3, padding: 1), ReLU, MaxPool2d(2), Flatten, Linear(8 * 14 * 14, 3) }
  forward(x: [B, 1, 28, 28]) -> [B, 3] { return f(x) }
}
train {
  seed = 1
  data = imgs.map(flip(p: 0.5))
  valid = 0.2
  batch = 16
  epochs = 8
  net = Net()
  logits = net(x)
  loss = cross_entropy(logits, y)
  metrics = [accuracy(logits, y)]
  optimizer = Adam(net, lr: 1e-3)
}
NN
if "$NNC" train "$TMP/folder.nn" > "$TMP/folder.out" 2>&1; then
  vacc=$(sed -n 's/^epoch 8\/8.*valid_accuracy \([0-9.]*\).*/\1/p' "$TMP/folder.out")
  if [ -n "$vacc" ] && awk -v a="$vacc" 'BEGIN { exit !(a >= 0.75) }'; then
    ok "image folder: valid accuracy $vacc >= 0.75"
  else
    bad "image folder: valid accuracy '$vacc' < 0.75" "$TMP/folder.out"
  fi
else
  bad "image folder: nnc train failed" "$TMP/folder.out"
fi

# HW10's I-FGSM (examples/adversarial.nn on less data): a gradient with
# respect to the input inside an unrolled loop, two checkpoints loaded into
# one predict block, and the attack's images within eps = 8/255 of the
# originals (max_of |x_adv - x| * 255 <= 8). The attack must cost the proxy
# at least 5 points of accuracy (it costs 15-20).
sed -e 's/take(fashion, 6000)/take(fashion, 3000)/' -e 's/epochs = 2/epochs = 1/' \
    -e "s#\.\./models/examples/#$TMP/#" -e "s#\.\./out/examples/#$TMP/#" \
    "$ROOT/examples/adversarial.nn" > "$TMP/adv.nn"
if "$NNC" train "$TMP/adv.nn" --block proxy > "$TMP/adv.out" 2>&1 &&
   "$NNC" train "$TMP/adv.nn" --block victim >> "$TMP/adv.out" 2>&1 &&
   "$NNC" predict "$TMP/adv.nn" > "$TMP/adv.pred" 2>&1; then
  line=$(grep '^metrics over' "$TMP/adv.pred")
  if echo "$line" | awk '{ for (i = 1; i <= NF; i++) v[$i] = $(i + 1) }
        END { exit !(v["accuracy"] - v["accuracy_2"] >= 0.05 && v["max_of"] <= 8.0001 && v["max_of"] >= 7.99) }' &&
     [ -f "$TMP/ifgsm.png" ]; then
    ok "I-FGSM: $line"
  else
    bad "I-FGSM: accuracy did not drop by 0.05, or a pixel moved more than 8/255: $line" "$TMP/adv.pred"
  fi
else
  bad "I-FGSM example failed" "$TMP/adv.out" "$TMP/adv.pred"
fi

# HW13's knowledge distillation: a student with depthwise-separable
# convolutions learns from the proxy above (load(teacher, ...) in the train
# block, frozen: stop_grad, and not in the optimizer) with kd_loss. The
# teacher's weights must come out of training unchanged (the teacher loaded
# from the student's checkpoint, where it is "teacher.*", scores exactly as
# the original), and the student must learn (chance is 0.10).
cat > "$TMP/kd.nn" <<NN
data fashion = fashion_mnist(split: "train")
data few = take(fashion_mnist(split: "test"), 500)
model Small {
  f = seq {
    Conv2d(1, 8, 3, padding: 1), ReLU, MaxPool2d(2)
    Conv2d(8, 16, 3, padding: 1), ReLU, MaxPool2d(2)
    Flatten, Linear(16 * 7 * 7, 10)
  }
  forward(x: [B, 1, 28, 28]) -> [B, 10] { return f(x) }
}
model Tiny {
  f = seq {
    Conv2d(1, 8, 3, padding: 1), ReLU, MaxPool2d(2)
    Conv2d(8, 8, 3, padding: 1, groups: 8), Conv2d(8, 16, 1), ReLU, MaxPool2d(2)
    Flatten, Linear(16 * 7 * 7, 10)
  }
  forward(x: [B, 1, 28, 28]) -> [B, 10] { return f(x) }
}
train {
  seed = 4
  data = take(fashion, 3000)
  batch = 32
  epochs = 2
  save_last = "$TMP/kd.safetensors"
  teacher = Small()
  load(teacher, "$TMP/proxy.safetensors")
  student = Tiny()
  logits = student(x)
  loss = kd_loss(logits, stop_grad(teacher(x)), y, T: 4.0, alpha: 0.5)
  metrics = [accuracy(logits, y)]
  optimizer = Adam(student, lr: 3e-3)
}
predict student {
  data = few
  student = Tiny()
  load(student, "$TMP/kd.safetensors")
  metrics = [accuracy(student(x), y)]
  write csv("$TMP/kd.csv") {
    id = index
    label = y
    pred = argmax(student(x), 1)   # the same argmax as accuracy's: one node after CSE
  }
}
predict teacher_before {
  data = few
  teacher = Small()
  load(teacher, "$TMP/proxy.safetensors")
  metrics = [accuracy(teacher(x), y)]
  write csv("$TMP/t1.csv") { id = index }
}
predict teacher_after {
  data = few
  teacher = Small()
  load(teacher, "$TMP/kd.safetensors")
  metrics = [accuracy(teacher(x), y)]
  write csv("$TMP/t2.csv") { id = index }
}
NN
metric() { sed -n 's/^metrics over.*accuracy \([0-9.]*\).*/\1/p' "$1"; }
if [ -f "$TMP/proxy.safetensors" ] && "$NNC" train "$TMP/kd.nn" > "$TMP/kd.out" 2>&1 &&
   "$NNC" predict "$TMP/kd.nn" --block student > "$TMP/kd.s" 2>&1 &&
   "$NNC" predict "$TMP/kd.nn" --block teacher_before > "$TMP/kd.t1" 2>&1 &&
   "$NNC" predict "$TMP/kd.nn" --block teacher_after > "$TMP/kd.t2" 2>&1; then
  s=$(metric "$TMP/kd.s") t1=$(metric "$TMP/kd.t1") t2=$(metric "$TMP/kd.t2")
  # the written predictions score what the metric says (a column CSE merged
  # with the metric's argmax once wrote zeros)
  csv=$(awk -F, 'NR > 1 { n++; if ($2 == $3) h++ } END { if (n) printf "%.4f", h / n }' "$TMP/kd.csv")
  if [ -n "$s" ] && [ "$csv" = "$s" ] && [ -n "$t1" ] && [ "$t1" = "$t2" ] && awk -v a="$s" 'BEGIN { exit !(a >= 0.5) }'; then
    ok "distillation: student accuracy $s; the frozen teacher scores $t1 before and $t2 after"
  else
    bad "distillation: student '$s' (>= 0.5; the CSV's own '$csv'), teacher before '$t1' and after '$t2' (equal)" "$TMP/kd.out" "$TMP/kd.s" "$TMP/kd.t2"
  fi
else
  bad "distillation failed" "$TMP/kd.out" "$TMP/kd.s" "$TMP/kd.t1" "$TMP/kd.t2"
fi

# A frozen model in a train block (loaded, and in no optimizer) runs as in
# evaluation: Net's BatchNorm layers use their running statistics and
# leave them alone, so the teacher loaded back from the student's
# checkpoint scores exactly what plain.safetensors scores. The student is
# pruned after each epoch (half of each weight's remaining entries): after
# epoch 2, 75.0% of its weights are zero, which holds only if the masks
# kept the entries pruned after epoch 1 at zero through epoch 2's updates.
# Then a block without data optimises 4 images against the frozen Net
# (slicing its logits) and writes them after training.
cat > "$TMP/prune.nn" <<NN
data fashion = fashion_mnist(split: "train")
data few = take(fashion_mnist(split: "test"), 500)
model Net {
  features = seq {
    Conv2d(1, 8, 3, padding: 1), BatchNorm2d(8), ReLU, MaxPool2d(2)
    Conv2d(8, 16, 3, padding: 1), BatchNorm2d(16), ReLU, MaxPool2d(2)
    Conv2d(16, 32, 3, padding: 1), ReLU, AdaptiveAvgPool2d(1)
  }
  head = seq { Flatten, Linear(32, 10) }
  forward(x: [B, 1, 28, 28]) -> [B, 10] { return head(features(x)) }
}
model Tiny {
  f = seq {
    Conv2d(1, 8, 3, padding: 1), ReLU, MaxPool2d(2)
    Conv2d(8, 16, 3, padding: 1), ReLU, MaxPool2d(2)
    Flatten, Linear(16 * 7 * 7, 10)
  }
  forward(x: [B, 1, 28, 28]) -> [B, 10] { return f(x) }
}
train {
  seed = 5
  data = take(fashion, 2000)
  batch = 32
  epochs = 2
  save_last = "$TMP/pruned.safetensors"
  teacher = Net()
  load(teacher, "$TMP/plain.safetensors")
  student = Tiny()
  logits = student(x)
  loss = kd_loss(logits, stop_grad(teacher(x)), y, T: 4.0, alpha: 0.5)
  metrics = [accuracy(logits, y)]
  optimizer = Adam(student, lr: 3e-3)
  after epoch {
    prune(student, amount: 0.5)
  }
}
train dream {
  seed = 0
  iterations = 20
  net = Net()
  load(net, "$TMP/plain.safetensors")
  img = variable([4, 1, 28, 28], init: "rand")
  loss = -mean(net(img)[:, 3:4]) + mean(square(img))
  optimizer = Adam(img, lr: 0.05)
  after train {
    write png_grid("$TMP/dream.png", clip(img, 0, 1), rows: 2)
  }
}
train noise {
  seed = 7
  data = take(fashion, 64)
  batch = 32
  epochs = 1
  net = Tiny()
  logits = net(x)
  loss = cross_entropy(logits, y)
  optimizer = Adam(net, lr: 1e-3)
  after epoch {
    write png_grid("$TMP/noise.png", sigmoid(randn([4, 1, 8, 8])), rows: 2)
  }
}
predict teacher_before {
  data = few
  teacher = Net()
  load(teacher, "$TMP/plain.safetensors")
  metrics = [accuracy(teacher(x), y)]
  write csv("$TMP/p1.csv") { id = index }
}
predict teacher_after {
  data = few
  teacher = Net()
  load(teacher, "$TMP/pruned.safetensors")
  metrics = [accuracy(teacher(x), y)]
  write csv("$TMP/p2.csv") { id = index }
}
NN
if [ -f "$TMP/plain.safetensors" ] && "$NNC" train "$TMP/prune.nn" > "$TMP/prune.out" 2>&1 &&
   "$NNC" predict "$TMP/prune.nn" --block teacher_before > "$TMP/prune.t1" 2>&1 &&
   "$NNC" predict "$TMP/prune.nn" --block teacher_after > "$TMP/prune.t2" 2>&1; then
  t1=$(metric "$TMP/prune.t1") t2=$(metric "$TMP/prune.t2")
  sparse=$(sed -n 's/^pruned .* after epoch 2: .*(\([0-9.]*\)%) are now zero$/\1/p' "$TMP/prune.out")
  acc=$(sed -n 's/^epoch 2\/2 .* accuracy \([0-9.]*\).*/\1/p' "$TMP/prune.out")
  if [ -n "$t1" ] && [ "$t1" = "$t2" ]; then
    ok "a frozen teacher with BatchNorm scores $t1 before and $t2 after training beside it"
  else
    bad "the frozen teacher changed: before '$t1', after '$t2'" "$TMP/prune.out" "$TMP/prune.t2"
  fi
  if [ "$sparse" = "75.0" ] && [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 0.5) }'; then
    ok "pruning: 75.0% of the student's weights are zero after 2 epochs, and it trains (accuracy $acc)"
  else
    bad "pruning: '$sparse'% zero after epoch 2 (want 75.0), training accuracy '$acc' (>= 0.5)" "$TMP/prune.out"
  fi
else
  bad "pruning or the frozen teacher failed" "$TMP/prune.out" "$TMP/prune.t1" "$TMP/prune.t2"
  bad "pruning: not run"
fi
if "$NNC" train "$TMP/prune.nn" --block dream > "$TMP/dream.out" 2>&1 &&
   grep -q "^done: 20 iterations" "$TMP/dream.out" &&
   [ "$(head -c 4 "$TMP/dream.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = "89504e47" ]; then
  ok "a block without data trains 20 iterations and writes its images after training"
else
  bad "input optimisation (iterations, after train) failed" "$TMP/dream.out"
fi

# the noise of an after-epoch write comes from the block's seed alone: the
# picture written after epoch 3 is the one written after epoch 1
if "$NNC" train "$TMP/prune.nn" --block noise > "$TMP/noise.out" 2>&1 && cp "$TMP/noise.png" "$TMP/noise1.png" &&
   "$NNC" train "$TMP/prune.nn" --block noise --epochs 3 > "$TMP/noise.out" 2>&1 &&
   [ "$(grep -c "wrote $TMP/noise.png" "$TMP/noise.out")" -eq 3 ] && cmp -s "$TMP/noise1.png" "$TMP/noise.png"; then
  ok "an after-epoch write runs after every epoch, with the same noise each time"
else
  bad "after-epoch writes: not 3 writes, or the noise differs between epochs" "$TMP/noise.out"
fi

# the training-curve chart next to the log: a PNG with a line per number logged
if [ "$(head -c 4 "$TMP/plain.curves.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = "89504e47" ]; then
  ok "plain.curves.png is drawn next to plain.log.jsonl"
else
  bad "no training-curve chart plain.curves.png" "$TMP/plain.out"
fi

echo "$pass/$total passed"
[ "$pass" -eq "$total" ]

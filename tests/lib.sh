# lib.sh — what the training test scripts share. A script sources it and
# calls `setup NAME "$@"`:
#
#   . "$(dirname "$0")/lib.sh"
#   setup steps "$@"            # NNC (absolute) from $1; a temporary folder $TMP
#   need_fashion_mnist          # exit 77 (skipped) without the data set
#   ok NAME / bad NAME WHY      # [PASS] NAME / [FAIL] NAME: WHY, then the last
#                               # lines of $TMP/out and $TMP/err
#   finish                      # N/M passed; the script's status
setup() {
  NNC=${2:?usage: $0 NNC}
  case $NNC in /*) ;; *) NNC=$(pwd)/$NNC ;; esac
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnc_$1.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT INT TERM
  pass=0
  total=0
}

need_fashion_mnist() {
  if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "skipped: the Fashion-MNIST package (dataset-fashion-mnist) is not installed"
    exit 77
  fi
}

ok() { pass=$((pass + 1)); total=$((total + 1)); echo "[PASS] $1"; }
bad() {
  total=$((total + 1))
  echo "[FAIL] $1: $2"
  for f in "$TMP/out" "$TMP/err"; do
    [ -s "$f" ] && sed 's/^/    | /' "$f" | tail -n 15
  done
}

finish() {
  echo "$pass/$total passed"
  [ "$pass" -eq "$total" ]
}

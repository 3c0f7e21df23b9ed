#!/bin/sh
# Installs what bench/run.sh needs beyond scripts/setup.sh (which builds nnc and
# installs OpenBLAS and the Fashion-MNIST data): Debian's PyTorch and NumPy for the
# reference runs, GNU time for peak memory. Debian packages only, no pip.
# Idempotent: packages already present are left as they are.
# Usage: bench/setup.sh   (as root, or with sudo available)
set -eu

PKGS="python3 python3-torch python3-numpy time libopenblas-dev dataset-fashion-mnist"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "bench/setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "bench/setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing

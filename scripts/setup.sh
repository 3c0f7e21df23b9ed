#!/bin/sh
# Installs every Debian package nnc needs to build, test and train.
# Idempotent: packages already present are left as they are.
# Usage: scripts/setup.sh   (as root, or with sudo available)
set -eu

PKGS="build-essential cmake pkg-config flex bison clang libclang-rt-14-dev \
libopenblas-dev libcmocka-dev llvm-19-dev zlib1g-dev libzstd-dev libedit-dev \
libxml2-dev libpng-dev dataset-fashion-mnist cppcheck"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing

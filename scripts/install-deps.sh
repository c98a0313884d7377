#!/usr/bin/env bash
# Installs (with apt-get) the Debian 12 packages Coord builds, tests and benchmarks with.
# Only what is missing is installed, so a second run is a no-op that takes a second.
# Usage: scripts/install-deps.sh [--with-bench]   (needs root, or sudo without a password)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssh2-1-dev libboost-program-options-dev
  libopenmpi-dev openmpi-bin libgloo-dev
  libopenblas-dev libopenblas0-pthread nlohmann-json3-dev libicu-dev
  libyaml-cpp-dev libssl-dev libcpp-httplib-dev libre2-dev
  libgtest-dev libgmock-dev libsystemd-dev systemd libxxhash-dev
  iproute2 procps openssh-server openssh-client
  python3-protobuf prometheus
  libjs-chart.js chromium
  clang libclang-rt-14-dev libomp-dev  # scripts/fuzz.sh: libFuzzer + sanitizers, clang's OpenMP
)
if [[ "${1:-}" == "--with-bench" ]]; then
  packages+=(python3-torch hyperfine)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if (( ${#missing[@]} == 0 )); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! sudo -n true 2>/dev/null; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root (or with password-less sudo) to install them" >&2
    exit 2
  fi
  sudo_cmd=(sudo -n)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

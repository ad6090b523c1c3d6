#!/usr/bin/env bash
# install-deps.sh — installs linattn's Debian packages when they are missing.
# As root it runs apt-get itself; otherwise it prints the exact apt-get line and exits 1.
# Usage: scripts/install-deps.sh [--mpi | --fuzz]   (the Makefile runs it if pkg-config misses one)
set -euo pipefail

pkgs=(build-essential pkg-config libgsl-dev libhdf5-dev hdf5-tools libopenblas-dev libfyaml-dev
      libcmocka-dev nettle-dev gnuplot-nox)
[ "${1:-}" = "--mpi" ] && pkgs+=(libopenmpi-dev openmpi-bin)
# Optional: `make fuzz` (the experiment-file fuzzer) needs clang, its libFuzzer runtime and libomp.
[ "${1:-}" = "--fuzz" ] && pkgs+=(clang libclang-rt-14-dev libomp-dev)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "linattn needs these Debian packages; as root run:" >&2
    echo "  apt-get update && $line" >&2
    exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
$line >&2

#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages that linattn's make targets need, when missing.
# As root it runs apt-get itself; otherwise it prints the exact apt-get line and exits 1.
# Not a package manager: it checks packages with dpkg-query and installs with apt-get (Debian 12);
# on a system without dpkg it prints what it would need and leaves that to the user (exit 0).
# Tested by scripts/fresh-debian.sh (a fresh Debian 12 root where `make figures` and `make check`
# must install everything themselves) and, when everything is installed, by every make target.
#
# Usage: scripts/install-deps.sh [GROUP...]     (the Makefile runs it before every build target)
#   build    compiler, pkg-config and the -dev libraries (always included)
#   check    + cmocka, h5py, hdf5-tools, bc         (make check, make asan)
#   figures  + gnuplot-nox                          (make figures)
#   mpi      + Open MPI                             (MPI=1, make check-mpi)
#   blis | netlib   + that BLAS                     (BLAS=blis, BLAS=netlib)
#   fuzz     + clang, libFuzzer, libomp             (make fuzz)
#   (no group: build check figures; --mpi / --fuzz: those plus mpi / fuzz)
set -euo pipefail

groups=("$@")
case "${1:-}" in
    "") groups=(check figures) ;;
    --mpi) groups=(check figures mpi) ;;
    --fuzz) groups=(check figures fuzz) ;;
esac

pkgs=(build-essential pkg-config libgsl-dev libhdf5-dev libopenblas-dev libfyaml-dev nettle-dev)
for g in "${groups[@]}"; do
    case "$g" in
        build) ;;
        check) pkgs+=(libcmocka-dev python3-h5py hdf5-tools bc) ;;
        figures) pkgs+=(gnuplot-nox) ;;
        mpi) pkgs+=(libopenmpi-dev openmpi-bin procps) ;;
        blis) pkgs+=(libblis-dev) ;;
        netlib) pkgs+=(libblas-dev) ;;
        fuzz) pkgs+=(clang libclang-rt-14-dev libomp-dev) ;;
        *) echo "install-deps.sh: unknown group '$g' (build, check, figures, mpi, blis, netlib," \
                "fuzz)" >&2
           exit 2 ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps.sh: no dpkg here; linattn needs the equivalents of: ${pkgs[*]}" >&2
    exit 0
fi
# One dpkg-query for all of them: a package it does not know is reported on stderr, not listed.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null |
            awk '$NF == "installed" {print $1}') || true
missing=()
for p in "${pkgs[@]}"; do
    grep -qx "$p" <<<"$installed" || missing+=("$p")
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

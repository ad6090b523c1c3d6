#!/usr/bin/env bash
# fresh-debian.sh — runs the README's quick start on a fresh Debian 12: a minimal bookworm root
# (debootstrap --variant=minbase, plus build-essential and git) gets a clone of the commit under
# test (HEAD of this checkout; uncommitted changes are not in it), and there, as root with an
# empty environment, `make figures` then `make check` must install what they need and pass.
# Exit 0 only when both commands exit 0; each phase's wall time and the total are printed.
#
# Not a container runtime: a chroot in a private mount namespace (unshare), with /proc, /sys
# and /dev mounted for the run and unmounted on every exit.  The debootstrapped base root is
# cached and never changed: each run works on a throw-away overlay (or a copy, without
# overlayfs) of it, so packages installed by an earlier run cannot hide a missing install step.
# Downloaded .deb files are kept in the cache (apt-archives/) and reused by later runs: apt
# still installs every package into the clean root, it only skips the download.
# Tested by running it: .ci/run does, on every CI run.
#
# Usage (as root): scripts/fresh-debian.sh [--cache DIR] [--rebuild-base]
#   --cache DIR      where the base root, the .deb cache and the last log live; default
#                    $FRESH_DEBIAN_CACHE, else .fresh-debian/ in the checkout (git-ignored)
#   --rebuild-base   debootstrap the base root again (e.g. after a Debian point release)
# Environment: FRESH_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   FRESH_DEBIAN_TIMEOUT (seconds per make command, default 1500).
# Needs: root, mount and chroot rights (it checks), Debian's mirrors; installs debootstrap on
# the host with apt-get when it is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_DEBIAN_CACHE:-$repo/.fresh-debian}
rebuild=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cache) [ $# -ge 2 ] || { echo "fresh-debian.sh: --cache needs a directory" >&2; exit 2; }
                 cache=$2; shift ;;
        --rebuild-base) rebuild=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fresh-debian.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mirror=${FRESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
limit=${FRESH_DEBIAN_TIMEOUT:-1500}

if [ "$(id -u)" -ne 0 ]; then
    echo "fresh-debian.sh: needs root (debootstrap, mount, chroot)" >&2
    exit 2
fi

# Everything below runs in a private mount namespace: the mounts made for the root are
# invisible to the host and disappear with the namespace even if this script is killed.
if [ -z "${FRESH_DEBIAN_NS:-}" ]; then
    if ! unshare --mount --propagation private true 2>/dev/null; then
        echo "fresh-debian.sh: cannot create a mount namespace here (unshare --mount failed)" >&2
        exit 2
    fi
    FRESH_DEBIAN_NS=1 exec unshare --mount --propagation private \
        bash "$repo/scripts/fresh-debian.sh" --cache "$cache" \
        $([ $rebuild -eq 1 ] && echo --rebuild-base)
fi

t_start=$(date +%s)
phase_t=$t_start
timings=()
phase() { # phase NAME: records the wall time since the previous phase ended
    local now
    now=$(date +%s)
    timings+=("$(printf '%-22s %5d s' "$1" $((now - phase_t)))")
    echo "-- $1: $((now - phase_t)) s"
    phase_t=$now
}

commit=$(git -C "$repo" rev-parse HEAD)
if ! git -C "$repo" diff --quiet HEAD 2>/dev/null; then
    echo "fresh-debian.sh: note: uncommitted changes are not tested, only commit ${commit:0:12}"
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/lock"
flock 9 # one run at a time per cache
echo "fresh-debian.sh: commit ${commit:0:12}, cache $cache"

# ---- host: debootstrap ----------------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "== installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi
phase "host debootstrap"

# ---- the cached base root ------------------------------------------------------------------
base=$cache/bookworm-minbase
if [ $rebuild -eq 1 ] || [ ! -f "$base.done" ]; then
    echo "== debootstrap --variant=minbase bookworm (+ build-essential, git) into $base"
    rm -rf --one-file-system "$base" "$base.tmp" "$base.done"
    debootstrap --variant=minbase --include=build-essential,git bookworm "$base.tmp" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 30 "$cache/debootstrap.log"; echo "fresh-debian.sh: debootstrap failed" >&2; exit 1; }
    # The sources of a Debian 12 installation: the release, its updates and security.
    cat >"$base.tmp/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    rm -f "$base.tmp"/var/cache/apt/archives/*.deb
    mv "$base.tmp" "$base"
    date -u +%FT%TZ >"$base.done"
else
    echo "== reusing the base root $base (made $(cat "$base.done"))"
fi
phase "base root"

# ---- a clean root for this run ----------------------------------------------------------------
run=$(mktemp -d "$cache/run.XXXXXX")
root=$run/root
mounted=()
cleanup() { # unmount what was mounted (innermost first), then remove the run's files
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[i]}" 2>/dev/null || umount -R -l "${mounted[i]}" 2>/dev/null ||
            echo "fresh-debian.sh: could not unmount ${mounted[i]}" >&2
    done
    # Only when nothing is mounted below it any more: never delete through a bind mount.
    if ! grep -q " $run/" /proc/self/mounts; then
        rm -rf --one-file-system "$run"
    else
        echo "fresh-debian.sh: left $run (still mounted)" >&2
    fi
}
child=""
stop() { # on SIGINT/SIGTERM: stop the command running in the root first (timeout passes the
    # signal to its process group), so that nothing is left running in it when it is unmounted
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" || true
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'stop 130' INT
trap 'stop 143' TERM
mkdir -p "$root" "$run/upper" "$run/work"
if mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root" \
        2>/dev/null; then
    mounted+=("$root")
    how=overlay
else
    cp -a "$base/." "$root/"
    how=copy
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" # the host's resolver: how this machine reaches apt
mnt() { # mnt ARGS... TARGET: mount, remember TARGET for cleanup, stop when it fails
    mount "$@" || { echo "fresh-debian.sh: mount $* failed" >&2; exit 2; }
    mounted+=("${!#}")
}
mnt -t proc proc "$root/proc"
mnt --rbind /sys "$root/sys"
mnt --rbind /dev "$root/dev"
mkdir -p "$cache/apt-archives/partial"
mnt --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
chroot "$root" chown _apt:root /var/cache/apt/archives/partial
chroot "$root" true || { echo "fresh-debian.sh: chroot into $root does not work" >&2; exit 2; }
echo "== clean root at $root ($how of the base)"
phase "clean root"

# ---- the commit under test ----------------------------------------------------------------
git init -q "$root/root/linattn"
git -C "$root/root/linattn" fetch -q --depth=1 "file://$repo" "$commit"
git -C "$root/root/linattn" checkout -q --detach FETCH_HEAD
echo "== cloned ${commit:0:12} into /root/linattn"
phase "clone"

# ---- the README's two commands ----------------------------------------------------------
# The environment of a fresh root login (login(1) sets HOME, SHELL, USER, LOGNAME and PATH;
# minbase has no locales, so no LANG), and nothing from this host.  OPENBLAS_CORETYPE=Haswell:
# Debian's OpenBLAS 0.3.21 predates this Zen 5 CPU and must use its Haswell (AVX2) kernels
# here; the Makefile exports the same default, so the commands would run the same without it,
# and passing it keeps the run correct for anything that is not started by make.
in_root() { # exec: run with & it is then the timeout process itself, which forwards signals
    exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        SHELL=/bin/bash USER=root LOGNAME=root OPENBLAS_CORETYPE=Haswell \
        timeout "$limit" chroot "$root" /bin/bash -c "cd /root/linattn && $1"
}
log=$cache/last-run.log
: >"$log"
status=0
for cmd in "make figures" "make check"; do
    echo "== # $cmd    (in the fresh root; output also in $log)"
    rc=0
    # In the background and waited for, so that a signal to this script is handled at once.
    in_root "$cmd" > >(tee -a "$log") 2>&1 &
    child=$!
    wait "$child" || rc=$?
    child=""
    phase "$cmd"
    if [ $rc -ne 0 ]; then
        echo "fresh-debian.sh: '$cmd' failed in the fresh root (exit $rc)" >&2
        status=1
    fi
done

echo
echo "fresh-debian.sh: times (commit ${commit:0:12})"
printf '  %s\n' "${timings[@]}"
printf '  %-22s %5d s\n' total $(($(date +%s) - t_start))
[ $status -eq 0 ] && echo "fresh-debian.sh: make figures and make check passed on a fresh Debian 12"
exit $status

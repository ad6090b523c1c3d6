# tests/lib/common.sh — what the shell tests in tests/ share: one `ok`/`FAIL` line per check, the
# count of failed checks, the check that the binary under test is built, and the number of rows
# of a results file.  Sourced by a test after it has set BIN; never run on its own (it is not
# in tests/*.sh, so scripts/run-tests.sh does not run it as a test).
fails=0
pass() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then pass "$what"; else bad "$what"; fi
}
# need_bin NAME: stops the test NAME when $BIN is not built.
need_bin() {
    if [ ! -x "$BIN" ]; then
        echo "$1: $BIN is not built (make first)"
        exit 1
    fi
}
# nrows FILE.h5: the rows of a results file (0 when it does not read).
nrows() { "$BIN" export "$1" --columns key 2>/dev/null | grep -c '^kernel='; }

#!/usr/bin/env bash
# cli_small.sh — small command-line behaviours of export and plot on results files written here:
# `export --where COL=VALUE` that no row has warns on stderr with the values COL has (header
# still printed, exit 0); `--where causal=true|false|yes|no` equals causal=1|0 and a non-boolean
# word is an exit-2 error; an unknown column lists the valid ones; `--where` on parameters of the
# schema without a column (read from the key), A=auto and head=all; `export --help`'s example
# names a real map; `plot` exits 1 with one line giving the ok/failed row counts when it draws
# nothing; the figure caption says "1 thread", not "1 threads"; `bench`'s options from the
# parameter schema set the cell.
# Not the figures themselves (figures_e2e.sh) nor the TSV format (tests/test_results.c).
# Run: bash tests/cli_small.sh (scripts/run-tests.sh runs it with $LINATTN_BIN).
set -u
bin=${LINATTN_BIN:-./linattn}
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-cli-small.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Two maps, both causal settings, one T: 4 ok rows in well under a second.
cat > "$tmp/two.yaml" <<'YAML'
name: two
seed: 7
sweep:
  kernel: linear
  map: [elu1, prf]
  causal: [false, true]
  T: 32
  d: 16
measure:
  time_budget_s: 0.001
  min_repeats: 1
  max_ref_rows: 16
YAML
"$bin" run "$tmp/two.yaml" -o "$tmp/two.h5" --quiet > "$tmp/run.log" 2>&1 ||
    { bad "run two.yaml failed: $(cat "$tmp/run.log")"; exit 1; }

# --where map=favor: no such map in the file.
"$bin" export "$tmp/two.h5" --where map=favor --columns map,T > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "$(printf 'map\tT')" ] &&
    [ "$(grep -c . "$tmp/err")" -eq 1 ] &&
    grep -q "warning: no row has map=favor; map values in $tmp/two.h5: elu1, prf$" "$tmp/err"; then
    ok "export --where map=favor warns with the maps present, prints the header, exits 0"
else
    bad "export --where map=favor: exit $rc, stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
# A value that is present gives rows and no warning.
"$bin" export "$tmp/two.h5" --where map=prf --columns map > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && [ "$(grep -c '^prf$' "$tmp/out")" -eq 2 ]; then
    ok "export --where map=prf: 2 rows, no warning"
else
    bad "export --where map=prf: exit $rc, stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
# A numeric value nobody ran warns too, with the values present.
"$bin" export "$tmp/two.h5" --where T=1000 --columns T > /dev/null 2> "$tmp/err"
grep -q "no row has T=1000; T values in .*: 32$" "$tmp/err" && ok "export --where T=1000 warns" ||
    bad "export --where T=1000: stderr '$(cat "$tmp/err")'"

# Booleans: true/false/yes/no (any case) are 1/0 for causal.
want1=$("$bin" export "$tmp/two.h5" --where causal=1 --columns map,causal)
want0=$("$bin" export "$tmp/two.h5" --where causal=0 --columns map,causal)
[ "$(printf '%s\n' "$want1" | grep -c .)" -eq 3 ] || bad "causal=1 should give a header and 2 rows"
for w in true TRUE yes; do
    got=$("$bin" export "$tmp/two.h5" --where causal=$w --columns map,causal 2>&1)
    [ "$got" = "$want1" ] && ok "export --where causal=$w equals causal=1" ||
        bad "export --where causal=$w: '$got'"
done
for w in false False no; do
    got=$("$bin" export "$tmp/two.h5" --where causal=$w --columns map,causal 2>&1)
    [ "$got" = "$want0" ] && ok "export --where causal=$w equals causal=0" ||
        bad "export --where causal=$w: '$got'"
done
got=$("$bin" export "$tmp/two.h5" --where 'causal!=true' --columns causal 2>&1)
[ "$got" = "$(printf 'causal\n0\n0')" ] && ok "export --where causal!=true" ||
    bad "export --where causal!=true: '$got'"
got=$("$bin" export "$tmp/two.h5" --where causal=maybe 2>&1)
rc=$?
[ $rc -eq 2 ] && [ "$(printf '%s\n' "$got" | grep -c .)" -eq 1 ] &&
    printf '%s' "$got" | grep -q "column causal is boolean: use true, false, yes, no, 1 or 0" &&
    ok "export --where causal=maybe: exit 2, one line" || bad "causal=maybe: exit $rc, '$got'"
# An unknown column is an error that lists the valid columns.
got=$("$bin" export "$tmp/two.h5" --where mapp=prf 2>&1)
rc=$?
[ $rc -eq 2 ] && printf '%s' "$got" | grep -q "unknown column 'mapp' (did you mean 'map'?); valid columns: index, key, kernel, map," &&
    ok "export --where mapp=prf: exit 2 with the valid columns" || bad "mapp: exit $rc, '$got'"

# --where on any parameter of the schema: one without a results column (relu_eps, norm_fixed,
# weights) and A=auto are read from each row's key by the schema's parser; head=all is the head
# column's -1; measure settings are refused.  Eight cells: elu1, relu, prf × 2 draws, gerf × 2
# draws × A in {auto, -0.125}.
cat > "$tmp/params.yaml" <<'YAML'
name: params
seed: 3
sweep:
  kernel: linear
  map: [elu1, relu, prf, gerf]
  draw: [iid, orthogonal]
  A: [auto, -0.125]
  T: 32
  d: 8
maps:
  relu: {eps: 0.01}
  prf: {m: 8, norm_fixed: true}
  gerf: {m: 8}
measure:
  time_budget_s: 0.001
  min_repeats: 1
  max_ref_rows: 16
YAML
"$bin" run "$tmp/params.yaml" -o "$tmp/params.h5" --quiet > "$tmp/run4.log" 2>&1 ||
    bad "run params.yaml failed: $(cat "$tmp/run4.log")"
where() { # where EXPECTED-MAP:DRAW-LIST EXPR...  Rows compare as sorted lists: the run order
    local want # follows the cost model, not the order of the maps: list
    want=$(tr ' ' '\n' <<< "$1" | sort | tr '\n' ' ' | sed 's/ $//'); shift
    local args=() e
    for e in "$@"; do args+=(--where "$e"); done
    local got
    got=$("$bin" export "$tmp/params.h5" "${args[@]}" --columns map,draw 2>/dev/null |
        tail -n +2 | tr '\t' ':' | sort | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] && ok "export --where $*: $want" ||
        bad "export --where $*: '$got', want '$want'"
}
all="elu1:- relu:- prf:iid prf:orthogonal gerf:iid gerf:iid gerf:orthogonal gerf:orthogonal"
where "relu:-" relu_eps=0.01
where "relu:-" relu_eps=1e-2
where "relu:-" 'relu_eps>0'
where "$all" 'relu_eps<=0.01'
where "elu1:- prf:iid prf:orthogonal gerf:iid gerf:iid gerf:orthogonal gerf:orthogonal" relu_eps=0
where "prf:orthogonal" norm_fixed=true
where "prf:orthogonal" norm_fixed=yes
where "prf:orthogonal" norm_fixed=1
where "elu1:- relu:- prf:iid gerf:iid gerf:iid gerf:orthogonal gerf:orthogonal" 'norm_fixed!=true'
where "gerf:iid gerf:orthogonal" A=auto
where "gerf:orthogonal" A=auto draw=orthogonal
where "elu1:- relu:- prf:iid prf:orthogonal gerf:iid gerf:orthogonal" 'A!=auto'
where "gerf:iid gerf:orthogonal" A=-0.125
where "$all" head=all
where "$all" weights=
where "" 'weights!='
where "$all" source=gaussian
"$bin" export "$tmp/params.h5" --where relu_eps=0.5 --columns map > /dev/null 2> "$tmp/err"
grep -Eq "no row has relu_eps=0.5; relu_eps values in .*: (0, 0.01|0.01, 0)$" "$tmp/err" &&
    ok "export --where relu_eps=0.5 warns with the key's values" ||
    bad "export --where relu_eps=0.5: stderr '$(cat "$tmp/err")'"
for e in relu_eps=abc time_budget_s=1 norm_fixed=maybe A=aut relu_ep=1; do
    got=$("$bin" export "$tmp/params.h5" --where "$e" 2>&1)
    rc=$?
    [ $rc -eq 2 ] && [ "$(printf '%s\n' "$got" | grep -c .)" -eq 1 ] &&
        ok "export --where $e: exit 2: $got" || bad "export --where $e: exit $rc, '$got'"
done
"$bin" export "$tmp/params.h5" --where relu_ep=1 2>&1 |
    grep -q "(did you mean 'relu_eps'?); valid columns: index, .*; parameters read from the key: \
norm_fixed, relu_eps, norm, path, sequences$" &&
    ok "an unknown --where name suggests a parameter and lists them" ||
    bad "export --where relu_ep=1: $("$bin" export "$tmp/params.h5" --where relu_ep=1 2>&1)"

# bench: the options built from the parameter schema reach the cell (the TSV row says what ran;
# heads is batch × heads), and kernel linear, the default, is linear_causal with --causal.
got=$("$bin" bench --T 64 --d 16 --dv 8 --map prf --m 24 --draw orthogonal --causal --heads 2 \
    --batch 3 --budget 0 --ref-rows 8 --tsv 2>&1 | awk -F'\t' 'NR == 2 {print $1, $2, $3, $4, $5, $6, $7, $8}')
[ "$got" = "linear_causal prf 64 16 24 8 1 6" ] && ok "bench's schema options reach the cell" ||
    bad "bench --map prf --m 24 ... --tsv: '$got'"
got=$("$bin" bench --T 64 --d 16 --kernel linear --budget 0 --ref-rows 8 --tsv 2>&1 |
    awk -F'\t' 'NR == 2 {print $1, $2, $5}')
[ "$got" = "linear_noncausal elu1 16" ] && ok "bench --kernel linear: linear_noncausal" ||
    bad "bench --kernel linear --tsv: '$got'"

# export --help's --where examples name a map that exists.
maps=$("$bin" export --help | grep -o 'map=[a-z0-9_]*' | sed 's/map=//' | sort -u)
[ -n "$maps" ] || bad "export --help has no map= example"
for m in $maps; do
    "$bin" list | grep -qw -- "$m" && ok "export --help example map=$m is a map" ||
        bad "export --help example map=$m is not a map (linattn list)"
done

# plot on a file whose every row failed: exit 1, one line with the counts.  The weights file is
# not HDF5, so every cell of the learned map fails when it loads it.
echo "not hdf5" > "$tmp/notw.h5"
cat > "$tmp/allfail.yaml" <<YAML
name: allfail
seed: 5
sweep:
  kernel: linear
  map: learned
  T: [32, 64]
  d: 16
  dv: [8, 16, 24]
  heads: [1, 2]
maps:
  learned: {weights: $tmp/notw.h5}
measure:
  time_budget_s: 0.001
  min_repeats: 1
YAML
"$bin" run "$tmp/allfail.yaml" -o "$tmp/allfail.h5" --quiet > "$tmp/run2.log" 2>&1
[ "$("$bin" export "$tmp/allfail.h5" --status failed --columns status | grep -c '^1$')" -eq 12 ] ||
    bad "allfail.yaml should give 12 failed rows"
"$bin" plot "$tmp/allfail.h5" -o "$tmp/out1" > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c . "$tmp/err")" -eq 1 ] &&
    grep -q "no figure drawn: no row is ok in .*allfail.h5 (0 ok of 12 rows; 12 failed)" "$tmp/err"; then
    ok "plot of 12 failed rows: exit 1, '(0 ok of 12 rows; 12 failed)'"
else
    bad "plot of 12 failed rows: exit $rc, stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
"$bin" plot "$tmp/allfail.h5" -o "$tmp/out1" -q > /dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && ok "plot -q of 12 failed rows: exit 1" || bad "plot -q of 12 failed rows: exit $rc"

# plot on one ok row (one T, one map): no figure fits; exit 1; the kept caption says 1 thread.
cat > "$tmp/one.yaml" <<'YAML'
name: one
seed: 9
sweep:
  kernel: linear
  map: elu1
  T: 32
  d: 16
  threads: 1
measure:
  time_budget_s: 0.001
  min_repeats: 1
YAML
"$bin" run "$tmp/one.yaml" -o "$tmp/one.h5" --quiet --threads 1 > "$tmp/run3.log" 2>&1 ||
    bad "run one.yaml failed: $(cat "$tmp/run3.log")"
"$bin" plot "$tmp/one.h5" -o "$tmp/out2" --keep "$tmp/keep" > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c . "$tmp/err")" -eq 1 ] &&
    grep -q "no figure drawn: no figure fits .*one.h5 (1 ok of 1 row; 0 failed)" "$tmp/err"; then
    ok "plot of 1 ok row that fits no figure: exit 1, '(1 ok of 1 row; 0 failed)'"
else
    bad "plot of 1 ok row: exit $rc, stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
thr=$("$bin" info "$tmp/one.h5" | awk '$1 == "threads" {print $2}')
if [ "$thr" = 1 ]; then
    grep -q '^caption = ".*, 1 thread · ' "$tmp/keep/crossover.meta.gp" &&
        ok "caption says '1 thread'" ||
        bad "caption: $(grep '^caption' "$tmp/keep/crossover.meta.gp")"
else
    bad "one.h5 records threads '$thr', expected 1 (--threads 1)"
fi

exit $fails

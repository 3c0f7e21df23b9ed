#!/bin/sh
# cli.sh — the command line: help, version, options, exit statuses
# (0 ok, 1 an error in the spec or its files, 2 usage / not built yet).
#
#   tests/cli.sh NNC
set -u
case $1 in /*) NNC=$1 ;; *) NNC=$(pwd)/$1 ;; esac
: "${ASAN_OPTIONS:=exitcode=86:detect_leaks=1}"
: "${UBSAN_OPTIONS:=exitcode=87:print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS
unset NO_COLOR
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 2
printf 'const n = 4\n' >ok.nn
printf 'const a = $\nconst b = $\nconst c = $\n' >bad.nn

pass=0
total=0
# expect NAME STATUS PATTERN -- ARGS...: exit status and a fixed string in
# stdout+stderr (PATTERN "" = anything)
expect() {
  name=$1 want=$2 pattern=$3
  shift 4
  total=$((total + 1))
  "$NNC" "$@" >out 2>err </dev/null
  got=$?
  if [ $got -ne "$want" ]; then
    echo "[FAIL] $name: exit status $got, expected $want"
    sed 's/^/    /' out err | head -n 20
  elif [ -n "$pattern" ] && ! cat out err | grep -qF -- "$pattern"; then
    echo "[FAIL] $name: output lacks '$pattern'"
    sed 's/^/    /' out err | head -n 20
  else
    echo "[PASS] $name"
    pass=$((pass + 1))
  fi
}

expect version           0 "nnc "                     -- --version
expect help              0 "check      parse and check" -- --help
expect help_command      0 "Usage: nnc check SPEC"    -- help check
expect command_help      0 "Usage: nnc ir SPEC"       -- ir --help
expect train_help        0 "Usage: nnc train SPEC"    -- train --help
expect no_arguments      2 "Usage: nnc COMMAND"      --
expect unknown_command   2 "did you mean 'nnc check'" -- chek ok.nn
expect help_unknown      2 "no command 'nope'"        -- help nope
expect check_needs_spec  2 "needs a spec file"        -- check
expect two_specs         2 "one spec file at a time"  -- check ok.nn ok.nn
expect unknown_option    2 "did you mean '--max-errors'" -- check ok.nn --max-erors 3
expect missing_file      1 "cannot open 'missing.nn'" -- check missing.nn
expect check_ok          0 ""                         -- check ok.nn
expect check_no_data     0 ""                         -- check --no-data-check ok.nn
expect check_bad         1 "bad.nn:1:11: error"       -- check bad.nn
expect max_errors        1 "too many errors (1)"      -- check bad.nn --max-errors 1
expect max_errors_eq     1 "too many errors (2)"      -- check bad.nn --max-errors=2
expect max_errors_bad    2 "positive number"          -- check bad.nn --max-errors 0
expect color_bad         2 "auto, always or never"    -- check bad.nn --color=sometimes
expect ir_ast            0 "program"                  -- ir ok.nn --stage=ast
expect ir_ast_bad        1 "bad.nn:2:11: error"       -- ir bad.nn --stage=ast
expect ir_no_stage       2 "--stage=NAME"             -- ir ok.nn
expect ir_fused_no_train 1 "no train block"          -- ir ok.nn --stage=fused
expect ir_asm_no_train   1 "no train block"          -- ir ok.nn --stage asm
expect ir_unknown_stage  2 "did you mean 'grad'"      -- ir ok.nn --stage=gard
expect stage_not_ir      2 "--stage is an option of 'nnc ir'" -- check ok.nn --stage=ast
expect bench_no_train_block 1 "no train block"       -- bench ok.nn

# colour: only with --color=always, or auto on a terminal (never here)
total=$((total + 3))
"$NNC" check bad.nn --color=always 2>err >/dev/null
if grep -q "$(printf '\033')" err; then pass=$((pass + 1)); echo "[PASS] color_always"
else echo "[FAIL] color_always: no escape codes"; fi
"$NNC" check bad.nn --color=never 2>err >/dev/null
if grep -q "$(printf '\033')" err; then echo "[FAIL] color_never: escape codes"
else pass=$((pass + 1)); echo "[PASS] color_never"; fi
"$NNC" check bad.nn 2>err >/dev/null
if grep -q "$(printf '\033')" err; then echo "[FAIL] color_auto_not_a_tty: escape codes"
else pass=$((pass + 1)); echo "[PASS] color_auto_not_a_tty"; fi

echo "$pass/$total passed"
[ $pass -eq $total ]

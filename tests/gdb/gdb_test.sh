#!/bin/sh
# gdb/weft-gdb.py against tests/gdb/fibers_for_gdb.cpp: run it under gdb to its stop in
# ready_for_gdb(), list and unwind the fibers live, write a core file, then do the same
# from the core file in a second gdb. Usage: gdb_test.sh GDB PROGRAM SCRIPT_DIR
set -eu
gdb=$1 program=$2 scripts=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "gdb_test: $1"; echo "--- gdb output:"; cat "$2"; exit 1; }
expect() {  # expect FILE PATTERN WHAT
    grep -Eq -- "$2" "$1" || fail "$3 (no match for /$2/)" "$1"
}
check_listing() {  # the tasks, their states and what each waits on
    expect "$1" "'napper' +suspended +waiting on sleep, deadline" "napper's sleep"
    expect "$1" "'locker' +suspended +waiting on Lock::acquire" "locker's lock"
    expect "$1" "'reader' +suspended +waiting on read fd [0-9]+" "reader's fd"
    expect "$1" "'fresh' +created" "the task not started"
    expect "$1" "'main' +running" "the running main task"
    expect "$1" "body: main::\{lambda\(\)#" "the tasks' bodies"
}
check_stacks() {  # each suspended fiber's frames, down to its body
    expect "$1" "^#[0-9]+ .*nap_in_known_place \(\) at .*fibers_for_gdb.cpp:[0-9]+" "napper's frame"
    expect "$1" "weft::sleep" "the sleep under napper's frame"
    expect "$1" "queue_behind_the_lock \(lock=" "locker's frame with its argument"
    expect "$1" "read_the_pipe \(fd=[0-9]+\)" "reader's frame with its argument"
    expect "$1" "running on thread 1" "where the running task's stack is"
    expect "$1" "has not started" "the task without a stack"
}

"$gdb" -nx -batch -ex "source $scripts/weft-gdb.py" -ex "break ready_for_gdb" -ex run \
    -ex "weft tasks" -ex "weft bt all" \
    -ex "weft fiber 3" -ex "bt" -ex "weft fiber off" \
    -ex "gcore $work/core" -ex kill "$program" >"$work/live" 2>&1 || fail "gdb failed" "$work/live"
check_listing "$work/live"
check_stacks "$work/live"
expect "$work/live" "^#1 +0x[0-9a-f]+ in weft::detail::" "weft fiber N's frame 1, in weft's switch"
expect "$work/live" "^#[0-9]+ .*queue_behind_the_lock" "weft fiber N's frames, for bt"
[ -s "$work/core" ] || fail "gcore wrote no core file" "$work/live"

# The core file, with the script found the way gdb auto-loads it (the program includes
# weft/gdb_autoload.hpp, whose .debug_gdb_scripts entry names weft-gdb.py; gdb looks along
# the source path, and the safe-path must allow it).
"$gdb" -nx -batch -iex "add-auto-load-safe-path $scripts" -iex "directory $scripts" \
    -ex "weft tasks" -ex "weft bt all" "$program" "$work/core" >"$work/core.out" 2>&1 ||
    fail "gdb on the core file failed" "$work/core.out"
check_listing "$work/core.out"
check_stacks "$work/core.out"
expect "$work/core.out" "deadline at monotonic" "the absolute deadline in a core file"

# A program without weft's debug information: a clear message, not a Python trace.
"$gdb" -nx -batch -ex "source $scripts/weft-gdb.py" -ex "weft tasks" /bin/true \
    >"$work/none" 2>&1 || true
expect "$work/none" "without debug information" "the message for a program without weft"
echo "gdb_test: weft tasks / weft bt / weft fiber work live and on a core file"

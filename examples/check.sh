#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs one example as a test: it must exit 0, and every pattern given
# (grep -E) must match a line of what it printed.
# Usage: examples/check.sh EXAMPLE [ARG] -- PATTERN...
exe=$1
shift
args=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    args="$args $1"
    shift
done
shift
# shellcheck disable=SC2086 # the example's arguments, if any
out=$("$exe" $args 2>&1) || {
    printf '%s\n%s: exit status %d\n' "$out" "$exe" $?
    exit 1
}
for pattern in "$@"; do
    if ! printf '%s\n' "$out" | grep -qE -- "$pattern"; then
        printf '%s\n%s: no line matches "%s"\n' "$out" "$exe" "$pattern"
        exit 1
    fi
done

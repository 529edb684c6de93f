#!/usr/bin/env bash
# test_layers: the dependency rules hold over the tree (tools/check-layers.sh), and the checker
# does catch each kind of breach, tried on a copy of src/ and include/.
set -euo pipefail
src=$1
check="$src/tools/check-layers.sh"
bash "$check" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_breach() { # what sed-expression file
  rm -rf "$tmp/t" && mkdir -p "$tmp/t" && cp -r "$src/src" "$src/include" "$tmp/t/"
  sed -i "$2" "$tmp/t/$3"
  if out=$(bash "$check" "$tmp/t" 2>&1); then
    echo "test_layers: not caught: $1" >&2
    exit 1
  fi
  grep -q "check-layers: " <<<"$out" || { echo "test_layers: no diagnostic for: $1" >&2; exit 1; }
  echo "caught ($1): $(head -n 1 <<<"$out")"
}
expect_breach "store reaches mqtt" '1i #include "mqtt.h"' src/store/store.c
expect_breach "the codec logs" '1i #include "log.h"' src/codec/bank.c
expect_breach "the codec uses a library" '1i #include <sqlite3.h>' src/codec/s42.c
expect_breach "config reaches the CLI" '1i #include "cli.h"' src/config/config.c
expect_breach "a public header reaches up" '1i #include "poller.h"' include/sample.h
expect_breach "mqtt queries SQLite" '1i static int x(void) { return sqlite3_threadsafe(); }' src/mqtt/mqtt_replay.c
expect_breach "a part says nothing of what it owns" '1s|^/\* Part queue|/* The queue|' src/queue/queue.c
expect_breach "an unknown header" '1i #include "nowhere.h"' src/bus/serial.c
echo "test_layers: ok"

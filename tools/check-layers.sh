#!/usr/bin/env bash
# check-layers: the dependency rules of docs/architecture.md, checked over the #include lines of
# src/ and include/. Every part (a folder of src/) may include its own headers and the public
# headers (include/) of the parts listed for it below; the list is a DAG (checked here too), so
# the parts have no cycles. A public header belongs to the part whose folder holds its .c file,
# or, for a header with no .c of its name, to the part named in OWNED_BY. The codec reaches
# nothing but the C library; only the parts in SQLITE_PARTS talk to SQLite themselves.
#
# Usage: tools/check-layers.sh [SOURCE_DIR]   (exit 1 and one line per breach)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

# part -> the parts it may use (the same lists as src/CMakeLists.txt)
declare -A ALLOW=(
  [codec]=""
  [base]=""
  [report]="codec"
  [config]="base"
  [queue]="codec"
  [bus]="codec base"
  [store]="codec base config queue"
  [mqtt]="codec base config queue report store"
  [daemon]="codec base config queue bus store mqtt"
  [http]="codec base config queue report store"
  [sim]="codec base"
  [cli]="codec base report config queue bus store mqtt daemon http sim"
)
# public headers with no .c file of the same name
declare -A OWNED_BY=(
  [now.h]=base [progress.h]=base [store_schema.h]=store [cli.h]=cli
)
# the parts that may talk to SQLite themselves: the store, and the people's query tools of the
# CLI (export, top, health) and the HTTP server; the MQTT side reads the history through
# store_backlog.h only, and no other part touches the database
SQLITE_PARTS='store cli http'
# the only <...> headers the codec may include: the C library
CODEC_SYSTEM='assert ctype errno float inttypes limits math stdarg stdbool stddef stdint stdio stdlib string'

fail=0
breach() { echo "check-layers: $*" >&2; fail=1; }

# ---- the allowed graph has no cycle (depth-first, colours) ----
declare -A colour=()
visit() {
  local p=$1 q
  colour[$p]=grey
  for q in ${ALLOW[$p]}; do
    [[ -n "${ALLOW[$q]+x}" ]] || { breach "part '$p' is allowed unknown part '$q'"; continue; }
    case "${colour[$q]:-white}" in
      grey) breach "cycle in the allowed dependencies through '$p' -> '$q'" ;;
      white) visit "$q" ;;
    esac
  done
  colour[$p]=black
}
for p in "${!ALLOW[@]}"; do [[ "${colour[$p]:-white}" == white ]] && visit "$p"; done

# ---- who owns each public header ----
declare -A OWNER=()
for h in include/*.h; do
  name=${h#include/}
  if [[ -n "${OWNED_BY[$name]+x}" ]]; then
    OWNER[$name]=${OWNED_BY[$name]}
    continue
  fi
  c=$(ls src/*/"${name%.h}.c" 2>/dev/null | head -n 1 || true)
  if [[ -z "$c" ]]; then
    breach "$h: no src/<part>/${name%.h}.c and not in OWNED_BY: say which part owns it"
    continue
  fi
  part=${c#src/}; OWNER[$name]=${part%%/*}
done
for d in src/*/; do
  part=${d#src/}; part=${part%/}
  [[ -n "${ALLOW[$part]+x}" ]] || breach "src/$part/: a part not in tools/check-layers.sh's table"
  # its main file opens with the paragraph saying what the part owns
  grep -lq "^/\* Part $part (src/$part/):" src/"$part"/*.c 2>/dev/null ||
    breach "src/$part/: no main file opening with '/* Part $part (src/$part/): what it owns'"
done

# ---- every #include "..." of a file is its own part's or an allowed part's ----
check_file() { # file part
  local f=$1 part=$2 n=0 line inc owner
  while IFS= read -r line; do
    n=$((n + 1))
    if [[ "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
      inc=${BASH_REMATCH[1]}
      if [[ "$f" == src/* && -e "$(dirname "$f")/$inc" ]]; then
        continue # the part's own internal header
      fi
      owner=${OWNER[$inc]:-}
      if [[ -z "$owner" ]]; then
        breach "$f:$n: \"$inc\" is neither a header of this part nor a public header"
      elif [[ "$owner" != "$part" && " ${ALLOW[$part]} " != *" $owner "* ]]; then
        breach "$f:$n: $part may not use $owner (\"$inc\")"
      fi
    elif [[ " $SQLITE_PARTS " != *" $part "* && "$line" =~ (\<sqlite3\.h\>|(^|[^A-Za-z0-9_])sqlite3_[a-z]) ]]; then
      breach "$f:$n: $part may not reach SQLite itself: use the store's API (store_backlog.h, store.h)"
    elif [[ "$part" == codec && "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\.h\> ]]; then
      inc=${BASH_REMATCH[1]}
      [[ " $CODEC_SYSTEM " == *" $inc "* ]] ||
        breach "$f:$n: the codec reaches only the C library, not <$inc.h>"
    fi
  done <"$f"
}
for f in src/*/*.c src/*/*.h; do
  part=${f#src/}; part=${part%%/*}
  check_file "$f" "$part"
done
for h in include/*.h; do
  owner=${OWNER[${h#include/}]:-}
  [[ -n "$owner" ]] && check_file "$h" "$owner"
done

if ((fail)); then
  echo "check-layers: the rules are in docs/architecture.md; the table in tools/check-layers.sh" >&2
  exit 1
fi
echo "check-layers: $(ls src/*/*.c src/*/*.h include/*.h | wc -l) files, ${#ALLOW[@]} parts, rules hold"

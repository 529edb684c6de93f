#!/usr/bin/env bash
# shellcheck disable=SC2013 # the codes and keys read below are single words
# tests/man_pages.sh BIN SOURCE_DIR: the man pages cannot silently rot. Fails when the program
# has a command, an option, an environment variable, an exit code or a configuration key that
# docs/man/bmsfleet.1 or docs/man/bmsfleet.yaml.5 does not describe, when bmsfleet.yaml.5
# describes a key the program does not have, or when groff (or mandoc, when installed) warns.
set -uo pipefail

bin="$1"
src="$2"
page1="$src/docs/man/bmsfleet.1"
page5="$src/docs/man/bmsfleet.yaml.5"
fails=0

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    fails=$((fails + 1))
}

# The pages' text with roff's escaped minus as a plain one.
text1="$(sed 's/\\-/-/g' "$page1")"
text5="$(sed 's/\\-/-/g' "$page5")"

# ---- commands and their options, from the binary's own --help ----
commands="$("$bin" --help | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p')"
[[ -n "$commands" ]] || fail "no commands in '$bin --help'"
for opt in -v --verbose --help --version; do
    grep -q -- "$opt\b" <<<"$text1" || fail "bmsfleet.1: global option $opt missing"
done
for cmd in $commands; do
    grep -qx "\.SS bmsfleet $cmd" <<<"$text1" ||
        fail "bmsfleet.1: no '.SS bmsfleet $cmd' section for the command '$cmd'"
    help="$("$bin" "$cmd" --help)" || fail "'$cmd --help' failed"
    # the section of this command: from its .SS line to the next .SS or .SH
    section="$(awk -v want=".SS bmsfleet $cmd" '$0 == want {on = 1; next}
        on && /^\.S[SH] / {exit} on' <<<"$text1")"
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*\|[[ ,]-[a-z]\b' <<<"$help" | tr -d ' ,[' |
        sort -u); do
        [[ "$opt" == --help ]] && continue
        grep -q -- "$opt\b" <<<"$section" ||
            fail "bmsfleet.1: option $opt of '$cmd' (in '$cmd --help') not in its section"
    done
done

# ---- exit codes (include/cli.h) ----
exit_status="$(awk '/^\.SH EXIT STATUS/ {on = 1; next} on && /^\.SH / {exit} on' <<<"$text1")"
for code in $(sed -n 's/^ *CLI_EXIT_[A-Z]* = \([0-9]*\),.*/\1/p' "$src/include/cli.h"); do
    grep -qx "\.B $code" <<<"$exit_status" || fail "bmsfleet.1: exit code $code not in EXIT STATUS"
done

# ---- environment variables: those the configuration reads, and every getenv() ----
environment="$(awk '/^\.SH ENVIRONMENT/ {on = 1; next} on && /^\.SH / {exit} on' <<<"$text1")"
vars="$( (grep -o '"[A-Z][A-Z0-9_]\{2,\}"' "$src/src/config/config_env.c"
    grep -oh 'getenv("[A-Z0-9_]*")' "$src"/src/*/*.c | sed 's/getenv(//; s/)//') |
    tr -d '"' | sort -u)"
[[ -n "$vars" ]] || fail "no environment variables found in the sources"
for var in $vars; do
    grep -q "^\.BR\? .*\b$var\b" <<<"$environment" ||
        fail "bmsfleet.1: environment variable $var not in ENVIRONMENT"
done

# ---- configuration keys: src/config/config_keys.c's key tables, as dotted paths ----
# Where each table's keys live; a new table must be added here (the test says so).
declare -A prefix=([root]="" [node]="node." [log]="log." [port]="ports[]." [pack]="ports[].packs[]."
    [bank]="banks[]." [storage]="storage." [retention]="storage.retention." [mqtt]="mqtt."
    [tls]="mqtt.tls.")
keys="$(awk '
    match($0, /^static const struct config_key [a-z_]+_keys\[\]/) {
        t = $5; sub(/_keys\[\]$/, "", t); next }
    t != "" && /^};/ { t = ""; next }
    t != "" && match($0, /^ *\{"[a-z0-9_]+", K_/) {
        k = $0; sub(/^ *\{"/, "", k); sub(/".*/, "", k); print t, k }' "$src/src/config/config_keys.c")"
[[ -n "$keys" ]] || fail "no key tables found in src/config/config_keys.c"
program_paths=""
while read -r table key; do
    if [[ -z "${prefix[$table]+set}" ]]; then
        fail "tests/man_pages.sh: key table '${table}_keys' of src/config/config_keys.c has no path here"
        continue
    fi
    path="${prefix[$table]}$key"
    program_paths+="$path"$'\n'
    grep -qxF ".B $path" <<<"$text5" ||
        fail "bmsfleet.yaml.5: key '$path' (src/config/config_keys.c) has no '.B $path' entry"
done <<<"$keys"
# and no entry (a .TP tag) for a key the program does not have
while read -r path; do
    [[ -z "$path" ]] && continue
    grep -qxF "$path" <<<"$program_paths" ||
        fail "bmsfleet.yaml.5: '.B $path' is not a key of src/config/config_keys.c"
done < <(awk 'prev == ".TP" && /^\.B [a-z_.\[\]]+$/ {print $2} {prev = $0}' "$page5")
# every key of the example configuration, commented ones included, is in the page
for key in $(sed -n 's/^ *#\? *-\? *\([a-z_][a-z0-9_]*\):.*/\1/p' "$src/config.example.yaml" |
    sort -u); do
    grep -q "^\.B .*\b$key$" <<<"$text5" ||
        fail "bmsfleet.yaml.5: key '$key' of config.example.yaml missing"
done

# ---- the pages themselves: no warnings ----
for page in "$page1" "$page5"; do
    out="$(groff -man -Tutf8 -ww -z "$page" 2>&1)"
    [[ -z "$out" ]] || fail "groff warns about $page: $out"
    if command -v mandoc >/dev/null 2>&1; then
        out="$(mandoc -Tlint -W warning "$page" 2>&1)" || fail "mandoc -Tlint: $out"
    fi
done

if ((fails > 0)); then
    echo "$fails problem(s) in the man pages" >&2
    exit 1
fi
echo "man pages: $(wc -w <<<"$commands") commands, $(wc -l <<<"$keys") keys, $(wc -w <<<"$vars") variables described"

#!/usr/bin/env bash
# bench/efficiency.sh [SIZES] [MODES] [BIN]: what one pack poll costs the real daemon (issue 15).
#
# Each run starts simulated PACE banks on pseudo-terminals with wire pacing (9600 baud, 50 ms
# turnaround: `bmsfleet simulate`), a private mosquitto on a free loopback port when MQTT is
# on, and `bmsfleet run` (default build/release/bmsfleet) polling every pack as fast as the bus
# allows (interval_s 1, gap_ms EFF_GAP, default 0: the bus is never idle, so its busy time is the
# run's time; the gap is a site's setting, silence on purpose, not the daemon's overhead).
# SIZES (default "4 16 64"; "" for none) are packs: 4 = 1 port x 4, 16 = 2 x 8, 64 = 4 x 16. MODES (default
# "full sqlite mqtt"): full = SQLite and MQTT, sqlite = SQLite only, mqtt = MQTT only.
#
# After a warm-up (the first round reads every pack's identity) one window of EFF_WINDOW s
# (default 40) is measured, then EFF_STRACE s (default 10) under strace for the syscall mix:
#   cpu_ms     CPU (user + system, every thread's /proc/PID/task/*/schedstat) per pack poll
#   sys        system calls per pack poll (perf stat, tracepoint raw_syscalls:sys_enter, in a
#              window of EFF_SYS_WINDOW s after the CPU window, default half of it), and
#              split by thread: the pollers (poll:*), the history writer (store), the MQTT
#              thread (mqtt) and the rest (paho's threads, main)
#   wake       the pollers' context switches per exchange (one exchange = a request written and
#              its answer read; a poll is 0x42 and 0x44)
#   rss_mb     peak resident memory (VmHWM)
#   wr_B       bytes the daemon sent to storage per sample (/proc/PID/io write_bytes: the WAL,
#              checkpoints into the database, the MQTT delivery cursor), beside the size of one
#              stored sample row with its index (dbstat)
#   bus        the bus's busy time over its physical time: (request + answer bytes) x 10 / baud
#              + the turnaround, per exchange, from the pollers' own byte counts
# polls are counted exactly in the window: samples with their timestamp in it (SQLite), or
# state messages received by mosquitto_sub in it (MQTT only).
# Then, with EFF_CALLGRIND_SIZES (default "4 16"; empty: none), the full mode again under
# callgrind: instructions per pack poll over a window (counters zeroed at its start) and the
# functions that cost most (EFF_CALLGRIND_MODES, default "full", for the other modes too).
# Last, EFF_DISK=1 (default): 16 packs at the default settings (interval 5 s, commit 5 s),
# SQLite only: bytes written per sample and per day, with and without the checkpoint at exit,
# and the pages the commits wrote (bench/wal_pages.py); EFF_DISK_AGE_H, EFF_DISK_COMMIT and
# EFF_DISK_MQTT vary it (see disk_run).
#
# Needs: strace, perf, valgrind, mosquitto and mosquitto-clients, sqlite3, python3. Takes about
# 2 minutes per run (EFF_WINDOW=20 EFF_STRACE=5 for a quick look).
set -euo pipefail
sizes="${1-4 16 64}" # "" (given, empty): none of these runs, only callgrind's and the disk's
modes="${2-full sqlite mqtt}"
bin="$(realpath "${3:-build/release/bmsfleet}")"
window="${EFF_WINDOW:-40}"
strace_s="${EFF_STRACE:-10}"
sys_window="${EFF_SYS_WINDOW:-$((window / 2))}"
cg_sizes="${EFF_CALLGRIND_SIZES-4 16}"
cg_modes="${EFF_CALLGRIND_MODES-full}" # "full sqlite mqtt": what each part costs
baud=9600
turnaround=50
gap="${EFF_GAP:-0}"
# one sample's row and its index entry: the bytes of their records (dbstat payload)
row_sql="SELECT (SELECT sum(payload) FROM dbstat WHERE name IN ('samples', 'samples_pack_ts', 'samples_ts_pack')) * 1.0 / (SELECT count(*) FROM samples)"

for tool in strace perf valgrind mosquitto mosquitto_sub sqlite3 python3; do
    command -v "$tool" >/dev/null || { echo "efficiency.sh: needs $tool" >&2; exit 2; }
done
[[ -x "$bin" ]] || {
    echo "efficiency.sh: no $bin; build it: cmake --preset release && cmake --build build/release -j2" >&2
    exit 2
}

top="$(mktemp -d "${TMPDIR:-/tmp}/bmsfleet-eff.XXXXXX")"
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf -- "$top"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# layout SIZE: prints "PORTS PACKS_PER_PORT"
layout() {
    case "$1" in
        4) echo "1 4" ;;
        16) echo "2 8" ;;
        64) echo "4 16" ;;
        *) echo "1 $1" ;;
    esac
}
port_name() { local names=abcdefghijklmnop; printf '%s' "${names:$1:1}"; } # 0 -> a

# start_bank DIR PORTS PACKS: one simulator per port, $DIR/a, $DIR/b, ...
start_bank() {
    local d=$1 nports=$2 npacks=$3 i name
    for ((i = 0; i < nports; i++)); do
        name=$(port_name "$i")
        "$bin" simulate --protocol pace --addresses "1-$npacks" --link "$d/$name" --seed $((7 + i)) \
            --baud "$baud" --turnaround "$turnaround" >/dev/null 2>"$d/sim-$name.err" &
        pids+=($!)
    done
    for _ in $(seq 100); do
        local ok=1
        for ((i = 0; i < nports; i++)); do [[ -e "$d/$(port_name "$i")" ]] || ok=0; done
        ((ok)) && return 0
        sleep 0.1
    done
    echo "efficiency.sh: the simulators did not start" >&2
    cat "$d"/sim-*.err >&2
    exit 1
}

# start_broker DIR: a private mosquitto; sets broker_port
start_broker() {
    local d=$1
    broker_port=$(free_port)
    printf 'listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n' "$broker_port" \
        >"$d/mosquitto.conf"
    mosquitto -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
        mosquitto_sub -h 127.0.0.1 -p "$broker_port" -t x -W 1 -C 1 >/dev/null 2>&1 && break
        [[ $? -eq 27 ]] && break # timed out waiting for a message: the broker is up
        sleep 0.1
    done
}

# write_config DIR PORTS PACKS SQLITE MQTT INTERVAL GAP
write_config() {
    local d=$1 nports=$2 npacks=$3 sqlite=$4 mqtt=$5 interval=$6 gap=$7 i k name
    {
        printf 'node:\n  id: eff\nlog:\n  level: info\nports:\n'
        for ((i = 0; i < nports; i++)); do
            name=$(port_name "$i")
            printf '  - name: %s\n    device: %s\n    protocol: pace\n    baud: %d\n' \
                "$name" "$d/$name" "$baud"
            printf '    gap_ms: %d\n    interval_s: %d\n    packs:\n' "$gap" "$interval"
            for ((k = 1; k <= npacks; k++)); do printf '      - { address: %d, id: %s%d }\n' "$k" "$name" "$k"; done
        done
        if ((sqlite)); then
            printf 'storage:\n  path: %s/history.db\n' "$d"
        else
            printf 'storage:\n  enabled: false\n'
        fi
        if ((mqtt)); then printf 'mqtt:\n  host: 127.0.0.1\n  port: %d\n' "$broker_port"; fi
    } >"$d/config.yaml"
}

# cpu_ns PID: the CPU time of every thread of PID, in ns (schedstat: exact, where utime and
# stime in /proc/PID/stat count 10 ms ticks, a few dozen of them in a window)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
io_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/io"; }

# poller_sums PID: "RCHAR WCHAR WRITES CTXT" summed over the poller threads (named poll:PORT)
poller_sums() {
    local pid=$1 t r=0 w=0 n=0 c=0
    for t in /proc/"$pid"/task/*; do
        [[ "$(cat "$t/comm" 2>/dev/null)" == poll:* ]] || continue
        r=$((r + $(awk '$1 == "rchar:" {print $2}' "$t/io")))
        w=$((w + $(awk '$1 == "wchar:" {print $2}' "$t/io")))
        n=$((n + $(awk '$1 == "syscw:" {print $2}' "$t/io")))
        c=$((c + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")))
    done
    echo "$r $w $n $c"
}

# count_polls DIR SQLITE T0 T1: pack polls with their sample in [T0, T1) (wall ms)
count_polls() {
    local d=$1 sqlite=$2 t0=$3 t1=$4
    if ((sqlite)); then
        sqlite3 -readonly "$d/history.db" "SELECT count(*) FROM samples WHERE ts >= $t0 AND ts < $t1"
    else
        awk -v a="$t0" -v b="$t1" '{ t = $1 * 1000 } t >= a && t < b { n++ } END { print n + 0 }' "$d/states"
    fi
}

# warmup_s PACKS_PER_PORT: two rounds (the first reads identities) and some slack
warmup_s() { echo $((5 + $1 * 9 / 10)); }

# run_one SIZE MODE [callgrind]: one measured run; prints one result line
run_one() {
    local size=$1 mode=$2 cg=${3:-} sqlite=1 mqtt=1 nports npacks d pid
    case "$mode" in
        full) ;;
        sqlite) mqtt=0 ;;
        mqtt) sqlite=0 ;;
        *) echo "efficiency.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
    read -r nports npacks <<<"$(layout "$size")"
    d="$top/$size-$mode${cg:+-cg}"
    mkdir -p "$d"
    start_bank "$d" "$nports" "$npacks"
    if ((mqtt)); then
        start_broker "$d"
        mosquitto_sub -h 127.0.0.1 -p "$broker_port" -t 'bmsfleet/+/state' -F '%U %t' >"$d/states" 2>/dev/null &
        pids+=($!)
    fi
    write_config "$d" "$nports" "$npacks" "$sqlite" "$mqtt" 1 "$gap"
    if [[ -n "$cg" ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$bin" run -c "$d/config.yaml" \
            >/dev/null 2>"$d/err" &
    else
        "$bin" run -c "$d/config.yaml" >/dev/null 2>"$d/err" &
    fi
    pid=$!
    pids+=("$pid")
    sleep "$(warmup_s "$npacks")"
    kill -0 "$pid" 2>/dev/null || { cat "$d/err" >&2; exit 1; }

    local t0 c0 wb0 ps0 t1 c1 wb1 ps1 p0 p1
    # the CPU window has no tracer attached (a tracepoint costs the traced system calls time);
    # the system calls are counted in a window of their own after it
    [[ -n "$cg" ]] && callgrind_control -z "$pid" >/dev/null
    t0=$(now_ms) c0=$(cpu_ns "$pid") wb0=$(io_field "$pid" write_bytes) ps0=$(poller_sums "$pid")
    sleep "$window"
    t1=$(now_ms) c1=$(cpu_ns "$pid") wb1=$(io_field "$pid" write_bytes) ps1=$(poller_sums "$pid")
    [[ -n "$cg" ]] && callgrind_control -d "$pid" >/dev/null
    perf stat --per-thread -x, -e raw_syscalls:sys_enter -p "$pid" -o "$d/perf" &
    local perf=$!
    p0=$(now_ms)
    sleep "$sys_window"
    p1=$(now_ms)
    kill -INT "$perf"
    wait "$perf" || true

    local s0 s1=0
    if [[ -z "$cg" ]] && ((strace_s > 0)); then
        s0=$(now_ms)
        timeout -s INT "$strace_s" strace -c -f -p "$pid" -o "$d/strace" 2>/dev/null || true
        s1=$(now_ms)
    fi
    local hwm
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    if grep -q 'ERROR\|error:' "$d/err"; then grep 'ERROR\|error:' "$d/err" >&2; fi
    sleep 0.5 # the last state messages reach mosquitto_sub

    local polls spolls=0 row_b=0 timeouts
    polls=$(count_polls "$d" "$sqlite" "$t0" "$t1")
    local sys_polls
    sys_polls=$(count_polls "$d" "$sqlite" "$p0" "$p1")
    ((s1 > 0)) && spolls=$(count_polls "$d" "$sqlite" "$s0" "$s1")
    timeouts=$(sed -n 's/.* \([0-9]*\) timeouts,.*/\1/p' "$d/err" | awk '{s += $1} END {print s + 0}')
    if ((sqlite)); then
        row_b=$(sqlite3 -readonly "$d/history.db" \
            "$row_sql")
    fi
    # perf --per-thread -x,: "comm-tid,count,,event,..."
    local sys
    sys=$(awk -F, '/raw_syscalls/ {
            split($1, a, "-"); c = a[1]; n = $2 + 0
            if (c ~ /^poll:/) p += n; else if (c == "store") s += n; else if (c == "mqtt") m += n; else o += n
        } END { printf "%d %d %d %d", p, s, m, o }' "$d/perf")
    local strace_top=""
    [[ -s "$d/strace" ]] && strace_top=$(awk -v n="$spolls" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
            calls = $4; name = $NF; printf "%s %.1f\n", name, n ? calls / n : 0 }' "$d/strace" |
        sort -k2 -nr | awk 'NR <= 6' | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')
    local ir=""
    if [[ -n "$cg" ]]; then
        # cg.out.1: the window's dump (cg.out is what came after it, written at exit)
        local f="$d/cg.out.1"
        ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
        # zeroing leaves the window's whole cost on the frames that were on a stack then (clone,
        # start_thread, main): not functions' own costs, left out
        callgrind_annotate --threshold=100 --inclusive=no "$f" 2>/dev/null |
            awk '/^ *[0-9,]+ \( *[0-9.]+%\) / && !/PROGRAM TOTALS|clone\.S:clone|start_thread|below main|libc_start|:main \[/ && n++ < 14' \
            >"$top/cg-$size.txt"
    fi
    python3 - "$size" "$nports" "$mode${cg:+ (callgrind)}" "$polls" "$((c1 - c0))" 1000000000 \
        "$sys $sys_polls" "$ps0" "$ps1" "$hwm" "$((wb1 - wb0))" "$row_b" "$((t1 - t0))" "$baud" "$turnaround" \
        "$timeouts" "$ir" "$strace_top" <<'EOF'
import sys
(size, nports, mode, polls, ticks, hz, sysc, ps0, ps1, hwm, wb, row_b, ms, baud, turn,
 timeouts, ir, strace_top) = sys.argv[1:]
polls = int(polls) or 1
p, s, m, o, sp = (int(x) for x in sysc.split())
sp = sp or 1
r0, w0, n0, c0 = (int(x) for x in ps0.split())
r1, w1, n1, c1 = (int(x) for x in ps1.split())
exch = max(n1 - n0, 1)
wire_s = ((r1 - r0) + (w1 - w0)) * 10 / int(baud) + exch * int(turn) / 1000
bus = (int(ms) / 1000) * int(nports) / wire_s if wire_s else 0
cpu = int(ticks) / int(hz) * 1000 / polls
line = (f"{size:>3} packs {nports} port(s) {mode:<18} polls {polls:5d}  cpu {cpu:6.3f} ms"
        f"  sys {(p + s + m + o) / sp:6.1f} (poll {p / sp:.1f} store {s / sp:.1f}"
        f" mqtt {m / sp:.1f} other {o / sp:.1f})  wake {(c1 - c0) / exch:5.1f}/exch"
        f"  rss {int(hwm) / 1024:5.1f} MB")
if float(row_b or 0):
    line += f"  wr {int(wb) / polls:6.0f} B/sample (row {float(row_b):.0f} B)"
line += f"  bus {bus:.3f}x  timeouts {timeouts}"
if ir:
    line += f"  Ir {int(ir) / polls / 1000:.0f} k/poll"
print(line)
if strace_top:
    print(f"      strace per poll: {strace_top}")
EOF
    stop_all
}

# disk_run: 16 packs at the default settings, SQLite only: bytes written per sample and per day.
# Two figures: the window alone (the WAL, and the checkpoints that fall into it), and the window
# with the checkpoint at the daemon's exit (the daemon runs under a small wrapper that reads its
# reaped child's write_bytes), which copies every page of the log into the database once, as
# the next automatic checkpoint would. At the end of the window the database and its log are
# copied and bench/wal_pages.py names the pages each commit wrote. EFF_DISK_AGE_H (default 0):
# hours of history (16 packs every 5 s) put into the database before the run, so the index and
# the rollups have the shape of a database in use (their inserts spread over more pages).
disk_run() {
    local d="$top/disk" pid t0 wb0 t1 wb1 polls wbexit
    mkdir -p "$d"
    start_bank "$d" 2 8
    # EFF_DISK_MQTT=1: with MQTT too (a private mosquitto): the replay cursor's saves counted
    if [[ "${EFF_DISK_MQTT:-0}" == 1 ]]; then
        start_broker "$d"
        write_config "$d" 2 8 1 1 5 50
        # storage: last, for EFF_DISK_COMMIT below
        grep -v '^storage:\|^  path:' "$d/config.yaml" >"$d/c.tmp"
        printf 'storage:\n  path: %s/history.db\n' "$d" >>"$d/c.tmp"
        mv "$d/c.tmp" "$d/config.yaml"
    else
        write_config "$d" 2 8 1 0 5 50
    fi
    # EFF_DISK_COMMIT: another storage.commit_interval_s (the trade of crash loss for wear)
    if [[ -n "${EFF_DISK_COMMIT:-}" ]]; then
        printf '  commit_interval_s: %d\n' "$EFF_DISK_COMMIT" >>"$d/config.yaml"
    fi
    if [[ "${EFF_DISK_AGE_H:-0}" != 0 ]]; then
        # let the daemon create and register, then stop it and age the database
        "$bin" run -c "$d/config.yaml" >/dev/null 2>"$d/err0" &
        pid=$!
        sleep 3
        kill -TERM "$pid"; wait "$pid" || true
        sqlite3 "$d/history.db" "
            WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k
                                    WHERE i < $EFF_DISK_AGE_H * 720)
            INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct, soh_cpct,
                remaining_mah, full_mah, design_mah, cycles, cell_min_mv, cell_max_mv,
                cell_min_idx, cell_max_idx, temp_min_dc, temp_max_dc, cells, temps,
                charge_uwh, discharge_uwh)
            SELECT p.id, (strftime('%s', 'now') - 60 - ($EFF_DISK_AGE_H * 720 - k.i) * 5) * 1000,
                   52000 + k.i % 7, -1500, 8000, 9900, 80000, 100000, 100000, 12, 3250, 3262,
                   3, 9, 215, 231, zeroblob(17), zeroblob(8), 104, 0
            FROM k, packs p ORDER BY k.i, p.id;
            INSERT INTO rollup_1h (pack, bucket, n, v_sum, i_sum, soc_n)
            SELECT pack, ts / 3600000 * 3600, count(*), sum(voltage_mv), sum(current_ma), 0
            FROM samples GROUP BY pack, ts / 3600000 * 3600 ON CONFLICT DO NOTHING;
            UPDATE packs SET last_sample = (SELECT max(id) FROM samples WHERE pack = packs.id);
            PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    fi
    python3 -c '
import subprocess, sys
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[2], "w"))
open(sys.argv[1] + ".pid", "w").write(str(p.pid))
p.wait()
wb = [l.split()[1] for l in open("/proc/self/io") if l.startswith("write_bytes:")][0]
open(sys.argv[1] + ".wb", "w").write(wb)' "$d/run" "$d/err" "$bin" run -c "$d/config.yaml" &
    pids+=($!)
    for _ in $(seq 50); do [[ -s "$d/run.pid" ]] && break; sleep 0.1; done
    pid=$(cat "$d/run.pid")
    sleep 20
    t0=$(now_ms) wb0=$(io_field "$pid" write_bytes)
    sleep $((window * 3 / 2))
    t1=$(now_ms) wb1=$(io_field "$pid" write_bytes)
    mkdir -p "$d/snap"
    cp "$d/history.db" "$d/snap/h.db"; cp "$d/history.db-wal" "$d/snap/h.db-wal" 2>/dev/null || true
    kill -TERM "$pid"
    for _ in $(seq 100); do [[ -s "$d/run.wb" ]] && break; sleep 0.1; done
    wbexit=$(cat "$d/run.wb")
    polls=$(count_polls "$d" 1 "$t0" "$t1")
    row_b=$(sqlite3 -readonly "$d/history.db" \
        "$row_sql")
    awk -v mqtt="${EFF_DISK_MQTT:-0}" -v commit="${EFF_DISK_COMMIT:+${EFF_DISK_COMMIT} s}" -v wb=$((wb1 - wb0)) -v wbx=$((wbexit - wb0)) -v n="$polls" -v row="$row_b" -v ms=$((t1 - t0)) 'BEGIN {
        n = n ? n : 1
        if (commit == "") commit = "5 s (defaults)"
        printf " 16 packs, interval 5 s, commit %s, %s: %d samples in %.0f s, %.0f B written per sample (row %.0f B: %.1fx), %.1f MB per day\n",
            commit, mqtt ? "SQLite and MQTT" : "SQLite only", n, ms / 1000, wb / n, row, wb / n / row, wb / (ms / 1000) * 86400 / 1e6
        printf "     with the checkpoint at exit: %.0f B per sample (%.1fx), %.1f MB per day\n",
            wbx / n, wbx / n / row, wbx / (ms / 1000) * 86400 / 1e6 }'
    if [[ -e "$d/snap/h.db-wal" ]]; then
        echo "      pages the commits of the window wrote (bench/wal_pages.py):"
        python3 "$(dirname "$0")/wal_pages.py" "$d/snap/h.db" | sed 's/^/        /'
    fi
    stop_all
}

echo "efficiency: $(date -u +%FT%TZ), $(nproc) cores, $bin; PACE at $baud baud, turnaround $turnaround ms, window $window s, gap $gap ms"
for size in $sizes; do
    for mode in $modes; do run_one "$size" "$mode"; done
done
for size in $cg_sizes; do
    for mode in $cg_modes; do
        run_one "$size" "$mode" callgrind
        echo "      most instructions (self), $size packs, $mode:"
        sed 's/^/        /' "$top/cg-$size.txt"
    done
done
if [[ "${EFF_DISK:-1}" == 1 ]]; then disk_run; fi

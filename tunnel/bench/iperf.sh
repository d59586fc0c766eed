#!/usr/bin/env bash
# iperf3 over loopback: iperf3 client -> port-tunnel client -> port-tunnel server -> iperf3
# server, all on 127.0.0.1, against iperf3 direct in the same run; default padding and
# padding 0 (PORT_TAIL_LENGTH=0), 128 KiB and 1400-byte writes, 1 and 4 parallel streams.
#
#   tunnel/bench/iperf.sh [SECONDS [ROUNDS]]   (default: 5 s per measurement, 3 rounds)
#
# Prints a Markdown table: Gbit/s the iperf3 receiver saw, and the tunnel's ratio to direct.
set -euo pipefail

secs=${1:-5}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null; then
    apt-get update >/dev/null && apt-get install -y iperf3 jq >/dev/null
fi
cargo build --release -q -p tunnel --manifest-path "$root/Cargo.toml"
bin="$root/target/release/port-tunnel"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a daemon in the background (its pid joins `pids`).
launch() { # name command...
    local out="$work/$1.out"; shift
    "$@" >"$out" 2>"$out.log" &
    pids+=($!)
}

# Waits for a daemon's `listening on ADDR` line and prints the port.
port_of() { # name
    local out="$work/$1.out"
    for _ in $(seq 400); do
        if grep -q '^listening on ' "$out"; then
            sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out"
            return
        fi
        sleep 0.05
    done
    echo "no listening line from $1" >&2; cat "$out.log" >&2; exit 1
}

"$bin" keygen --out "$work/keys" >/dev/null
echo "bench" > "$work/tokens"
iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3

# Gbit/s the iperf3 receiver saw.
measure() { # port len streams
    iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -l "$2" -P "$3" -J |
        jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100'
}

# Both tunnel pairs run side by side (only one carries traffic at a time).
declare -A tunnel_port
for padding in default 0; do
    envs=()
    [ "$padding" = 0 ] && envs=(PORT_TAIL_LENGTH=0)
    launch "server-$padding" env "${envs[@]}" "$bin" server --listen 127.0.0.1:0 \
        --key "$work/keys/server.key" --forward "127.0.0.1:$iperf_port" --tokens "$work/tokens" --log-level warn
    server_port=$(port_of "server-$padding")
    launch "client-$padding" env "${envs[@]}" "$bin" client --listen 127.0.0.1:0 \
        --server "port://127.0.0.1:$server_port" --key "$work/keys/client.key" --token "$work/tokens" --log-level warn
    tunnel_port[$padding]=$(port_of "client-$padding")
done

# Each round measures direct and then the tunnel, back to back, so that load from elsewhere
# hits both sides of a ratio alike; the table shows medians over the rounds.
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' "$@"; }
echo "| padding | write | streams | direct Gbit/s | tunnel Gbit/s | ratio (median of $rounds rounds) |"
echo "|---|---:|---:|---:|---:|---:|"
for padding in default 0; do
    for len in 128K 1400; do
        for par in 1 4; do
            ds=(); ts=(); rs=()
            for _ in $(seq "$rounds"); do
                d=$(measure "$iperf_port" "$len" "$par")
                t=$(measure "${tunnel_port[$padding]}" "$len" "$par")
                ds+=("$d"); ts+=("$t"); rs+=("$(python3 -c "print($t/$d)")")
            done
            echo "| $padding | $len | $par | $(median "${ds[@]}") | $(median "${ts[@]}") | $(median "${rs[@]}") |"
        done
    done
done

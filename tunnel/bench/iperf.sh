#!/usr/bin/env bash
# iperf3 over loopback: iperf3 client -> port-tunnel client -> port-tunnel server -> iperf3
# server, all on 127.0.0.1, against iperf3 direct in the same run; default padding and
# padding 0 (PORT_TAIL_LENGTH=0), 128 KiB and 1400-byte writes, 1 and 4 parallel streams.
#
#   tunnel/bench/iperf.sh [SECONDS [ROUNDS]]   (default: 5 s per measurement, 3 rounds)
#
# Prints a Markdown table: Gbit/s the iperf3 receiver saw, and the tunnel's ratio to direct.
#
#   tunnel/bench/iperf.sh cpu [ROUNDS [STREAMS]]   (default: 3 rounds, 1 stream)
#
# Instead: where the CPU goes. Each round moves 4 GiB (128 KiB writes, default padding) direct
# and then through the tunnel, and prints the user/system CPU seconds per GiB of every process.
#
#   tunnel/bench/iperf.sh floor [SECONDS [ROUNDS]]   (default: 5 s, 3 rounds)
#
#   tunnel/bench/iperf.sh vs OTHER_BINARY [SECONDS [ROUNDS]]   (default: 5 s, 5 rounds)
#
# Instead: this tree's port-tunnel against another port-tunnel binary (one built from an earlier
# commit, say), default padding, interleaved in every round (direct, this, other) with 128 KiB
# writes on 1 and 4 streams and 1400-byte writes; then CPU seconds per GiB of each pair of
# tunnel processes over a 2 GiB transfer per round. Medians of the per-round ratios.
#
# Instead: direct, the tunnel (default padding) and the floor (tunnel/examples/sealed_relay.rs:
# a pair of blocking relays that only seal and open every byte with the same AEAD over the same
# three hops) with 128 KiB writes, 1 and 4 streams. The cpu mode adds the floor's row too.
set -euo pipefail

mode=table
if [ "${1:-}" = cpu ]; then
    mode=cpu
    shift
    rounds=${1:-3}
    streams=${2:-1}
elif [ "${1:-}" = floor ]; then
    mode=floor
    shift
    secs=${1:-5}
    rounds=${2:-3}
elif [ "${1:-}" = vs ]; then
    mode=vs
    other=$(realpath "${2:?usage: iperf.sh vs OTHER_BINARY [SECONDS [ROUNDS]]}")
    secs=${3:-5}
    rounds=${4:-5}
else
    secs=${1:-5}
    rounds=${2:-3}
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null; then
    apt-get update >/dev/null && apt-get install -y iperf3 jq >/dev/null
fi
cargo build --release -q -p port-tunnel --bin port-tunnel --example sealed_relay --manifest-path "$root/Cargo.toml"
bin="$root/target/release/port-tunnel"
relay="$root/target/release/examples/sealed_relay"

work=$(mktemp -d)
# shellcheck source=tunnel/bench/lib.sh
source "$root/tunnel/bench/lib.sh"

"$bin" keygen --out "$work/keys" >/dev/null
echo "bench" > "$work/tokens"
iperf_port=$(free_port)
launch iperf-server iperf3 -s -p "$iperf_port"
sleep 0.3

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
if [ "$mode" = vs ]; then
    launch server-other "$other" server --listen 127.0.0.1:0 \
        --key "$work/keys/server.key" --forward "127.0.0.1:$iperf_port" --tokens "$work/tokens" --log-level warn
    launch client-other "$other" client --listen 127.0.0.1:0 \
        --server "port://127.0.0.1:$(port_of server-other)" --key "$work/keys/client.key" --token "$work/tokens" --log-level warn
    other_port=$(port_of client-other)
fi
launch floor-server "$relay" open 127.0.0.1:0 "127.0.0.1:$iperf_port"
launch floor-client "$relay" seal 127.0.0.1:0 "127.0.0.1:$(port_of floor-server)"
floor_port=$(port_of floor-client)

# One 4 GiB transfer to a port: "Gbit/s user-s sys-s" (the last two of the iperf3 client).
transfer() { # port
    python3 - "$1" "$streams" <<'PY'
import json, os, subprocess, sys
cmd = ["iperf3", "-c", "127.0.0.1", "-p", sys.argv[1], "-n", "4G", "-l", "128K", "-P", sys.argv[2], "-J"]
child = subprocess.Popen(cmd, stdout=subprocess.PIPE)
out = child.stdout.read()
_, _, usage = os.wait4(child.pid, 0)
print(json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9, usage.ru_utime, usage.ru_stime)
PY
}

cpu_table() {
    local hz procs
    hz=$(getconf CLK_TCK)
    echo "| path | Gbit/s | iperf3 client | iperf3 server | relay client | relay server | total CPU-s per GiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for _ in $(seq "$rounds"); do
        for path in direct tunnel floor; do
            local port=$iperf_port before=() after=()
            procs=(iperf-server client-default server-default)
            [ "$path" = tunnel ] && port=${tunnel_port[default]}
            [ "$path" = floor ] && port=$floor_port && procs=(iperf-server floor-client floor-server)
            for p in "${procs[@]}"; do before+=("$(ticks "${pid_of[$p]}")"); done
            local result
            result=$(transfer "$port")
            for p in "${procs[@]}"; do after+=("$(ticks "${pid_of[$p]}")"); done
            python3 - "$path" "$hz" "$result" "${before[@]}" "${after[@]}" <<'PY'
import sys
path, hz, result = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
before, after = sys.argv[4:7], sys.argv[7:10]
gbps, cells = float(result[0]), [(float(result[1]) / 4, float(result[2]) / 4)]
for b, a in zip(before, after):
    (bu, bs), (au, as_) = map(int, b.split()), map(int, a.split())
    cells.append(((au - bu) / hz / 4, (as_ - bs) / hz / 4))
if path == "direct":
    cells[2:] = [None, None]
total = sum(u + s for c in cells if c for u, s in [c])
show = lambda c: "–" if c is None else f"{c[0]:.2f} / {c[1]:.2f}"
print(f"| {path} | {gbps:.2f} | " + " | ".join(show(c) for c in cells) + f" | {total:.2f} |")
PY
        done
    done
}

if [ "$mode" = cpu ]; then
    echo "CPU seconds per GiB, user / system; 4 GiB per transfer, $streams stream(s), 128 KiB writes"
    cpu_table
    exit
fi

if [ "$mode" = vs ]; then
    echo "this tree's port-tunnel against $other, default padding, $rounds interleaved rounds"
    echo "| write | streams | direct Gbit/s | this Gbit/s | other Gbit/s | this/other (median of per-round ratios) |"
    echo "|---:|---:|---:|---:|---:|---:|"
    for case in "128K 1" "128K 4" "1400 1"; do
        set -- $case
        ds=(); ts=(); os=(); rs=()
        for _ in $(seq "$rounds"); do
            d=$(measure "$iperf_port" "$1" "$2")
            t=$(measure "${tunnel_port[default]}" "$1" "$2")
            o=$(measure "$other_port" "$1" "$2")
            ds+=("$d"); ts+=("$t"); os+=("$o"); rs+=("$(python3 -c "print($t/$o)")")
        done
        echo "| $1 | $2 | $(median "${ds[@]}") | $(median "${ts[@]}") | $(median "${os[@]}") | $(median "${rs[@]}") |"
    done
    tc=(); oc=(); cr=()
    for _ in $(seq "$rounds"); do
        t=$(pair_cpu "${tunnel_port[default]}" client-default server-default)
        o=$(pair_cpu "$other_port" client-other server-other)
        tc+=("$t"); oc+=("$o"); cr+=("$(python3 -c "print($t/$o)")")
    done
    echo
    echo "CPU-s per GiB of both tunnel processes (128 KiB writes, 1 stream): this $(median "${tc[@]}"), other $(median "${oc[@]}"), this/other $(median "${cr[@]}")"
    exit
fi
if [ "$mode" = floor ]; then
    echo "| streams | direct Gbit/s | tunnel Gbit/s | floor Gbit/s | tunnel/direct | floor/direct | tunnel/floor |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for par in 1 4; do
        ds=(); ts=(); fs=(); tds=(); fds=(); tfs=()
        for _ in $(seq "$rounds"); do
            d=$(measure "$iperf_port" 128K "$par")
            t=$(measure "${tunnel_port[default]}" 128K "$par")
            f=$(measure "$floor_port" 128K "$par")
            ds+=("$d"); ts+=("$t"); fs+=("$f")
            tds+=("$(ratio "$t" "$d")"); fds+=("$(ratio "$f" "$d")"); tfs+=("$(ratio "$t" "$f")")
        done
        echo "| $par | $(median "${ds[@]}") | $(median "${ts[@]}") | $(median "${fs[@]}") | $(median "${tds[@]}") | $(median "${fds[@]}") | $(median "${tfs[@]}") |"
    done
    exit
fi

# Each round measures direct and then the tunnel, back to back, so that load from elsewhere
# hits both sides of a ratio alike; the table shows medians over the rounds.
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

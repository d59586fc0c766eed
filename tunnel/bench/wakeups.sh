#!/usr/bin/env bash
# What a carried GiB costs a port-tunnel pair in scheduling: context switches per MiB (every
# thread of both relay processes, from /proc, no tracer attached) and futex, epoll_wait and
# socket calls per GiB (strace -c on both processes, a second transfer).
#
#   tunnel/bench/wakeups.sh [GIB [BINARY...]]   (default: 1 GiB, this tree's release build)
#
# Each binary gets its own relay pair (default padding, ChaCha20-Poly1305) in front of one
# iperf3 server; each pair carries GIB with 128 KiB writes forward (the tunnel client seals)
# and reverse (iperf3 -R: the tunnel server seals), one stream. Prints a Markdown table.
set -euo pipefail

gib=${1:-1}
shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v iperf3 >/dev/null || ! command -v strace >/dev/null; then
    apt-get update >/dev/null && apt-get install -y iperf3 strace >/dev/null
fi
if [ $# -eq 0 ]; then
    cargo build --release -q -p port-tunnel --bin port-tunnel --manifest-path "$root/Cargo.toml"
    set -- "$root/target/release/port-tunnel"
fi

work=$(mktemp -d)
# shellcheck source=tunnel/bench/lib.sh
source "$root/tunnel/bench/lib.sh"

"$1" keygen --out "$work/keys" >/dev/null
echo "bench" > "$work/tokens"
iperf_port=$(free_port)
launch iperf-server iperf3 -s -p "$iperf_port"
wait_port "$iperf_port"

names=()
declare -A port_of_pair
for i in $(seq $#); do
    bin=$(realpath "${!i}") name="$i:$(basename "$bin")"
    launch "$name-server" "$bin" server --listen 127.0.0.1:0 --key "$work/keys/server.key" \
        --forward "127.0.0.1:$iperf_port" --tokens "$work/tokens" --log-level warn
    launch "$name-client" "$bin" client --listen 127.0.0.1:0 \
        --server "port://127.0.0.1:$(port_of "$name-server")" --key "$work/keys/client.key" \
        --token "$work/tokens" --log-level warn
    port_of_pair[$name]=$(port_of "$name-client")
    names+=("$name")
done

# Voluntary and involuntary context switches of every thread of a process so far.
switches() { # pid
    cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'
}

transfer() { # port direction
    local extra=()
    [ "$2" = reverse ] && extra=(-R)
    iperf3 -c 127.0.0.1 -p "$1" -n "${gib}G" -l 128K "${extra[@]}" >/dev/null
}

echo "$(date -u +%Y-%m-%d) · $(nproc) CPUs · load $(cut -d' ' -f1-3 /proc/loadavg) · $gib GiB per transfer, 128 KiB writes, 1 stream"
echo
echo "| binary | direction | context switches per MiB | futex per GiB | epoll_wait per GiB | socket reads per GiB | socket writes per GiB |"
echo "|---|---|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
    client=${pid_of[$name-client]} server=${pid_of[$name-server]}
    for direction in forward reverse; do
        before=$(( $(switches "$client") + $(switches "$server") ))
        transfer "${port_of_pair[$name]}" "$direction"
        after=$(( $(switches "$client") + $(switches "$server") ))

        strace -f -c -o "$work/client.strace" -p "$client" 2>/dev/null &
        tracer_client=$!
        strace -f -c -o "$work/server.strace" -p "$server" 2>/dev/null &
        tracer_server=$!
        sleep 0.5
        transfer "${port_of_pair[$name]}" "$direction"
        kill -INT "$tracer_client" "$tracer_server"
        wait "$tracer_client" "$tracer_server" 2>/dev/null || true

        python3 - "$name" "$direction" "$gib" "$before" "$after" "$work/client.strace" "$work/server.strace" <<'PY'
import sys
name, direction, gib, before, after = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
calls = {}
for path in sys.argv[6:8]:
    for line in open(path):
        parts = line.split()
        # "% time  seconds  usecs/call  calls  errors  syscall": errors may be blank.
        if len(parts) >= 5 and parts[0][0].isdigit() and not parts[-1].startswith("total"):
            calls[parts[-1]] = calls.get(parts[-1], 0) + int(parts[3])
def per_gib(*names):
    return f"{sum(calls.get(n, 0) for n in names) / gib:,.0f}"
print(f"| {name} | {direction} | {(after - before) / (gib * 1024):.1f} | {per_gib('futex')} | "
      f"{per_gib('epoll_wait', 'epoll_pwait', 'epoll_pwait2')} | {per_gib('read', 'recvfrom', 'readv', 'recvmsg')} | "
      f"{per_gib('write', 'sendto', 'writev', 'sendmsg')} |")
PY
    done
done

#!/usr/bin/env bash
# port-tunnel against shadowsocks-rust's 2022 ciphers, side by side on loopback, cipher for
# cipher: iperf3 through each relay pair (sslocal in tunnel mode -> ssserver, port-tunnel client
# -> server, each with ChaCha20-Poly1305 and with AES-256-GCM), direct iperf3 in the same rounds,
# interleaved (every round measures every path in turn).
#
#   tunnel/bench/vs-shadowsocks.sh [SECONDS [ROUNDS [SETUPS]]]   (default: 5 s, 5 rounds, 2000)
#
# Installs shadowsocks-rust (pinned, only the features it needs, in its own release profile)
# under tunnel/bench/.shadowsocks, and iperf3 and jq if missing. Prints Markdown tables:
#
# - throughput: 128 KiB writes with 1 and 4 streams and 1400-byte writes, both directions
#   (reverse: iperf3 -R, the server sends), each pair's Gbit/s and port-tunnel's ratio to
#   shadowsocks with the same cipher (medians of the per-round ratios);
# - relay CPU seconds per GiB of both relay processes of a pair, 128 KiB writes, and the ratio;
# - connection set-up: a fresh connection through the pair carrying 1 byte there and back to
#   an echo service, median and p99 over SETUPS connections, interleaved.
set -euo pipefail

secs=${1:-5}
rounds=${2:-5}
setups=${3:-2000}
SS_VERSION=1.25.0
SS_FEATURES="local,server,local-tunnel,multi-threaded,aead-cipher-2022"
root=$(cd "$(dirname "$0")/../.." && pwd)
ss_root="$root/tunnel/bench/.shadowsocks"
if ! "$ss_root/bin/ssserver" --version 2>/dev/null | grep -q "$SS_VERSION"; then
    cargo install shadowsocks-rust --version "$SS_VERSION" --locked --no-default-features \
        --features "$SS_FEATURES" --root "$ss_root" --quiet
fi
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null; then
    apt-get update >/dev/null && apt-get install -y iperf3 jq >/dev/null
fi
cargo build --release -q -p port-tunnel --bin port-tunnel --manifest-path "$root/Cargo.toml"
bin="$root/target/release/port-tunnel"

work=$(mktemp -d)
# shellcheck source=tunnel/bench/lib.sh
source "$root/tunnel/bench/lib.sh"

iperf_port=$(free_port)
launch iperf-server iperf3 -s -p "$iperf_port"
# The echo service for connection set-up: one byte back for every byte.
launch_echo
wait_port "$iperf_port"
wait_port "$echo_port"

# Every path: its name and, per target (iperf, echo), the local port to connect to.
paths=(direct)
declare -A to_iperf to_echo relays
to_iperf[direct]=$iperf_port
to_echo[direct]=$echo_port

ciphers=(chacha20-poly1305 aes-256-gcm)
# A shadowsocks pair per cipher and target: ssserver, and sslocal in tunnel mode.
for cipher in "${ciphers[@]}"; do
    method="2022-blake3-$cipher" name="ss-$cipher"
    key=$(head -c 32 /dev/urandom | base64)
    for target in iperf echo; do
        server_port=$(free_port); local_port=$(free_port)
        forward=$iperf_port; [ "$target" = echo ] && forward=$echo_port
        launch "$name-$target-server" "$ss_root/bin/ssserver" -s "127.0.0.1:$server_port" \
            -m "$method" -k "$key"
        launch "$name-$target-client" "$ss_root/bin/sslocal" --protocol tunnel \
            -b "127.0.0.1:$local_port" --forward-addr "127.0.0.1:$forward" \
            -s "127.0.0.1:$server_port" -m "$method" -k "$key"
        wait_port "$local_port"
        [ "$target" = iperf ] && to_iperf[$name]=$local_port || to_echo[$name]=$local_port
    done
    relays[$name]="$name-iperf-client $name-iperf-server"
    paths+=("$name")
done

# port-tunnel, default padding, per cipher and target.
echo "bench" > "$work/tokens"
for cipher in "${ciphers[@]}"; do
    name="port-$cipher" keys="$work/keys-$cipher"
    "$bin" keygen --out "$keys" --cipher "$cipher" >/dev/null
    for target in iperf echo; do
        forward=$iperf_port; [ "$target" = echo ] && forward=$echo_port
        launch "$name-$target-server" "$bin" server --listen 127.0.0.1:0 --key "$keys/server.key" \
            --forward "127.0.0.1:$forward" --tokens "$work/tokens" --log-level warn
        launch "$name-$target-client" "$bin" client --listen 127.0.0.1:0 \
            --server "port://127.0.0.1:$(port_of "$name-$target-server")" \
            --key "$keys/client.key" --token "$work/tokens" --log-level warn
        port=$(port_of "$name-$target-client")
        [ "$target" = iperf ] && to_iperf[$name]=$port || to_echo[$name]=$port
    done
    relays[$name]="$name-iperf-client $name-iperf-server"
    paths+=("$name")
done

echo "$(date -u +%Y-%m-%d) · $(nproc) CPUs · load $(cut -d' ' -f1-3 /proc/loadavg) · shadowsocks-rust $SS_VERSION · $secs s per measurement, $rounds interleaved rounds"
echo
echo "| write | streams | direction |$(printf ' %s Gbit/s |' "${paths[@]}")$(printf ' port / ss, %s |' "${ciphers[@]}")"
echo "|---:|---:|---|$(printf -- '---:|%.0s' "${paths[@]}")---:|---:|"
for case in "128K 1" "128K 4" "1400 1"; do
    for direction in forward reverse; do
        set -- $case
        extra=(); [ "$direction" = reverse ] && extra=(-R)
        declare -A got=() ratios=()
        for _ in $(seq "$rounds"); do
            declare -A this=()
            for path in "${paths[@]}"; do
                this[$path]=$(measure "${to_iperf[$path]}" "$1" "$2" "${extra[@]}")
                got[$path]+=" ${this[$path]}"
            done
            for cipher in "${ciphers[@]}"; do
                ratios[$cipher]+=" $(python3 -c "print(${this[port-$cipher]}/${this[ss-$cipher]})")"
            done
        done
        row="| $1 | $2 | $direction |"
        for path in "${paths[@]}"; do row+=" $(median ${got[$path]}) |"; done
        for cipher in "${ciphers[@]}"; do row+=" $(median ${ratios[$cipher]}) |"; done
        echo "$row"
    done
done

echo
echo "| cipher | ss CPU-s per GiB | port-tunnel CPU-s per GiB | port / ss |"
echo "|---|---:|---:|---:|"
for cipher in "${ciphers[@]}"; do
    declare -A cpu=()
    for _ in $(seq "$rounds"); do
        for path in "ss-$cipher" "port-$cipher"; do
            read -r client server <<<"${relays[$path]}"
            cpu[$path]+=" $(pair_cpu "${to_iperf[$path]}" "$client" "$server")"
        done
    done
    ss=$(median ${cpu[ss-$cipher]}) port=$(median ${cpu[port-$cipher]})
    echo "| $cipher | $ss | $port | $(ratio "$port" "$ss") |"
done

echo
echo "New connection, 1 byte there and back ($setups per path, interleaved):"
echo
python3 - "$setups" "${paths[@]}" -- $(for p in "${paths[@]}"; do echo "${to_echo[$p]}"; done) <<'PY'
import socket, statistics, sys, time
setups = int(sys.argv[1])
split = sys.argv.index("--")
paths, ports = sys.argv[2:split], [int(p) for p in sys.argv[split + 1:]]
times = {p: [] for p in paths}
for _ in range(setups):
    for path, port in zip(paths, ports):
        start = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        times[path].append(time.perf_counter() - start)
        s.close()
def p99(v):
    return sorted(v)[int(len(v) * 0.99)]
print("| path | median ms | p99 ms | port / ss (same cipher), median | p99 |")
print("|---|---:|---:|---:|---:|")
for path in paths:
    v = times[path]
    row = f"| {path} | {statistics.median(v)*1e3:.3f} | {p99(v)*1e3:.3f} |"
    ss = times.get(path.replace("port-", "ss-", 1)) if path.startswith("port-") else None
    if ss:
        row += f" {statistics.median(v)/statistics.median(ss):.2f} | {p99(v)/p99(ss):.2f} |"
    else:
        row += " | |"
    print(row)
PY

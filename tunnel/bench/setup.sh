#!/usr/bin/env bash
# Where a new carried connection's time goes: an application connects through a port-tunnel
# pair to an echo service and sends 1 byte there and back, one connection at a time. Both
# tunnel processes log their set-up milestones at debug level with microsecond timestamps;
# each interval between consecutive milestones is reported as the median over all connections.
#
#   tunnel/bench/setup.sh [CONNECTIONS [CIPHER [OTHER_BINARY]]]   (default: 300, chacha20-poly1305)
#
# The milestones, in order: the application's connect, the tunnel client's accept, its session
# (the client INIT) built while its TCP connect to the server is under way, that connect done,
# the server's "token authenticated" (the INIT read and opened), its tunnel task taking the
# client, its forward connect done, its "connected" (accepted, server INIT sent), the client's
# "connected" (server INIT read), and the application's byte back. Logging costs time too, so the same connections are also timed
# through a pair logging warnings only: that total is the one to compare with other tunnels.
# With OTHER_BINARY (a port-tunnel built from another commit), a third pair of it, logging
# warnings only, takes its turn in every round too, and the totals are compared.
set -euo pipefail

count=${1:-300}
cipher=${2:-chacha20-poly1305}
other=${3:+$(realpath "$3")}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release -q -p port-tunnel --bin port-tunnel --manifest-path "$root/Cargo.toml"
bin="$root/target/release/port-tunnel"

work=$(mktemp -d)
# shellcheck source=tunnel/bench/lib.sh
source "$root/tunnel/bench/lib.sh"

"$bin" keygen --out "$work/keys" --cipher "$cipher" >/dev/null
echo "bench" > "$work/tokens"
launch_echo
wait_port "$echo_port"

# One pair per log level: warnings only (the true total), and the milestones; and the other
# binary's, if given.
declare -A client_port
client_port[other]=0
levels=(quiet traced)
[ -n "$other" ] && levels+=(other)
for level in "${levels[@]}"; do
    filter=warn this=$bin
    [ "$level" = traced ] && filter="warn,port_driver=debug,port_tunnel=debug"
    [ "$level" = other ] && this=$other
    launch "server-$level" "$this" server --listen 127.0.0.1:0 --key "$work/keys/server.key" \
        --forward "127.0.0.1:$echo_port" --tokens "$work/tokens" --log-level "$filter"
    launch "client-$level" "$this" client --listen 127.0.0.1:0 \
        --server "port://127.0.0.1:$(port_of "server-$level")" --key "$work/keys/client.key" \
        --token "$work/tokens" --log-level "$filter"
    client_port[$level]=$(port_of "client-$level")
done

echo "$(date -u +%Y-%m-%d) · $(nproc) CPUs · load $(cut -d' ' -f1-3 /proc/loadavg) · $count connections, $cipher"
python3 - "$count" "${client_port[quiet]}" "${client_port[traced]}" \
    "$work/client-traced.out.log" "$work/server-traced.out.log" "${client_port[other]}" <<'PY'
import datetime, re, socket, statistics, sys, time

count, quiet, traced = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
client_log, server_log, other = sys.argv[4], sys.argv[5], int(sys.argv[6])

def once(port):
    start = time.time()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    end = time.time()
    s.close()
    return start, end

def median_ms(values):
    return f"{statistics.median(values) * 1e3:.3f}"

totals = {"quiet": [], "traced": [], "other": []}
pairs = [("quiet", quiet), ("traced", traced)] + ([("other", other)] if other else [])
windows = []
for _ in range(count):
    for level, port in pairs:
        start, end = once(port)
        totals[level].append(end - start)
        if level == "traced":
            windows.append((start, end))
        time.sleep(0.005)
time.sleep(0.5)

line = re.compile(r"^(\S+Z)\s+\w+\s+(.*)$")
def events(path):
    out = []
    for text in open(path):
        m = line.match(re.sub(r"\x1b\[[0-9;]*m", "", text))
        if not m:
            continue
        stamp = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        out.append((stamp, m.group(2)))
    return out

# (label, log, predicate on the line's text)
milestones = [
    ("tunnel client accepts the application", "client", lambda t: "local connection accepted" in t),
    ("client INIT built (two X25519 products), the TCP connect under way", "client", lambda t: "port_driver::connect: session ready" in t),
    ("TCP connect to the server completes", "client", lambda t: "port_driver::connect: tcp connected" in t),
    ("INIT crosses, server reads it, opens it (one X25519 product)", "server", lambda t: "port_driver::driver: token authenticated" in t),
    ("the application's task takes the client", "server", lambda t: "port_tunnel::server: deciding" in t),
    ("token check, forward connect", "server", lambda t: "target connected" in t),
    ("accept decision, server INIT sent", "server", lambda t: "side=server" in t and "port_driver::driver: connected" in t),
    ("server INIT crosses, client reads it (one product)", "client", lambda t: "side=client" in t and "port_driver::driver: connected" in t),
]
logs = {"client": events(client_log), "server": events(server_log)}
intervals = [[] for _ in range(len(milestones) + 1)]
for start, end in windows:
    stamps = [start]
    for _, which, wanted in milestones:
        hit = [s for s, t in logs[which] if start <= s <= end and wanted(t)]
        if not hit:
            break
        stamps.append(hit[0])
    else:
        stamps.append(end)
        for i in range(len(stamps) - 1):
            intervals[i].append(stamps[i + 1] - stamps[i])
labels = [m[0] for m in milestones] + ["first byte there and back (copy, echo, copy)"]
print()
print(f"| step | median ms |")
print("|---|---:|")
for label, values in zip(labels, intervals):
    print(f"| {label} | {median_ms(values) if values else 'n/a'} |")
print(f"| **total, logging milestones** ({len(intervals[0])} of {count} connections matched) | {median_ms(totals['traced'])} |")
print(f"| **total, warnings only** | {median_ms(totals['quiet'])} |")
if other:
    p99 = lambda v: sorted(v)[int(len(v) * 0.99)]
    q, o = totals["quiet"], totals["other"]
    print()
    print("| binary, warnings only | median ms | p99 ms |")
    print("|---|---:|---:|")
    print(f"| this tree | {median_ms(q)} | {p99(q) * 1e3:.3f} |")
    print(f"| other | {median_ms(o)} | {p99(o) * 1e3:.3f} |")
    print(f"| this / other | {statistics.median(q) / statistics.median(o):.3f} | {p99(q) / p99(o):.3f} |")
PY

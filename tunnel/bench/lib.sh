# Shared by the tunnel benches (sourced): daemons in the background, ports, iperf3 runs, CPU
# ticks and medians. Callers set `work` (a scratch directory) before sourcing; it is removed at
# exit unless KEEP_WORK is set (every daemon's output and log are in it).

pids=()
declare -A pid_of
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a daemon in the background (its pid joins `pids` and `pid_of[name]`).
launch() { # name command...
    local name=$1 out="$work/$1.out"; shift
    "$@" >"$out" 2>"$out.log" &
    pids+=($!)
    pid_of[$name]=$!
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

# Starts an echo service on 127.0.0.1 (every byte back, each connection on its own thread,
# TCP_NODELAY) and sets `echo_port` (not a command substitution: `launch` must run in this
# shell, so that the cleanup knows the process); wait for it with wait_port.
launch_echo() {
    local port
    port=$(free_port)
    launch echo python3 -c "
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(1024)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (b := c.recv(65536)):
        c.sendall(b)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"
    echo_port=$port
}

# Waits until something accepts TCP connections on 127.0.0.1:PORT.
wait_port() { # port
    for _ in $(seq 400); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; then
            return
        fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2; exit 1
}

# Gbit/s the iperf3 receiver saw; extra iperf3 arguments after the first three (-R, say).
measure() { # port len streams [args...]
    local port=$1 len=$2 streams=$3; shift 3
    iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -l "$len" -P "$streams" -J "$@" |
        jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100'
}

# User and system CPU ticks a process has used so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' "$@"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# CPU seconds per GiB of a relay pair over a 2 GiB transfer through it.
pair_cpu() { # port client-name server-name
    local hz b1 b2 a1 a2
    hz=$(getconf CLK_TCK)
    b1=$(ticks "${pid_of[$2]}"); b2=$(ticks "${pid_of[$3]}")
    iperf3 -c 127.0.0.1 -p "$1" -n 2G -l 128K -J >/dev/null
    a1=$(ticks "${pid_of[$2]}"); a2=$(ticks "${pid_of[$3]}")
    python3 -c "import sys; t=[int(x) for x in sys.argv[1:]]; print(f'{(sum(t[4:])-sum(t[:4]))/$hz/2:.3f}')" $b1 $b2 $a1 $a2
}

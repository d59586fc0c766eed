#!/usr/bin/env bash
# The ChaCha20-Poly1305 backend matrix of BENCHMARKS.md: runs the interleaved comparisons of
# the given benches (default: codec) once per RUSTFLAGS variant, each variant in its own target
# directory (target/rustflags/NAME) so that the main build is left alone. The cfg flags select
# the backends of RustCrypto's chacha20 and poly1305 crates (the `raw rustcrypto` row of the
# codec bench); ring, which PORT uses, picks its assembly at run time and ignores them.
#
#   benches/rustflags.sh                      # every variant, codec
#   BENCHES="codec loopback" benches/rustflags.sh default poly1305-soft
#
# Output goes to the terminal and to target/rustflags/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A FLAGS=(
    [default]=""
    [poly1305-soft]='--cfg poly1305_backend="soft"'
    [avx2-target]='-C target-feature=+avx2'
    [avx2-forced]='-C target-feature=+avx2 --cfg chacha20_backend="avx2"'
    [sse2-soft]='--cfg chacha20_backend="sse2" --cfg poly1305_backend="soft"'
    [soft]='--cfg chacha20_backend="soft" --cfg poly1305_backend="soft"'
    [avx512-detect]='--cfg chacha20_avx512'
    [native]='-C target-cpu=native'
)
ORDER=(default poly1305-soft avx2-target avx2-forced sse2-soft soft avx512-detect native)

variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=("${ORDER[@]}")
benches=${BENCHES:-codec}

mkdir -p target/rustflags
for name in "${variants[@]}"; do
    [ -n "${FLAGS[$name]+set}" ] || { echo "unknown variant: $name" >&2; exit 2; }
    log="target/rustflags/$name.log"
    : >"$log"
    for bench in $benches; do
        echo "== $name: RUSTFLAGS='${FLAGS[$name]}' cargo bench -p benches --bench $bench" | tee -a "$log"
        RUSTFLAGS="${FLAGS[$name]}" CARGO_TARGET_DIR="target/rustflags/$name" \
            cargo bench --quiet -p benches --bench "$bench" --no-run 2>&1 | tee -a "$log"
        echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
        RUSTFLAGS="${FLAGS[$name]}" CARGO_TARGET_DIR="target/rustflags/$name" \
            PORT_BENCH_COMPARE_ONLY=1 cargo bench --quiet -p benches --bench "$bench" 2>&1 |
            tee -a "$log"
    done
done

#!/usr/bin/env bash
# Cross-compiles the engine for arm64 (so the NEON kernels are built) and runs
# C++ tests under qemu-user.
#
#   scripts/test-arm64.sh [test-name ...]     (default: kernels)
#
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user
# Build folder: build-arm64 (override with BUILD_DIR=...).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-arm64}"
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(kernels)

for tool in aarch64-linux-gnu-g++ aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install g++-aarch64-linux-gnu qemu-user)" >&2; exit 1; }
done

mkdir -p "$build"
cat > "$build/toolchain-aarch64.cmake" <<'TC'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
TC

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$build/toolchain-aarch64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DSDGO_BUILD_BENCH=OFF >/dev/null
targets=()
for t in "${tests[@]}"; do targets+=("test_$t"); done
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"

export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
status=0
for t in "${tests[@]}"; do
    echo "== test_$t (arm64, qemu)"
    qemu-aarch64 "$build/bin/test_$t" || status=1
done
exit $status

#!/usr/bin/env bash
# Builds the libFuzzer harnesses in csrc/fuzz/ with AddressSanitizer and
# UBSan and runs each for N seconds (default 60).
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]      e.g. scripts/fuzz.sh 600 gguf torch
#
# Needs clang with the libFuzzer runtime (Debian: apt-get install clang
# libclang-rt-14-dev). Work files go to build-fuzz/ (corpus, crashes, logs).
# Exit status is non-zero if any harness found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
shift || true
HARNESSES=("$@")
if [ ${#HARNESSES[@]} -eq 0 ]; then HARNESSES=(safetensors gguf torch json); fi
CXX="${CXX_FUZZ:-$(command -v clang++ || true)}"
[ -n "$CXX" ] || { echo "clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
OUT=build-fuzz
mkdir -p "$OUT"
SRCS="csrc/formats/*.cpp csrc/model/naming.cpp csrc/model/load.cpp csrc/model/detect.cpp csrc/model/unet_config.cpp csrc/base/*.cpp csrc/types/*.cpp csrc/util/inflate.cpp"
FLAGS="-std=c++17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -Icsrc -Icsrc/include -DSDGO_HAVE_AVX2 -DSDGO_HAVE_AVX512"
AVX2="-mavx2 -mfma -mf16c"
AVX512="$AVX2 -mavx512f -mavx512bw -mavx512vl -mavx512dq"

# The engine sources are compiled once (instrumented for coverage, with each
# ISA-specific file getting its own flags, as CMake does) and linked into
# every harness.
build_objects() {
  OBJS=()
  mkdir -p "$OUT/obj"
  for src in $SRCS; do
    local extra=""
    case $src in
      *_avx512.cpp) extra=$AVX512 ;;
      *_avx2.cpp) extra=$AVX2 ;;
    esac
    local o="$OUT/obj/$(echo "$src" | tr / _).o"
    # shellcheck disable=SC2086
    "$CXX" $FLAGS -fsanitize=fuzzer-no-link $extra -c "$src" -o "$o"
    OBJS+=("$o")
  done
}

seed() {  # seed corpora: the small test files plus a few hand-made inputs
  local h=$1 d="$OUT/corpus_$h"
  mkdir -p "$d"
  case $h in
    safetensors)
      printf '\x3c\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    \x00\x00\x80\x3f\x00\x00\x00\x40' > "$d/seed_small"
      head -c 65536 testdata/models/vae_diffusers.safetensors > "$d/seed_vae" ;;
    gguf)
      cp testdata/models/meta_all.gguf "$d/" ; head -c 65536 testdata/models/sd1_sdcpp.gguf > "$d/seed_sdcpp" ;;
    torch)
      cp testdata/models/evil_eval.pt testdata/models/evil_os_system.ckpt "$d/"
      head -c 65536 testdata/models/vae_ldm.pt > "$d/seed_vae_head" ;;
    json)
      cp testdata/models/sd1_diffusers/unet/config.json testdata/models/sd1_diffusers/model_index.json "$d/" ;;
  esac
}

status=0
echo "== compiling the engine sources"
build_objects
for h in "${HARNESSES[@]}"; do
  bin="$OUT/fuzz_$h"
  echo "== building $bin"
  # shellcheck disable=SC2086
  "$CXX" $FLAGS -fsanitize=fuzzer "csrc/fuzz/fuzz_$h.cpp" "${OBJS[@]}" -o "$bin"
  seed "$h"
  mkdir -p "$OUT/crashes_$h"
  echo "== running $h for ${SECS}s"
  if ! "$bin" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes_$h/" "$OUT/corpus_$h" > "$OUT/log_$h.txt" 2>&1; then
    echo "!! $h: crash or failure, see $OUT/log_$h.txt and $OUT/crashes_$h/"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/log_$h.txt" | sed "s/^/   $h /" || true
done
exit $status

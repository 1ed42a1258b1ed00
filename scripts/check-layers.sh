#!/usr/bin/env bash
# check-layers.sh — the engine's layers point one way.
#
# Each folder under csrc/ may include its own headers, the public header
# (sdgo.h) and the headers of the folders before it in LAYERS, never those
# after it. types/ sits below core/: it defines the element formats (the
# type table and its conversions) and knows nothing of tensors, graphs or
# backends; core/ builds tensors of those types. A folder under csrc/ that is
# not in LAYERS (and is not tests/, bench/, fuzz/ or include/) is an error,
# so a new folder has to be given its place.
#
# Usage: scripts/check-layers.sh [CSRC_DIR]   (default: csrc next to this
# script). Exit status 0 when every include points down, 1 otherwise, with
# one line per offending include.
#        scripts/check-layers.sh --self-test
# checks the checker: a tree whose core/ includes model/ must fail, naming
# the line, and the same tree without that include must pass.
set -euo pipefail

if [ "${1:-}" = --self-test ]; then
    t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
    mkdir -p "$t/core" "$t/model" "$t/tests"
    printf '#include "core/graph.h"\n' > "$t/model/unet.h"
    printf '#include "model/unet.h"\n' > "$t/tests/t.cpp"
    printf '#include <vector>\n#include "sdgo.h"\n' > "$t/core/graph.h"
    "$0" "$t" > "$t/out" || { echo "self-test: a clean tree failed:"; cat "$t/out"; exit 1; }
    printf '#include "model/unet.h"\n' >> "$t/core/graph.h"
    if "$0" "$t" > "$t/out"; then echo "self-test: an upward include passed"; exit 1; fi
    grep -q 'core/graph.h:3: core/ includes model/' "$t/out" || { echo "self-test: wrong report:"; cat "$t/out"; exit 1; }
    echo "check-layers: self-test ok"
    exit 0
fi

LAYERS=(base util types core formats text sampling backends convert model pipeline abi)
EXEMPT=(tests bench fuzz include)

csrc=${1:-"$(cd "$(dirname "$0")/.." && pwd)/csrc"}
[ -d "$csrc" ] || { echo "check-layers: no such folder: $csrc" >&2; exit 2; }

declare -A rank
for i in "${!LAYERS[@]}"; do rank[${LAYERS[$i]}]=$i; done
declare -A exempt
for e in "${EXEMPT[@]}"; do exempt[$e]=1; done

bad=0
for dir in "$csrc"/*/; do
    layer=$(basename "$dir")
    [ -n "${exempt[$layer]:-}" ] && continue
    if [ -z "${rank[$layer]:-}" ]; then
        echo "check-layers: csrc/$layer/ has no place in the layer order (scripts/check-layers.sh LAYERS)"
        bad=1
        continue
    fi
    mine=${rank[$layer]}
    # Quoted includes only: "folder/file.h". System headers and sdgo.h pass.
    while IFS= read -r hit; do
        file=${hit%%:*}
        rest=${hit#*:}
        line=${rest%%:*}
        target=$(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"/]+)\/.*/\1/p' <<<"${rest#*:}")
        [ -z "$target" ] && continue
        [ "$target" = include ] && continue
        if [ -z "${rank[$target]:-}" ]; then
            echo "check-layers: ${file#"$csrc"/}:$line includes from unknown folder $target/"
            bad=1
        elif [ "${rank[$target]}" -gt "$mine" ]; then
            echo "check-layers: ${file#"$csrc"/}:$line: $layer/ includes $target/, a layer above it"
            bad=1
        fi
    done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"/]+/' "$dir" --include='*.h' --include='*.hpp' \
                 --include='*.cpp' --include='*.c' --include='*.inc' || true)
done

if [ "$bad" -ne 0 ]; then
    echo "check-layers: FAILED (order, lowest first: ${LAYERS[*]})"
    exit 1
fi
echo "check-layers: ok (order, lowest first: ${LAYERS[*]})"

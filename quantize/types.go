// Package quantize converts models to GGUF with quantized weights: the
// engine behind `sd-go quantize`.
//
// It names the weight types sd-go's engine stores and computes with (Type;
// the ids are ggml's, so a Type is the same number a GGUF file stores),
// decides per tensor which type to write (Policy, which reproduces
// stable-diffusion.cpp's rules so that its loader accepts the result, with
// user Rules on top), and drives the engine's converter (File). The
// numerics and the file format belong to the engine: the bytes of every
// converted tensor are those of ggml's quantizers with an all-ones
// importance vector, the call stable-diffusion.cpp's converter makes.
//
// Concurrency: Policy and Rule values are immutable and safe to share;
// File may run concurrently with other Files (each uses its own engine
// context).
package quantize

import (
	"fmt"
	"sort"
	"strings"
)

// Type is a tensor element type, numbered as in ggml and GGUF.
type Type int32

// The weight types sd-go's engine handles.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	BF16 Type = 30
)

type typeInfo struct {
	name       string
	blockElems int // elements per block
	blockBytes int // bytes per block
}

// The block geometry is ggml's (bit-exact block layouts).
var types = map[Type]typeInfo{
	F32:  {"f32", 1, 4},
	F16:  {"f16", 1, 2},
	BF16: {"bf16", 1, 2},
	Q8_0: {"q8_0", 32, 34},
	Q5_1: {"q5_1", 32, 24},
	Q5_0: {"q5_0", 32, 22},
	Q4_1: {"q4_1", 32, 20},
	Q4_0: {"q4_0", 32, 18},
}

// String is ggml's name for the type ("q4_0"), or "type(N)".
func (t Type) String() string {
	if ti, ok := types[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// BlockSize is the number of elements in one block (1 for float types).
func (t Type) BlockSize() int { return types[t].blockElems }

// RowBytes is the storage size of a row of n elements; n must be a multiple
// of the block size.
func (t Type) RowBytes(n int) (int, error) {
	ti, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("quantize: unknown type %v", t)
	}
	if n < 0 || n%ti.blockElems != 0 {
		return 0, fmt.Errorf("quantize: a %s row needs a multiple of %d elements, got %d", ti.name, ti.blockElems, n)
	}
	return n / ti.blockElems * ti.blockBytes, nil
}

// BitsPerWeight is the storage cost of one element, scales included.
func (t Type) BitsPerWeight() float64 {
	ti := types[t]
	if ti.blockElems == 0 {
		return 0
	}
	return float64(ti.blockBytes*8) / float64(ti.blockElems)
}

// Types lists the known types, largest first.
func Types() []Type {
	out := make([]Type, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		bi, bj := out[i].BitsPerWeight(), out[j].BitsPerWeight()
		if bi != bj {
			return bi > bj
		}
		return out[i] < out[j]
	})
	return out
}

// ParseType reads a type name as ggml writes it ("q4_0"), ignoring case.
func ParseType(s string) (Type, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for t, ti := range types {
		if ti.name == want {
			return t, nil
		}
	}
	names := make([]string, 0, len(types))
	for _, t := range Types() {
		names = append(names, t.String())
	}
	return 0, fmt.Errorf("quantize: unknown type %q (want one of %s)", s, strings.Join(names, ", "))
}

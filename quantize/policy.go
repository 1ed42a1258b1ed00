package quantize

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Tensor is what the policy looks at for one tensor.
type Tensor struct {
	// Name is the tensor's canonical name (stable-diffusion.cpp's scheme,
	// e.g. "model.diffusion_model.out.2.weight").
	Name string
	// Type is the type the tensor keeps when it is not converted: its
	// stored type after source normalisation (f64 -> f32, i64 -> i32,
	// f8 -> f16). Any ggml id, including ones this package has no constant
	// for (i32, k-quants).
	Type Type
	// Ne is the shape in ggml order: Ne[0] is the row length.
	Ne [4]int64
}

// Rule sends every tensor whose name matches Pattern (anywhere in the
// name) to Type, instead of the policy's target.
type Rule struct {
	Pattern *regexp.Regexp
	Type    Type
}

// String writes the rule back as "REGEX=TYPE".
func (r Rule) String() string { return r.Pattern.String() + "=" + r.Type.String() }

// ErrBadRules is matched (errors.Is) by every error of ParseRules.
var ErrBadRules = errors.New("quantize: bad --rules")

// ParseRules reads stable-diffusion.cpp's --tensor-type-rules syntax:
// comma-separated "regex=type" pairs, e.g.
//
//	first_stage_model\.=f16,attn[12]\.to_[qkv]=q8_0
//
// The regex is Go's (RE2), which agrees with the ECMAScript patterns such
// rules use in practice; it matches anywhere in the name. The last '=' of
// a pair separates the type, so a pattern may contain '='. Unlike
// stable-diffusion.cpp, which warns and ignores them, an unknown type, a
// bad regex or an empty pattern is an error. Empty input gives no rules.
func ParseRules(s string) ([]Rule, error) {
	var rules []Rule
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		eq := strings.LastIndexByte(item, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%w: %q is not regex=type", ErrBadRules, item)
		}
		pat, typ := item[:eq], strings.TrimSpace(item[eq+1:])
		if pat == "" {
			return nil, fmt.Errorf("%w: %q has an empty pattern", ErrBadRules, item)
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("%w: pattern %q: %v", ErrBadRules, pat, err)
		}
		t, err := ParseType(typ)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadRules, item, err)
		}
		rules = append(rules, Rule{Pattern: re, Type: t})
	}
	return rules, nil
}

// Policy chooses each tensor's output type the way stable-diffusion.cpp's
// converter does (its model_loader tensor_should_be_converted), so that the file it writes stays
// loadable there.
type Policy struct {
	// Target is the type asked for (the TYPE of `sd-go quantize`).
	Target Type
	// Rules override Target for matching names; the first match wins.
	Rules []Rule
}

// Reason says why Choose picked a type.
type Reason string

// The reasons.
const (
	ReasonConverted   Reason = "converted"          // went to the target or a rule's type
	ReasonSameType    Reason = "already that type"  // the target is its current type
	ReasonNotFloat    Reason = "not a float tensor" // integers are never converted
	ReasonRowLength   Reason = "row length not a multiple of the block size"
	ReasonBiasScale   Reason = "bias or scale"
	ReasonEmbedding   Reason = "embedding or input/time projection"
	ReasonUnsupported Reason = "no GGUF type (dropped)"
)

// Names containing one of these stay in their source type: time/class
// embedding MLPs, token/position embeddings, and the input/output
// projections of Flux and MMDiT models (stable-diffusion.cpp's list).
var keepSubstrings = []string{
	"img_in.", "txt_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer.",
	"x_embedder.", "t_embedder.", "y_embedder.", "pos_embed", "context_embedder.",
	"time_embed.", "label_emb.", "embedding",
}

// Drop is the Choose result for tensors GGUF cannot store.
const Drop Type = -1

// Choose returns the output type for t and why. The steps are
// stable-diffusion.cpp's:
//  1. the wanted type is the first matching rule's, else Target;
//  2. it is kept from a tensor whose row length (Ne[0]) is not a multiple
//     of the wanted type's block size;
//  3. names ending in ".bias", ".scale" or ".weight_scale" keep their type;
//  4. embeddings and input/time projections (keepSubstrings) keep theirs;
//  5. everything else becomes the wanted type.
//
// There is no rule for 1-D tensors, norms or the VAE: a GroupNorm weight of
// 320 elements is quantized like any matrix (use Rules to keep a part of the
// model wider). Tensors that are not floating point (integers) keep their
// type, and a tensor with no GGUF type (Type == Drop) is dropped.
func (p Policy) Choose(t Tensor) (Type, Reason) {
	if t.Type == Drop {
		return Drop, ReasonUnsupported
	}
	if !isFloatOrBlock(t.Type) {
		return t.Type, ReasonNotFloat
	}
	want := p.Target
	for _, r := range p.Rules {
		if r.Pattern.MatchString(t.Name) {
			want = r.Type
			break
		}
	}
	if want == t.Type {
		return t.Type, ReasonSameType
	}
	if bs := int64(want.BlockSize()); bs > 1 && t.Ne[0]%bs != 0 {
		return t.Type, ReasonRowLength
	}
	for _, suf := range []string{".bias", ".scale", ".weight_scale"} {
		if strings.HasSuffix(t.Name, suf) {
			return t.Type, ReasonBiasScale
		}
	}
	for _, s := range keepSubstrings {
		if strings.Contains(t.Name, s) {
			return t.Type, ReasonEmbedding
		}
	}
	return want, ReasonConverted
}

// Validate checks that Target and every rule's type are types this package
// converts to.
func (p Policy) Validate() error {
	if _, ok := types[p.Target]; !ok {
		return fmt.Errorf("quantize: unknown target type %v", p.Target)
	}
	for _, r := range p.Rules {
		if _, ok := types[r.Type]; !ok {
			return fmt.Errorf("%w: rule %v has an unknown type", ErrBadRules, r)
		}
	}
	return nil
}

// Extra ggml type names for display (ids with no constant here).
var otherNames = map[Type]string{
	9: "q8_1", 10: "q2_K", 11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K", 15: "q8_K",
	24: "i8", 25: "i16", 26: "i32", 27: "i64", 28: "f64",
}

// Name is ggml's name for any type id ("i32", "q4_K", "f16"), or "type(N)".
func (t Type) Name() string {
	if _, ok := types[t]; ok {
		return t.String()
	}
	if n, ok := otherNames[t]; ok {
		return n
	}
	if t == Drop {
		return "dropped"
	}
	return t.String()
}

// isFloatOrBlock reports whether t holds real numbers the engine can
// re-encode: f32, f16, bf16 and the ggml block types.
func isFloatOrBlock(t Type) bool {
	if _, ok := types[t]; ok {
		return true
	}
	switch t {
	case 9, 10, 11, 12, 13, 14, 15: // q8_1 and the k-quants
		return true
	}
	return false
}

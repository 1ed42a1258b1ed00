package quantize

import (
	"errors"
	"testing"
)

func ne(dims ...int64) [4]int64 {
	out := [4]int64{1, 1, 1, 1}
	copy(out[:], dims)
	return out
}

// The default policy reproduces stable-diffusion.cpp's rules (its model_loader tensor_should_be_converted).
func TestChooseDefaultRules(t *testing.T) {
	const i32 Type = 26
	for _, tc := range []struct {
		name   string
		typ    Type
		ne     [4]int64
		target Type
		want   Type
		why    Reason
	}{
		// Linear weights with rows a multiple of 32 are quantized.
		{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", F16, ne(320, 320), Q8_0, Q8_0, ReasonConverted},
		{"cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", F32, ne(768, 3072), Q4_0, Q4_0, ReasonConverted},
		// Norm weights are quantized too when their length divides (no 1-D rule).
		{"model.diffusion_model.out.0.weight", F32, ne(320), Q4_1, Q4_1, ReasonConverted},
		{"first_stage_model.decoder.norm_out.weight", F32, ne(128), Q5_0, Q5_0, ReasonConverted},
		// ...but biases never.
		{"model.diffusion_model.out.0.bias", F32, ne(320), Q8_0, F32, ReasonBiasScale},
		{"first_stage_model.decoder.up.0.block.0.conv1.bias", F16, ne(128), F16, F16, ReasonSameType},
		{"x.scale", F32, ne(64), Q8_0, F32, ReasonBiasScale},
		{"x.weight_scale", F32, ne(64), F16, F32, ReasonBiasScale},
		// Conv kernels escape through the row length (kernel width 3 or 1).
		{"model.diffusion_model.input_blocks.0.0.weight", F16, ne(3, 3, 4, 320), Q4_0, F16, ReasonRowLength},
		{"first_stage_model.decoder.up.1.block.0.nin_shortcut.weight", F32, ne(1, 1, 256, 128), Q8_0, F32, ReasonRowLength},
		// The VAE's mid-block attention weights are 1x1 convolutions in sd.cpp's shape.
		{"first_stage_model.decoder.mid.attn_1.q.weight", F32, ne(1, 1, 512, 512), Q8_0, F32, ReasonRowLength},
		// ...but not when the target is a float type (block size 1).
		{"model.diffusion_model.input_blocks.0.0.weight", F32, ne(3, 3, 4, 320), F16, F16, ReasonConverted},
		// Rows not a multiple of 32 (CLIP's 77 positions are ne[1]; 1024+... fine; 48 is not).
		{"model.diffusion_model.some.weight", F16, ne(48, 64), Q8_0, F16, ReasonRowLength},
		// Time/class embedding MLPs and token/position embeddings are kept.
		{"model.diffusion_model.time_embed.0.weight", F16, ne(320, 1280), Q4_0, F16, ReasonEmbedding},
		{"model.diffusion_model.label_emb.0.0.weight", F16, ne(2816, 1280), Q8_0, F16, ReasonEmbedding},
		{"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", F16, ne(768, 49408), Q8_0, F16, ReasonEmbedding},
		{"cond_stage_model.transformer.text_model.embeddings.position_embedding.weight", F32, ne(768, 77), Q8_0, F32, ReasonEmbedding},
		{"model.diffusion_model.double_blocks.0.img_in.weight", BF16, ne(64, 3072), Q8_0, BF16, ReasonEmbedding},
		{"model.diffusion_model.final_layer.linear.weight", BF16, ne(3072, 64), Q8_0, BF16, ReasonEmbedding},
		{"model.diffusion_model.pos_embed", F32, ne(1536, 36864), Q8_0, F32, ReasonEmbedding},
		// bf16 to f16, f32 to bf16: plain float conversions follow the same rules.
		{"model.diffusion_model.input_blocks.1.0.in_layers.2.weight", BF16, ne(3, 3, 320, 320), F16, F16, ReasonConverted},
		{"model.diffusion_model.middle_block.1.proj_in.weight", F32, ne(1280, 1280), BF16, BF16, ReasonConverted},
		// Integers are never converted; unknown stored types are dropped.
		{"cond_stage_model.transformer.text_model.embeddings.position_ids", i32, ne(77), Q8_0, i32, ReasonNotFloat},
		{"weird.u8", Drop, ne(3), Q8_0, Drop, ReasonUnsupported},
		// Already-quantized sources are re-encoded like any float tensor.
		{"model.diffusion_model.out.2.weight", Q8_0, ne(320, 4), Q4_0, Q4_0, ReasonConverted},
		{"model.diffusion_model.out.2.weight", Q8_0, ne(320, 4), Q8_0, Q8_0, ReasonSameType},
	} {
		got, why := Policy{Target: tc.target}.Choose(Tensor{Name: tc.name, Type: tc.typ, Ne: tc.ne})
		if got != tc.want || why != tc.why {
			t.Errorf("%s (%v %v) -> %v: got %v (%s), want %v (%s)", tc.name, tc.typ.Name(), tc.ne, tc.target, got.Name(), why, tc.want.Name(), tc.why)
		}
	}
}

func TestRulesOverride(t *testing.T) {
	rules, err := ParseRules(`first_stage_model\.=f16, attn[12]\.to_[qkv]=q8_0 ,^cond_stage_model=f32`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || rules[0].Type != F16 || rules[1].Type != Q8_0 || rules[2].Type != F32 {
		t.Fatalf("parsed %v", rules)
	}
	p := Policy{Target: Q4_0, Rules: rules}
	for _, tc := range []struct {
		name string
		typ  Type
		ne   [4]int64
		want Type
	}{
		{"first_stage_model.decoder.mid.attn_1.q.weight", F32, ne(512, 512), F16},                                  // rule 1
		{"first_stage_model.decoder.mid.attn_1.q.bias", F32, ne(512), F32},                                         // bias kept even under a rule
		{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", F16, ne(768, 320), Q8_0}, // rule 2
		{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.2.weight", F16, ne(1280, 320), Q4_0},  // no rule: target
		{"cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", F16, ne(768, 3072), F32},       // rule 3
		// A rule's block type still needs whole blocks in a row.
		{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", F16, ne(40, 40), F16},
	} {
		if got, why := p.Choose(Tensor{Name: tc.name, Type: tc.typ, Ne: tc.ne}); got != tc.want {
			t.Errorf("%s: got %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
	// The first matching rule wins.
	rules, _ = ParseRules(`attn=f16,attn1=q8_0`)
	if got, _ := (Policy{Target: Q4_0, Rules: rules}).Choose(Tensor{Name: "a.attn1.w", Type: F32, Ne: ne(64, 64)}); got != F16 {
		t.Errorf("first rule should win, got %v", got)
	}
	// A pattern may contain '=' and ','-free quantifiers.
	rules, err = ParseRules(`a=b{2}=q5_1`)
	if err != nil || len(rules) != 1 || rules[0].Pattern.String() != "a=b{2}" || rules[0].Type != Q5_1 {
		t.Errorf("got %v, %v", rules, err)
	}
	if rules, err := ParseRules("  "); err != nil || rules != nil {
		t.Errorf("empty rules: %v, %v", rules, err)
	}
}

func TestBadRules(t *testing.T) {
	for _, s := range []string{
		`vae(=f16`,         // bad regex
		`first_stage=q9_9`, // unknown type
		`first_stage=q4_K`, // not a type this engine converts to yet
		`no-equals-sign`,
		`=f16`,
	} {
		if _, err := ParseRules(s); err == nil || !errors.Is(err, ErrBadRules) {
			t.Errorf("%q: err %v, want ErrBadRules", s, err)
		}
	}
	if err := (Policy{Target: Type(99)}).Validate(); err == nil {
		t.Error("unknown target type accepted")
	}
	if err := (Policy{Target: Q8_0}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestTypeNames(t *testing.T) {
	for ty, want := range map[Type]string{F16: "f16", Q4_1: "q4_1", 26: "i32", 12: "q4_K", 28: "f64", Drop: "dropped", 77: "type(77)"} {
		if got := ty.Name(); got != want {
			t.Errorf("%d: %q want %q", int32(ty), got, want)
		}
	}
}

package binding

import (
	"context"
	"testing"
)

// BenchmarkGenerateTiny measures the whole txt2img path through the C ABI
// (tokenizer, text encoder, 8 sampler steps with CFG, VAE decode, RGB8
// copy-out) on the tiny test model, so it shows per-call overhead rather
// than kernel speed; csrc/bench and `sd-go run -v` on a full-size model
// measure that.
func BenchmarkGenerateTiny(b *testing.B) {
	m := loadTiny(b, tinyModel)
	req := Request{Prompt: "a photo of a cat", NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 8, Seed: 1}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Generate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*req.Steps)/b.Elapsed().Seconds(), "steps/s")
}

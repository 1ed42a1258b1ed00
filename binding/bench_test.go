package binding

import (
	"context"
	"sync"
	"testing"
	"time"
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

// BenchmarkTwoSessions runs two different tiny generations one after the
// other and then at once, on a model loaded with Sessions: 2 and one thread
// per session, and reports the concurrent wall time as a share of the
// serial one ("concurrent/serial": 0.5 is perfect overlap on two cores, 1.0
// none).
func BenchmarkTwoSessions(b *testing.B) {
	lib := loadLib(b)
	m, err := lib.LoadModel(tinyModel, ModelOptions{Threads: 1, Sessions: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	reqs := twoRequests()
	ctx := context.Background()
	var serial, together time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for _, r := range reqs {
			if _, err := m.Generate(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		serial += time.Since(start)
		start = time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range reqs {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				_, errs[j] = m.Generate(ctx, reqs[j])
			}(j)
		}
		wg.Wait()
		together += time.Since(start)
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
	}
	b.ReportMetric(float64(together)/float64(serial), "concurrent/serial")
}

package quantize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sd-go-project/sd-go/binding"
	"github.com/sd-go-project/sd-go/quantize"
)

// Quantize the tiny test model to q8_0, keeping the VAE at f16.
func ExampleFile() {
	lib, err := binding.Load(binding.LoadOptions{}) // SDGO_LIBRARY, beside the binary, or the build folder
	if err != nil {
		fmt.Println(err)
		return
	}
	rules, err := quantize.ParseRules(`first_stage_model\.=f16`)
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "sdgo-example")
	defer os.RemoveAll(dir)
	sum, err := quantize.File(context.Background(), lib,
		filepath.Join("..", "testdata", "pipeline", "tiny_sd1"), // any format sd-go reads
		filepath.Join(dir, "tiny-q8_0.gguf"),
		quantize.Q8_0, quantize.Options{Rules: rules})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d tensors, %d converted\n", sum.Tensors, sum.Converted)
	for _, t := range []quantize.Type{quantize.F32, quantize.F16, quantize.Q8_0} {
		fmt.Printf("%s: %d\n", t, sum.ByType[t])
	}
	// Output:
	// 396 tensors, 133 converted
	// f32: 263
	// f16: 76
	// q8_0: 57
}

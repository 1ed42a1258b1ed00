package binding_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"log"
	"path/filepath"

	"github.com/sd-go-project/sd-go/binding"
)

// Loading a model and generating an image from a prompt (txt2img). The
// model here is the tiny random-weight test pipeline, so the picture is
// noise; any SD 1.x/2.x checkpoint or diffusers folder works the same way.
func ExampleModel_Generate() {
	lib, err := binding.Load(binding.LoadOptions{}) // $SDGO_LIBRARY, beside the executable, or build/lib
	if err != nil {
		log.Fatal(err)
	}
	model, err := lib.LoadModel(filepath.Join("..", "testdata", "pipeline", "tiny_sd1"), binding.ModelOptions{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()

	res, err := model.Generate(context.Background(), binding.Request{
		Prompt:         "a photo of a cat",
		NegativePrompt: "blurry",
		Width:          32, Height: 32,
		Steps:      4,
		Seed:       42,
		BatchCount: 2,
	})
	if err != nil {
		log.Fatal(err)
	}
	for i, img := range res.Images {
		fmt.Printf("image %d: %dx%d, seed %d\n", i+1, img.Bounds().Dx(), img.Bounds().Dy(), res.Seeds[i])
	}
	fmt.Println("sampler:", res.Params.Sampler, "cfg scale:", res.Params.CFGScale)
	// Output:
	// image 1: 32x32, seed 42
	// image 2: 32x32, seed 43
	// sampler: euler_a cfg scale: 7
}

// img2img: start from an image instead of noise; Strength says how much of
// it is redrawn. Adding a Mask (white = redraw) makes it inpainting.
func ExampleModel_Generate_img2img() {
	lib, err := binding.Load(binding.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	model, err := lib.LoadModel(filepath.Join("..", "testdata", "pipeline", "tiny_sd1"), binding.ModelOptions{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()

	init := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			init.Set(x, y, color.RGBA{uint8(8 * x), uint8(8 * y), 128, 255})
		}
	}
	var steps int
	res, err := model.Generate(context.Background(), binding.Request{
		Prompt: "a watercolor painting",
		Width:  32, Height: 32,
		Steps:     10,
		Strength:  0.5,
		InitImage: init,
		Progress: func(p binding.Progress) {
			if p.Phase == binding.PhaseSample {
				steps = p.Total
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d image, %d of 10 steps run at strength 0.5\n", len(res.Images), steps)
	// Output:
	// 1 image, 6 of 10 steps run at strength 0.5
}

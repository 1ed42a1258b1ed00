package main

import (
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var modelsDir = filepath.Join("..", "..", "testdata", "models")

func TestInfoDescribesModels(t *testing.T) {
	cases := []struct {
		path, family, variant string
		want                  []string
	}{
		{"sd1_ldm.safetensors", "sd1", "base", []string{"format:      safetensors", "unet", "vae", "text_encoder", "f16 ", "modelspec.title = tiny sd1"}},
		{"sd1_ldm.ckpt", "sd1", "base", []string{"torch-zip", "global_step = 470000"}},
		{"sd1_sdcpp.gguf", "sd1", "base", []string{"gguf", "q8_0 "}},
		{"sd1_diffusers", "sd1", "base", []string{"diffusers"}},
		{"sdxl_ldm.safetensors", "sdxl", "base", []string{"text_encoder_2"}},
		{"sd1_inpaint.safetensors", "sd1", "inpaint", nil},
		{"sdxl_refiner_ldm.safetensors", "sdxl-refiner", "base", nil},
		{"vae_ldm.pt", "vae", "base", nil},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, "info", filepath.Join(modelsDir, c.path))
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", c.path, code, errs)
			continue
		}
		if !strings.Contains(out, "family:      "+c.family+" ("+c.variant+")") {
			t.Errorf("%s: wrong family:\n%s", c.path, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.path, w, out)
			}
		}
	}
}

func TestInfoJSON(t *testing.T) {
	code, out, errs := runCLI(t, "info", filepath.Join(modelsDir, "sd2_ldm.safetensors"), "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v struct {
		Family     string   `json:"family"`
		Components []string `json:"components"`
		Types      map[string]struct {
			Tensors int `json:"tensors"`
		} `json:"types"`
		UNet struct {
			UseLinear bool `json:"use_linear_projection"`
			Context   int  `json:"context_dim"`
		} `json:"unet"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if v.Family != "sd2" || len(v.Components) != 3 || !v.UNet.UseLinear || v.UNet.Context != 24 || v.Types["f16"].Tensors == 0 {
		t.Errorf("unexpected report: %+v", v)
	}
	// several paths are one model: a UNet-only folder plus a VAE file
	code, out, errs = runCLI(t, "info", "--json", filepath.Join(modelsDir, "unet_sharded"), filepath.Join(modelsDir, "vae_ldm.pt"))
	if code != exitOK || !strings.Contains(out, `"vae"`) || !strings.Contains(out, `"unet"`) {
		t.Errorf("exit %d: %s %s", code, out, errs)
	}
}

func TestInfoBadInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(junk, []byte("\xff\xff\xff\xff\x00\x00\x00\x00{}"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"info"}, exitUsage, "at least one MODEL"},
		{[]string{"info", "--bogus", "x"}, exitUsage, "-bogus"},
		{[]string{"info", "x", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"info", filepath.Join(dir, "missing.gguf")}, exitFailure, "cannot open"},
		{[]string{"info", junk}, exitFailure, "header length"},
		{[]string{"info", empty}, exitFailure, "no model found"},
		{[]string{"info", filepath.Join(modelsDir, "evil_os_system.ckpt")}, exitFailure, "forbidden global posix.system"},
		{[]string{"info", filepath.Join(modelsDir, "evil_eval.pt")}, exitFailure, "forbidden global __builtin__.eval"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q lacks %q", c.args, code, c.code, errs, c.msg)
		}
	}
}

// writeImage encodes img (PNG or JPEG by the extension, with params) to path.
func writeImage(path string, img image.Image, params string) error {
	data, err := encodeImage(path, img, params)
	if err != nil {
		return err
	}
	return writeAllOrNothing([]string{path}, [][]byte{data})
}

func TestInfoPrintsImageParameters(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	params := "a cat, (fluffy:1.2)\nNegative prompt: blurry\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 8x8"
	dir := t.TempDir()
	for _, name := range []string{"a.png", "a.jpg"} {
		path := filepath.Join(dir, name)
		if err := writeImage(path, img, params); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI(t, "info", path)
		if code != exitOK || strings.TrimSpace(out) != params {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want the parameters", name, code, out, errs)
		}
		code, out, _ = runCLI(t, "info", path, "--json")
		var v struct{ Parameters string }
		if code != exitOK || json.Unmarshal([]byte(out), &v) != nil || v.Parameters != params {
			t.Fatalf("%s --json: exit %d, %q", name, code, out)
		}
	}
	// An image without parameters is a runtime failure, not a model error.
	bare := filepath.Join(dir, "bare.png")
	if err := writeImage(bare, img, ""); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "info", bare)
	if code != exitFailure || !strings.Contains(errs, "no generation parameters") {
		t.Fatalf("bare image: exit %d, stderr %q", code, errs)
	}
}

package binding

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var testModels = filepath.Join("..", "testdata", "models")

func TestFilesInfoDescribesModels(t *testing.T) {
	lib := loadLib(t)
	info, err := lib.FilesInfo(filepath.Join(testModels, "sdxl_ldm.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Family != "sdxl" || info.Variant != "base" || info.Prediction != "epsilon" || info.Source != "safetensors" {
		t.Errorf("got %s/%s/%s/%s", info.Family, info.Variant, info.Prediction, info.Source)
	}
	if len(info.Components) != 4 || info.Parameters["unet"].Params == 0 || info.Types["f16"].Tensors != uint64(info.TensorCount) {
		t.Errorf("components %v, parameters %v, types %v", info.Components, info.Parameters, info.Types)
	}
	if string(info.UNet["adm_in_channels"]) != "40" || string(info.TextEncoder2["projection_dim"]) != "24" {
		t.Errorf("unet %v, te2 %v", info.UNet, info.TextEncoder2)
	}
	// a folder plus a separate file describe one model
	info, err = lib.FilesInfo(filepath.Join(testModels, "unet_sharded"), filepath.Join(testModels, "vae_ldm.pt"))
	if err != nil || len(info.Components) != 2 || info.Family != "sd1" {
		t.Fatalf("combined: %v %+v", err, info)
	}
}

func TestFilesInfoRefusesHostileFiles(t *testing.T) {
	lib := loadLib(t)
	_, err := lib.FilesInfo(filepath.Join(testModels, "evil_eval.pt"))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "forbidden global __builtin__.eval") {
		t.Errorf("evil_eval.pt: %v", err)
	}
	_, err = lib.FilesInfo(filepath.Join(testModels, "nope.gguf"))
	if !errors.Is(err, ErrIO) {
		t.Errorf("missing file: %v", err)
	}
	if _, err = lib.FilesInfo(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no paths: %v", err)
	}
	// safe from many goroutines at once (no handle)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if info, err := lib.FilesInfo(filepath.Join(testModels, "sd1_sdcpp.gguf")); err != nil || info.Family != "sd1" {
				t.Errorf("concurrent: %v", err)
			}
		}()
	}
	wg.Wait()
}

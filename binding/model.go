package binding

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
)

// ModelOptions configures LoadModel. The zero value loads the model as
// stored, with the cuda RNG and one thread per physical core.
type ModelOptions struct {
	// VAE is a VAE file that replaces the model's own ("" keeps it).
	VAE string
	// WeightType converts weights at load: "" keeps the stored types, "f32"
	// converts everything to f32; "f16", "bf16", "q8_0", "q5_0", "q5_1",
	// "q4_0" and "q4_1" convert the tensors stable-diffusion.cpp's converter
	// would (not biases, embeddings, the time embedding, or rows that are not
	// whole blocks), in memory. Other ggml types give ErrUnsupported.
	WeightType string
	// RNG is the default noise generator of requests: "cuda" (A1111's GPU
	// seeds; the default) or "cpu" (torch's CPU generator, as diffusers).
	RNG string
	// Prediction overrides what the model predicts: "epsilon" or "v" (SD
	// 2.x 768-v checkpoints, which carry no marker, need "v"). "" detects it.
	Prediction string
	// Threads is the number of worker threads; <= 0 means physical cores.
	Threads int
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Family           string `json:"family"`     // "sd1", "sd2"
	Variant          string `json:"variant"`    // "base", "inpaint", ...
	Prediction       string `json:"prediction"` // "epsilon", "v"
	Source           string `json:"source"`     // "safetensors", "diffusers", ...
	UNetInChannels   int    `json:"unet_in_channels"`
	LatentChannels   int    `json:"latent_channels"`
	VAEDownscale     int    `json:"vae_downscale"`
	Granularity      int    `json:"granularity"` // width and height must be multiples of this
	TextMaxPositions int    `json:"text_max_positions"`
}

// Model is a loaded Stable Diffusion model with its own worker threads.
//
// Concurrency: a Model may be used from several goroutines; Generate calls
// on one Model run one at a time (a second call waits for the first).
// Close waits for a running Generate to finish.
type Model struct {
	lib  *Library
	mu   sync.Mutex
	h    uintptr
	info ModelInfo
	path string
}

// LoadModel loads a checkpoint file (.safetensors, .gguf, .ckpt, ...) or a
// diffusers folder.
func (l *Library) LoadModel(path string, opts ModelOptions) (*Model, error) {
	var h uintptr
	errBuf := make([]byte, 1024)
	rc := l.fn.modelLoad(path, opts.VAE, opts.WeightType, opts.RNG, opts.Prediction, int32(opts.Threads), &h, errBuf,
		uintptr(len(errBuf)))
	if rc != 0 {
		return nil, &Error{Op: "load model", Status: Status(rc), Msg: cString(errBuf)}
	}
	m := &Model{lib: l, h: h, path: path}
	buf := make([]byte, 1024)
	var needed uintptr
	if rc := l.fn.modelInfo(h, buf, uintptr(len(buf)), &needed); rc != 0 {
		msg := l.fn.modelError(h)
		l.fn.modelFree(h)
		return nil, &Error{Op: "model info", Status: Status(rc), Msg: msg}
	}
	if err := json.Unmarshal([]byte(cString(buf)), &m.info); err != nil {
		l.fn.modelFree(h)
		return nil, fmt.Errorf("sdgo: model info: %w", err)
	}
	runtime.SetFinalizer(m, func(m *Model) { _ = m.Close() })
	return m, nil
}

// Info describes the model.
func (m *Model) Info() ModelInfo { return m.info }

// Path is the file or folder the model was loaded from.
func (m *Model) Path() string { return m.path }

// Close frees the model. It is safe to call more than once.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != 0 {
		m.lib.fn.modelFree(m.h)
		m.h = 0
	}
	return nil
}

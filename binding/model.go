package binding

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// ModelOptions configures LoadModel. The zero value loads the model as
// stored onto the CPU, with the cuda RNG, one session and one thread per
// physical core.
type ModelOptions struct {
	// VAE is a VAE file that replaces the model's own ("" keeps it).
	VAE string
	// WeightType "" keeps the stored types; "f32" converts every weight to
	// f32 at load. Quantized types come as a WeightPlan (package quantize
	// computes one from its policy, the same plan "sd-go quantize" writes).
	WeightType string
	// WeightPlan converts the named tensors at load (canonical names, as
	// QuantizeSource.Tensors lists them), with the same code that writes a
	// quantized file: the weights equal that file's.
	WeightPlan []TensorType
	// VAEWeightPlan is the same for the tensors of the VAE file.
	VAEWeightPlan []TensorType
	// Refiner is an SDXL refiner (file or folder) loaded beside an SDXL
	// base, on the same device, for two-stage generation: requests hand the
	// end of the schedule to it (Request.RefinerSwitch). RefinerWeightPlan
	// converts its tensors at load.
	Refiner           string
	RefinerWeightPlan []TensorType
	// RNG is the default noise generator of requests: "cuda" (A1111's GPU
	// seeds; the default) or "cpu" (torch's CPU generator, as diffusers).
	RNG string
	// Prediction overrides what the model predicts: "epsilon" or "v" (SD
	// 2.x 768-v checkpoints, which carry no marker, need "v"). "" detects it.
	Prediction string
	// Backend is "cpu" (the default, also for ""), "auto" (the first
	// discrete GPU, then an integrated one, then the CPU; a GPU that runs
	// out of memory or fails while loading is logged and the CPU used
	// instead) or a backend SystemInfo lists, which never falls back.
	// Device picks a device of that backend (0 first).
	Backend string
	Device  int
	// Threads is the number of worker threads of each session; <= 0 means
	// one per physical core.
	Threads int
	// Sessions is how many generations Model.Generate runs at once, each on
	// its own session (its own backend, threads and memory; the weights are
	// shared). <= 0 means 1.
	Sessions int
	// CodePath forces a CPU code path ("avx512", "avx2", "neon", "scalar");
	// "" means the best one (or SDGO_CODE_PATH if set).
	CodePath string
}

// TensorType names a tensor and the ggml type ("f16", "q4_0", ...) it is
// converted to at load.
type TensorType struct {
	Name string
	Type string
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
	Backend          string `json:"backend"`        // the backend the weights live on ("cpu", ...)
	Device           string `json:"device"`         // its device's name
	WeightBytes      uint64 `json:"weight_bytes"`   // the weights as the engine holds them (the refiner's included)
	RefinerFamily    string `json:"refiner_family"` // the refiner's family; "" without one
}

// Load option keys (enum sdgo_model_option_key in sdgo.h).
const (
	optPath          = 0
	optVAE           = 1
	optWeightType    = 2
	optRNG           = 3
	optPrediction    = 4
	optBackend       = 5
	optCodePath      = 6
	optWeightPlan    = 7
	optVAEWeightPlan = 8
	optRefiner       = 9
	optRefinerPlan   = 10
	optDevice        = 32
	optThreads       = 33
)

// Model is a loaded Stable Diffusion model. It never changes after load.
//
// Concurrency: all methods may be called from several goroutines. Generate
// runs up to ModelOptions.Sessions requests at once, each on its own
// session; further calls wait for a free one (or for their context).
// Sessions from NewSession run alongside those. Close waits for running
// Generate calls to finish; calls that are waiting for a session then fail
// with ErrClosed.
type Model struct {
	lib     *Library
	info    ModelInfo
	path    string
	threads int
	rng     string // the RNG requests default to ("" = the engine's)

	mu       sync.Mutex
	h        uintptr // sdgo_model*; 0 once closed
	closed   chan struct{}
	running  sync.WaitGroup
	idle     chan *Session // free sessions of the pool
	tokens   chan struct{} // one per pool slot not yet backed by a session
	sessions []*Session    // every pool session, for Close
}

// LoadModel loads a checkpoint file (.safetensors, .gguf, .ckpt, ...) or a
// diffusers folder.
func (l *Library) LoadModel(path string, opts ModelOptions) (*Model, error) {
	f := &l.fn
	o := f.modelOptionsNew()
	if o == 0 {
		return nil, ErrOutOfMemory
	}
	defer f.modelOptionsFree(o)
	strs := []struct {
		key  int32
		name string
		v    string
	}{
		{optPath, "path", path}, {optVAE, "VAE", opts.VAE}, {optWeightType, "weight type", opts.WeightType},
		{optRNG, "RNG", opts.RNG}, {optPrediction, "prediction", opts.Prediction},
		{optBackend, "backend", opts.Backend}, {optCodePath, "code path", opts.CodePath},
		{optWeightPlan, "weight plan", planText(opts.WeightPlan)},
		{optVAEWeightPlan, "VAE weight plan", planText(opts.VAEWeightPlan)},
		{optRefiner, "refiner", opts.Refiner}, {optRefinerPlan, "refiner weight plan", planText(opts.RefinerWeightPlan)},
	}
	for _, s := range strs {
		if s.v == "" {
			continue
		}
		if strings.IndexByte(s.v, 0) >= 0 {
			return nil, &Error{Op: "load model", Status: StatusInvalidArgument, Msg: s.name + " contains a NUL byte"}
		}
		if rc := f.modelOptionsSetStr(o, s.key, s.v); rc != 0 {
			return nil, &Error{Op: "load model", Status: Status(rc), Msg: f.modelOptionsError(o)}
		}
	}
	for _, s := range []struct {
		key int32
		v   int64
	}{{optDevice, int64(opts.Device)}, {optThreads, int64(opts.Threads)}} {
		if rc := f.modelOptionsSetI64(o, s.key, s.v); rc != 0 {
			return nil, &Error{Op: "load model", Status: Status(rc), Msg: f.modelOptionsError(o)}
		}
	}
	if path == "" {
		return nil, &Error{Op: "load model", Status: StatusInvalidArgument, Msg: "no model path given"}
	}

	var h uintptr
	errBuf := make([]byte, 1024)
	if rc := f.modelLoad(o, &h, errBuf, uintptr(len(errBuf))); rc != 0 {
		return nil, &Error{Op: "load model", Status: Status(rc), Msg: cString(errBuf)}
	}
	m := &Model{lib: l, h: h, path: path, threads: opts.Threads, rng: opts.RNG, closed: make(chan struct{})}
	js, err := readJSON("model info", func(buf []byte, needed *uintptr) int32 {
		return f.modelInfo(h, buf, uintptr(len(buf)), needed)
	}, func() string { return f.modelError(h) })
	if err == nil {
		if e := json.Unmarshal(js, &m.info); e != nil {
			err = fmt.Errorf("sdgo: model info: %w", e)
		}
	}
	if err != nil {
		f.modelFree(h)
		return nil, err
	}
	n := opts.Sessions
	if n <= 0 {
		n = 1
	}
	m.idle = make(chan *Session, n)
	m.tokens = make(chan struct{}, n)
	for i := 0; i < n; i++ {
		m.tokens <- struct{}{}
	}
	runtime.SetFinalizer(m, func(m *Model) { _ = m.Close() })
	return m, nil
}

// planText renders a plan as the engine reads it: one NAME=TYPE per line.
func planText(plan []TensorType) string {
	var b strings.Builder
	for _, e := range plan {
		b.WriteString(e.Name)
		b.WriteByte('=')
		b.WriteString(e.Type)
		b.WriteByte('\n')
	}
	return b.String()
}

// readJSON calls a copy-out C function, growing the buffer once when it
// reports the size it needs.
func readJSON(op string, call func(buf []byte, needed *uintptr) int32, msg func() string) ([]byte, error) {
	buf := make([]byte, 4096)
	for try := 0; ; try++ {
		var need uintptr
		rc := call(buf, &need)
		if Status(rc) == StatusBufferTooSmall && need > uintptr(len(buf)) && try == 0 && need <= 1<<24 {
			buf = make([]byte, need)
			continue
		}
		if rc != 0 {
			return nil, &Error{Op: op, Status: Status(rc), Msg: msg()}
		}
		return []byte(cString(buf)), nil
	}
}

// Info describes the model.
func (m *Model) Info() ModelInfo { return m.info }

// Path is the file or folder the model was loaded from.
func (m *Model) Path() string { return m.path }

// Generate runs one request on a session of the model's pool (see
// ModelOptions.Sessions), waiting for a free one if all are busy. Canceling
// ctx stops the generation within one sampler step (or one part of the VAE
// decode); the error then matches ErrCanceled and ctx.Err(). The model
// stays usable.
func (m *Model) Generate(ctx context.Context, req Request) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.h == 0 {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.running.Add(1)
	m.mu.Unlock()
	defer m.running.Done()

	s, err := m.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { m.idle <- s }()
	return s.Generate(ctx, req)
}

// acquire takes an idle pool session, creates one while the pool has room,
// or waits.
func (m *Model) acquire(ctx context.Context) (*Session, error) {
	for {
		select {
		case s := <-m.idle:
			return s, nil
		default:
		}
		select {
		case s := <-m.idle:
			return s, nil
		case <-m.tokens:
			s, err := m.NewSession(m.threads)
			if err != nil {
				m.tokens <- struct{}{}
				return nil, err
			}
			m.mu.Lock()
			m.sessions = append(m.sessions, s)
			m.mu.Unlock()
			return s, nil
		case <-m.closed:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// NewSession creates a session of its own on the model, with threads
// worker threads (<= 0: ModelOptions.Threads). Most callers use
// Model.Generate instead, which manages sessions. The session keeps the
// engine's model alive until it is closed, even after Model.Close.
func (m *Model) NewSession(threads int) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == 0 {
		return nil, ErrClosed
	}
	var h uintptr
	errBuf := make([]byte, 1024)
	if rc := m.lib.fn.sessionNew(m.h, int32(threads), &h, errBuf, uintptr(len(errBuf))); rc != 0 {
		return nil, &Error{Op: "new session", Status: Status(rc), Msg: cString(errBuf)}
	}
	s := &Session{lib: m.lib, h: h, info: m.info, rng: m.rng}
	runtime.SetFinalizer(s, func(s *Session) { _ = s.Close() })
	return s, nil
}

// Close waits for running Generate calls, then frees the model and its
// pool of sessions. It is safe to call more than once.
func (m *Model) Close() error {
	m.mu.Lock()
	if m.h == 0 {
		m.mu.Unlock()
		return nil
	}
	h := m.h
	m.h = 0
	close(m.closed)
	m.mu.Unlock()
	m.running.Wait()
	m.mu.Lock()
	sessions := m.sessions
	m.sessions = nil
	m.mu.Unlock()
	for _, s := range sessions {
		_ = s.Close()
	}
	m.lib.fn.modelFree(h)
	return nil
}

package binding

import (
	"encoding/json"
	"sync"
)

// EngineOptions configures an Engine. The zero value picks defaults.
type EngineOptions struct {
	// Threads is the number of compute threads; 0 means one per physical
	// core.
	Threads int
	// CodePath forces a CPU code path ("avx512", "avx2", "neon", "scalar");
	// empty means the best one this CPU runs (or SDGO_CODE_PATH if set).
	CodePath string
}

// Engine is an engine context: a thread pool and a CPU code path that
// later work runs on. Its methods may be called from several goroutines;
// they run one at a time.
type Engine struct {
	lib *Library
	mu  sync.Mutex
	h   uintptr // sdgo_context*; 0 once closed
}

// NewEngine creates an engine context.
func (l *Library) NewEngine(opts EngineOptions) (*Engine, error) {
	if opts.Threads < 0 {
		return nil, &Error{Op: "new engine", Status: StatusInvalidArgument, Msg: "thread count must be >= 0"}
	}
	var h uintptr
	errBuf := make([]byte, 512)
	if rc := l.fn.contextNew(int32(opts.Threads), &h, errBuf, uintptr(len(errBuf))); rc != 0 {
		return nil, &Error{Op: "new engine", Status: Status(rc), Msg: cString(errBuf)}
	}
	e := &Engine{lib: l, h: h}
	if opts.CodePath != "" {
		if err := e.SetCodePath(opts.CodePath); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close releases the engine. It is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != 0 {
		e.lib.fn.contextFree(e.h)
		e.h = 0
	}
	return nil
}

// SetCodePath forces a CPU code path by name, or "auto" for the best.
func (e *Engine) SetCodePath(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == 0 {
		return ErrClosed
	}
	return e.check("set code path", e.lib.fn.contextSetCodePath(e.h, name))
}

// check turns a status into an error carrying the handle's message. It
// must be called with e.mu held, right after the failing call.
func (e *Engine) check(op string, rc int32) error {
	if rc == 0 {
		return nil
	}
	return &Error{Op: op, Status: Status(rc), Msg: e.lib.fn.contextError(e.h)}
}

// SystemInfo describes the machine and the engine's choices on it.
type SystemInfo struct {
	EngineVersion string   `json:"engine_version"`
	ABIVersion    int      `json:"abi_version"`
	Arch          string   `json:"arch"`
	CPUModel      string   `json:"cpu_model"`
	CPUFeatures   []string `json:"cpu_features"`
	CodePaths     []string `json:"code_paths"` // runnable here, best first
	CodePath      string   `json:"code_path"`  // the one in use
	Threads       int      `json:"threads"`
	PhysicalCores int      `json:"physical_cores"`
	LogicalCores  int      `json:"logical_cores"`
	// Backends lists the backends compiled into the engine and the devices
	// each one sees on this machine.
	Backends []BackendInfo `json:"backends"`
}

// BackendInfo is one compiled-in backend.
type BackendInfo struct {
	Name    string       `json:"name"` // "cpu", ...
	Devices []DeviceInfo `json:"devices"`
	// Note says why a compiled-in backend sees no devices ("" otherwise).
	Note string `json:"note"`
}

// DeviceInfo is one device of a backend.
type DeviceInfo struct {
	Index          int    `json:"index"` // ModelOptions.Device
	Name           string `json:"name"`
	Description    string `json:"description"`
	Type           string `json:"type"` // "cpu", "discrete-gpu", "integrated-gpu", "virtual-gpu", "other"
	MemoryBytes    uint64 `json:"memory_bytes"`
	MaxBufferBytes uint64 `json:"max_buffer_bytes"`
}

// SystemInfo reports the detected CPU features and the engine's settings.
func (e *Engine) SystemInfo() (SystemInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var info SystemInfo
	if e.h == 0 {
		return info, ErrClosed
	}
	buf := make([]byte, 1024)
	for {
		var need uintptr
		rc := e.lib.fn.contextSystemInfo(e.h, buf, uintptr(len(buf)), &need)
		if Status(rc) == StatusBufferTooSmall && need > uintptr(len(buf)) {
			buf = make([]byte, need)
			continue
		}
		if err := e.check("system info", rc); err != nil {
			return info, err
		}
		break
	}
	if err := json.Unmarshal([]byte(cString(buf)), &info); err != nil {
		return info, &Error{Op: "system info", Status: StatusInternal, Msg: "engine returned malformed JSON: " + err.Error()}
	}
	return info, nil
}

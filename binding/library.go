package binding

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/ebitengine/purego"
)

// ABIVersion is the C ABI version this package speaks (SDGO_ABI_VERSION).
const ABIVersion = 2

// LoadOptions says where to find the engine library. The zero value
// searches the default places.
type LoadOptions struct {
	// Path is a library file, or a directory that holds one. Empty means
	// search: SDGO_LIBRARY, then beside the executable and ../lib, then the
	// build folder of a source checkout.
	Path string
}

// Library is the loaded engine library. It is safe for concurrent use and
// stays loaded for the life of the process.
type Library struct {
	path string
	fn   functions
}

// functions is the table of C entry points, bound once per library.
type functions struct {
	abiVersion         func() int32
	version            func() string
	statusName         func(status int32) string
	logSet             func(cb uintptr, userData uintptr, minLevel int32)
	contextNew         func(threads int32, out *uintptr, err []byte, errLen uintptr) int32
	contextFree        func(ctx uintptr)
	contextError       func(ctx uintptr) string
	contextSetCodePath func(ctx uintptr, name string) int32
	contextSystemInfo  func(ctx uintptr, buf []byte, bufLen uintptr, needed *uintptr) int32

	quantize quantizeFunctions // quantize.go
	files    filesFunctions    // files.go

	// models, sessions and generation (model.go, generate.go)
	modelOptionsNew    func() uintptr
	modelOptionsFree   func(o uintptr)
	modelOptionsError  func(o uintptr) string
	modelOptionsSetStr func(o uintptr, key int32, v string) int32
	modelOptionsSetI64 func(o uintptr, key int32, v int64) int32
	modelLoad          func(opts uintptr, out *uintptr, err []byte, errLen uintptr) int32
	modelFree          func(m uintptr)
	modelError         func(m uintptr) string
	modelInfo          func(m uintptr, buf []byte, bufLen uintptr, needed *uintptr) int32
	sessionNew         func(m uintptr, threads int32, out *uintptr, err []byte, errLen uintptr) int32
	sessionFree        func(s uintptr)
	sessionError       func(s uintptr) string
	requestNew         func() uintptr
	requestFree        func(r uintptr)
	requestError       func(r uintptr) string
	requestSetStr      func(r uintptr, key int32, v string) int32
	requestSetI64      func(r uintptr, key int32, v int64) int32
	requestSetF64      func(r uintptr, key int32, v float64) int32
	requestSetImage    func(r uintptr, key int32, px []byte, w, h, ch int32) int32
	cancelNew          func() uintptr
	cancelTrigger      func(c uintptr)
	cancelFree         func(c uintptr)
	sessionGenerate    func(s, r, cancel, cb, ud uintptr, out *uintptr) int32
	resultFree         func(res uintptr)
	resultCount        func(res uintptr) int32
	resultWidth        func(res uintptr) int32
	resultHeight       func(res uintptr) int32
	resultSeed         func(res uintptr, i int32) int64
	resultImage        func(res uintptr, i int32, buf []byte, bufLen uintptr, needed *uintptr) int32
	catalogJSON        func(buf []byte, bufLen uintptr, needed *uintptr) int32
}

// libraryFileName is the engine's file name on this OS.
func libraryFileName() string {
	switch runtime.GOOS {
	case "darwin":
		return "libsdgo.dylib"
	case "windows":
		return "sdgo.dll"
	}
	return "libsdgo.so"
}

var (
	loadedMu sync.Mutex
	loaded   = map[string]*Library{} // by absolute path
)

// Load finds, loads and checks the engine library. See the package
// documentation for the search order. Loading the same file twice returns
// the same *Library.
func Load(opts LoadOptions) (*Library, error) {
	var tried []Attempt
	for _, c := range candidates(opts) {
		lib, err := open(c)
		if err == nil {
			return lib, nil
		}
		var abi *ABIMismatchError
		if errors.As(err, &abi) {
			return nil, err
		}
		tried = append(tried, Attempt{Path: c, Err: err})
	}
	return nil, &LibraryNotFoundError{Tried: tried}
}

// candidates lists the files to try, in order, without duplicates.
func candidates(opts LoadOptions) []string {
	name := libraryFileName()
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p == "" {
			return
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, name)
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if opts.Path != "" {
		// An explicit path is the only candidate: silently falling back to
		// another library would hide the caller's mistake.
		add(opts.Path)
		return out
	}
	if env := os.Getenv("SDGO_LIBRARY"); env != "" {
		add(env)
		return out
	}
	var roots []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		add(filepath.Join(dir, name))
		add(filepath.Join(dir, "..", "lib", name))
		roots = append(roots, dir)
	}
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	for _, r := range roots {
		if mod := moduleRoot(r); mod != "" {
			add(filepath.Join(mod, "build", "lib", name))
		}
	}
	return out
}

// moduleRoot walks up from dir to the folder holding go.mod and
// CMakeLists.txt (a source checkout of sd-go), or returns "".
func moduleRoot(dir string) string {
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "CMakeLists.txt")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func open(path string) (*Library, error) {
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if lib, ok := loaded[path]; ok {
		return lib, nil
	}
	if !fileExists(path) {
		return nil, errors.New("no such file")
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	lib := &Library{path: path}
	if err := lib.bind(h); err != nil {
		return nil, err
	}
	if have := lib.fn.abiVersion(); have != ABIVersion {
		return nil, &ABIMismatchError{Path: path, Have: have, Want: ABIVersion}
	}
	loaded[path] = lib
	return lib, nil
}

// bind resolves every entry point, failing (rather than panicking, as
// purego.RegisterLibFunc would) when a symbol is missing.
func (l *Library) bind(h uintptr) error {
	table := []struct {
		name string
		fptr any
	}{
		{"sdgo_abi_version", &l.fn.abiVersion},
		{"sdgo_version", &l.fn.version},
		{"sdgo_status_name", &l.fn.statusName},
		{"sdgo_log_set", &l.fn.logSet},
		{"sdgo_context_new", &l.fn.contextNew},
		{"sdgo_context_free", &l.fn.contextFree},
		{"sdgo_context_error", &l.fn.contextError},
		{"sdgo_context_set_code_path", &l.fn.contextSetCodePath},
		{"sdgo_context_system_info", &l.fn.contextSystemInfo},
		{"sdgo_files_info", &l.fn.files.info},
		{"sdgo_quantize_open", &l.fn.quantize.open},
		{"sdgo_quantize_free", &l.fn.quantize.free},
		{"sdgo_quantize_error", &l.fn.quantize.error},
		{"sdgo_quantize_tensor_count", &l.fn.quantize.tensorCount},
		{"sdgo_quantize_source_bytes", &l.fn.quantize.sourceBytes},
		{"sdgo_quantize_tensor_info", &l.fn.quantize.tensorInfo},
		{"sdgo_quantize_write", &l.fn.quantize.write},
		{"sdgo_model_options_new", &l.fn.modelOptionsNew},
		{"sdgo_model_options_free", &l.fn.modelOptionsFree},
		{"sdgo_model_options_error", &l.fn.modelOptionsError},
		{"sdgo_model_options_set_str", &l.fn.modelOptionsSetStr},
		{"sdgo_model_options_set_i64", &l.fn.modelOptionsSetI64},
		{"sdgo_model_load", &l.fn.modelLoad},
		{"sdgo_model_free", &l.fn.modelFree},
		{"sdgo_model_error", &l.fn.modelError},
		{"sdgo_model_info", &l.fn.modelInfo},
		{"sdgo_session_new", &l.fn.sessionNew},
		{"sdgo_session_free", &l.fn.sessionFree},
		{"sdgo_session_error", &l.fn.sessionError},
		{"sdgo_request_new", &l.fn.requestNew},
		{"sdgo_request_free", &l.fn.requestFree},
		{"sdgo_request_error", &l.fn.requestError},
		{"sdgo_request_set_str", &l.fn.requestSetStr},
		{"sdgo_request_set_i64", &l.fn.requestSetI64},
		{"sdgo_request_set_f64", &l.fn.requestSetF64},
		{"sdgo_request_set_image", &l.fn.requestSetImage},
		{"sdgo_cancel_new", &l.fn.cancelNew},
		{"sdgo_cancel_trigger", &l.fn.cancelTrigger},
		{"sdgo_cancel_free", &l.fn.cancelFree},
		{"sdgo_session_generate", &l.fn.sessionGenerate},
		{"sdgo_result_free", &l.fn.resultFree},
		{"sdgo_result_count", &l.fn.resultCount},
		{"sdgo_result_width", &l.fn.resultWidth},
		{"sdgo_result_height", &l.fn.resultHeight},
		{"sdgo_result_seed", &l.fn.resultSeed},
		{"sdgo_result_image", &l.fn.resultImage},
		{"sdgo_catalog_json", &l.fn.catalogJSON},
	}
	for _, e := range table {
		sym, err := purego.Dlsym(h, e.name)
		if err != nil {
			return fmt.Errorf("missing symbol %s (not an sd-go engine library, or too old): %w", e.name, err)
		}
		purego.RegisterFunc(e.fptr, sym)
	}
	return nil
}

// Path is the file the library was loaded from.
func (l *Library) Path() string { return l.path }

// Version is the engine's version, "MAJOR.MINOR.PATCH".
func (l *Library) Version() string { return l.fn.version() }

// ABIVersion is the C ABI version the loaded library implements.
func (l *Library) ABIVersion() int { return int(l.fn.abiVersion()) }

// cString copies the NUL-terminated prefix of b.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

package binding

import (
	"encoding/json"
	"fmt"
	"runtime"
	"unsafe"
)

// filesFunctions are the C entry points of sdgo.h's "Model files" section.
type filesFunctions struct {
	info func(paths *uintptr, n int32, buf []byte, bufLen uintptr, needed *uintptr, err []byte, errLen uintptr) int32
}

// ComponentStats counts the tensors of one component or one tensor type.
type ComponentStats struct {
	Tensors uint64 `json:"tensors"`
	Params  uint64 `json:"params"`
	Bytes   uint64 `json:"bytes"`
}

// FilesInfo describes model files as sdgo_files_info reports them: the
// detected family and variant, the components found with their parameter
// counts, a histogram of tensor types, hyperparameters and the metadata.
type FilesInfo struct {
	Family       string                     `json:"family"`     // sd1, sd2, sdxl, sdxl-refiner, vae, text-encoder, unknown
	Variant      string                     `json:"variant"`    // base, inpaint, instruct-pix2pix, distilled
	Prediction   string                     `json:"prediction"` // epsilon, v, edm, edm-v, unknown
	Source       string                     `json:"source"`     // safetensors, gguf, torch-zip, torch-legacy, safetensors-sharded, diffusers
	Paths        []string                   `json:"paths"`
	FileBytes    uint64                     `json:"file_bytes"`
	Components   []string                   `json:"components"`
	TensorCount  int                        `json:"tensor_count"`
	Parameters   map[string]ComponentStats  `json:"parameters"`
	Types        map[string]ComponentStats  `json:"types"`
	UNet         map[string]json.RawMessage `json:"unet,omitempty"`
	VAE          map[string]json.RawMessage `json:"vae,omitempty"`
	TextEncoder  map[string]json.RawMessage `json:"text_encoder,omitempty"`
	TextEncoder2 map[string]json.RawMessage `json:"text_encoder_2,omitempty"`
	Tokenizer    map[string]string          `json:"tokenizer,omitempty"`
	Metadata     map[string]string          `json:"metadata"`
	// JSON is the engine's report as it came, for --json output.
	JSON []byte `json:"-"`
}

// FilesInfo inspects model files (checkpoints, GGUF, safetensors, a
// diffusers folder; several paths are combined) without preparing them for
// generation. Bad or hostile files give an *Error with StatusFormat,
// StatusIO or StatusUnsupported.
func (l *Library) FilesInfo(paths ...string) (*FilesInfo, error) {
	if len(paths) == 0 {
		return nil, &Error{Op: "model info", Status: StatusInvalidArgument, Msg: "no model paths given"}
	}
	cs := make([][]byte, len(paths))
	ptrs := make([]uintptr, len(paths))
	for i, p := range paths {
		cs[i] = append([]byte(p), 0)
		ptrs[i] = uintptr(unsafe.Pointer(&cs[i][0]))
	}
	buf := make([]byte, 64<<10)
	errBuf := make([]byte, 2048)
	var need uintptr
	rc := l.fn.files.info(&ptrs[0], int32(len(paths)), buf, uintptr(len(buf)), &need, errBuf, uintptr(len(errBuf)))
	if Status(rc) == StatusBufferTooSmall && need > uintptr(len(buf)) {
		buf = make([]byte, need)
		rc = l.fn.files.info(&ptrs[0], int32(len(paths)), buf, uintptr(len(buf)), &need, errBuf, uintptr(len(errBuf)))
	}
	runtime.KeepAlive(cs)
	if rc != 0 {
		return nil, &Error{Op: "model info", Status: Status(rc), Msg: cString(errBuf)}
	}
	raw := []byte(cString(buf))
	info := &FilesInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, fmt.Errorf("sdgo: model info: engine returned bad JSON: %w", err)
	}
	info.JSON = raw
	return info, nil
}

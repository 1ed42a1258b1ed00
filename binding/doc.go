// Package binding is the Go face of the sd-go engine, libsdgo.
//
// The engine is a C++ shared library reached through the C ABI in
// csrc/include/sdgo.h. This package loads it with purego (no cgo needed:
// CGO_ENABLED=0 builds work), checks its ABI version, and wraps its handles
// in Go types. It holds no business logic: numerics and file formats live in
// the engine, policy and user experience in the callers.
//
// # Loading
//
// Load finds the library in a fixed order and returns the first one that
// loads and speaks this package's ABI version:
//
//  1. LoadOptions.Path, a file or a directory holding libsdgo;
//  2. the SDGO_LIBRARY environment variable (a file or a directory);
//  3. beside the running executable, then in ../lib relative to it;
//  4. the build folder of a source checkout (build/lib under the module
//     root found by walking up from the executable and from the working
//     directory).
//
// When none works, the error lists every place tried and why each failed.
// Nothing is loaded in init, and nothing here panics.
//
// # Concurrency
//
// A Library is safe for concurrent use and stays loaded for the life of the
// process. An Engine serialises its own calls: methods may be called from
// several goroutines, and they run one at a time.
package binding

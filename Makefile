# sd-go — the front door.
#
#   make          build the engine library (build/lib) and the CLI (bin/sd-go)
#   make demo     build, then generate an image with the bundled tiny model
#   make test     run the C/C++ tests (ctest) and the Go tests
#   make bench    run the engine benchmarks and the Go benchmarks
#   make clean    remove build outputs
#
# Variables: BUILD_DIR (build), CMAKE_BUILD_TYPE (Release), CMAKE_FLAGS
# (extra -D options, e.g. -DSDGO_NATIVE=ON), JOBS (parallel jobs).

BUILD_DIR        ?= build
CMAKE_BUILD_TYPE ?= Release
CMAKE_FLAGS      ?=
JOBS             ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
GO               ?= go
BIN              := bin/sd-go
LIB_SO           := $(BUILD_DIR)/lib/libsdgo.so
GENERATOR        := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)

.PHONY: all lib cli demo test test-c test-go bench clean check-tools check-go

all: cli
	@./$(BIN) version

check-tools:
	@command -v cmake >/dev/null 2>&1 || { echo "error: cmake not found; install it (Debian/Ubuntu: apt-get install cmake; macOS: brew install cmake)" >&2; exit 1; }
	@command -v $${CXX:-c++} >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 || { echo "error: no C++17 compiler found; install one (Debian/Ubuntu: apt-get install g++; macOS: xcode-select --install)" >&2; exit 1; }

check-go:
	@command -v $(GO) >/dev/null 2>&1 || { echo "error: go not found; install Go 1.26 or later (https://go.dev/dl, or Debian/Ubuntu: apt-get install golang-go with GOTOOLCHAIN=auto)" >&2; exit 1; }

$(BUILD_DIR)/CMakeCache.txt: | check-tools
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) $(CMAKE_FLAGS)

lib: check-tools $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

cli: lib check-go
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/sd-go

# A real txt2img run on the tiny random-weight SD 1.x model in testdata
# (it draws noise-like pictures: the weights are random, the pipeline is real).
DEMO_OUT ?= out/demo.png
demo: cli
	@mkdir -p $(dir $(DEMO_OUT))
	./$(BIN) run -m testdata/pipeline/tiny_sd1 -p "a lighthouse on a cliff at sunset" \
		-W 64 -H 64 --steps 20 --seed 42 -o $(DEMO_OUT)
	@echo "demo image: $(abspath $(DEMO_OUT))"
	@./$(BIN) info $(DEMO_OUT)

test: test-c test-go

test-c: lib
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-go: cli
	$(GO) vet ./...
	SDGO_LIBRARY=$(abspath $(LIB_SO)) $(GO) test -count=1 -p 1 ./...

bench: lib
	@set -e; for b in $(BUILD_DIR)/bin/bench_*; do \
		[ -x "$$b" ] || continue; echo "== $$b"; "$$b"; done
	SDGO_LIBRARY=$(abspath $(LIB_SO)) $(GO) test -run '^$$' -bench . ./...

clean:
	rm -rf $(BUILD_DIR) bin

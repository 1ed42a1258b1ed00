/*
 * sdgo.h — the one C ABI of the sd-go engine.
 *
 * This header is the only way into libsdgo. Everything else in csrc/ is
 * private and hidden from the shared library's symbol table.
 *
 * Contract
 * --------
 * Threading
 *   - Functions that take no handle are safe to call from any thread at any
 *     time.
 *   - A handle (sdgo_context, and the handles that later calls add) may be
 *     used from any OS thread, but by one caller at a time: calls on the same
 *     handle must not overlap, unless the handle's section says otherwise
 *     (a loaded model is shared by its sessions; see "Models, sessions and
 *     generation"). Distinct handles are independent.
 *   - The engine runs its own worker threads inside a call; callbacks are
 *     invoked only on the thread that made the call, never on a worker.
 *
 * Memory ownership
 *   - The library never keeps a pointer it was given. Strings and buffers
 *     passed in are copied before the call returns.
 *   - Every object the library allocates is released by its own *_free
 *     function. *_free(NULL) is a no-op.
 *   - Outputs go into caller-provided buffers (pointer plus length). When a
 *     buffer is too small the call fails with SDGO_ERR_BUFFER_TOO_SMALL and
 *     reports the size it needs.
 *   - Strings returned as `const char *` by functions without a handle
 *     (versions, names) are static and live for the life of the process.
 *
 * Error model
 *   - Every fallible call returns an int32_t status: SDGO_OK (0) or one of
 *     the negative SDGO_ERR_* codes below. No call aborts the process on bad
 *     input; exceptions never cross this boundary.
 *   - A call on a handle that fails stores a human-readable message on that
 *     handle; read it with the handle's *_error function. The message stays
 *     valid until the next call on the same handle. There is no thread-local
 *     "last error": a goroutine may change OS thread between two calls.
 *   - Calls that create a handle take an `err` buffer (pointer plus length)
 *     that receives the message when creation fails.
 *
 * Versioning
 *   - SDGO_ABI_VERSION changes whenever a function's meaning or signature
 *     changes incompatibly. Check sdgo_abi_version() right after loading.
 *   - Enum values are append-only.
 */
#ifndef SDGO_H
#define SDGO_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(SDGO_BUILD)
#    define SDGO_API __declspec(dllexport)
#  else
#    define SDGO_API __declspec(dllimport)
#  endif
#else
#  define SDGO_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define SDGO_ABI_VERSION 2

/* Status codes returned by every fallible call. */
enum sdgo_status {
    SDGO_OK                   = 0,
    SDGO_ERR_INVALID_ARGUMENT = -1, /* a parameter is out of range or inconsistent */
    SDGO_ERR_IO               = -2, /* a file could not be opened, read or written */
    SDGO_ERR_FORMAT           = -3, /* a file is malformed or hostile */
    SDGO_ERR_UNSUPPORTED      = -4, /* valid input this build cannot handle */
    SDGO_ERR_OUT_OF_MEMORY    = -5, /* an allocation failed */
    SDGO_ERR_CANCELED         = -6, /* the caller's cancel token was triggered */
    SDGO_ERR_BUFFER_TOO_SMALL = -7, /* an output buffer is too small; see *needed */
    SDGO_ERR_INTERNAL         = -8  /* a bug: please report it */
};

/* Log levels passed to the log callback. */
enum sdgo_log_level {
    SDGO_LOG_DEBUG = 0,
    SDGO_LOG_INFO  = 1,
    SDGO_LOG_WARN  = 2,
    SDGO_LOG_ERROR = 3
};

/* The ABI version this library implements (SDGO_ABI_VERSION at build time). */
SDGO_API int32_t sdgo_abi_version(void);

/* The engine version, "MAJOR.MINOR.PATCH". Static string. */
SDGO_API const char * sdgo_version(void);

/* A short name for a status code ("ok", "invalid argument", ...). Static string. */
SDGO_API const char * sdgo_status_name(int32_t status);

/*
 * Log callback. `msg` is valid only during the call and has no trailing
 * newline. The callback is process-wide: install it once. It may be called
 * from any thread that calls into the library, never concurrently with
 * itself. Pass cb = NULL to silence logging. Messages below `min_level` are
 * dropped before formatting.
 */
typedef void (*sdgo_log_callback)(int32_t level, const char * msg, void * user_data);
SDGO_API void sdgo_log_set(sdgo_log_callback cb, void * user_data, int32_t min_level);

/*
 * Engine context: the CPU code path and thread pool that later calls run on.
 *
 * n_threads <= 0 picks the number of physical cores (at least 1).
 * On failure *out is set to NULL and `err` (if not NULL) receives the message.
 */
typedef struct sdgo_context sdgo_context;

SDGO_API int32_t sdgo_context_new(int32_t n_threads, sdgo_context ** out, char * err, size_t err_len);
SDGO_API void    sdgo_context_free(sdgo_context * ctx);

/* The message of the last failed call on ctx, or "" if none. */
SDGO_API const char * sdgo_context_error(const sdgo_context * ctx);

/*
 * Force a CPU code path by name ("avx512", "avx2", "neon", "scalar"), or
 * "auto" for the best one this CPU supports. Fails with
 * SDGO_ERR_INVALID_ARGUMENT for an unknown name and SDGO_ERR_UNSUPPORTED for
 * a path this CPU or build cannot run. The environment variable
 * SDGO_CODE_PATH sets the initial choice of every new context the same way.
 */
SDGO_API int32_t sdgo_context_set_code_path(sdgo_context * ctx, const char * name);

/*
 * System information as a JSON object, NUL-terminated, written into buf:
 *   {"engine_version":"…","abi_version":2,"arch":"x86_64","cpu_model":"…",
 *    "cpu_features":["sse4.2","avx2",…],"code_paths":["avx512","avx2","scalar"],
 *    "code_path":"avx512","threads":2,"physical_cores":2,"logical_cores":2,
 *    "backends":[{"name":"cpu","devices":[{"index":0,"name":"cpu",
 *      "description":"…","type":"cpu","memory_bytes":N,"max_buffer_bytes":N}],
 *      "note":""}]}
 * `code_paths` lists the paths compiled in and runnable here, best first;
 * `backends` the backends compiled in and the devices each one sees.
 * *needed (if not NULL) receives the buffer size required, NUL included.
 */
SDGO_API int32_t sdgo_context_system_info(sdgo_context * ctx, char * buf, size_t buf_len, size_t * needed);

/* ======================================================================== *
 * Quantization (sd-go quantize): open a model of any supported format,
 * list its tensors, and write it as GGUF with one chosen type per tensor.
 * ======================================================================== */

/*
 * A model opened for conversion. Tensor names are canonical (the scheme
 * stable-diffusion.cpp uses: model.diffusion_model.*, first_stage_model.*,
 * cond_stage_model[.1].transformer.text_model.*); `path` is a file or a
 * diffusers folder. Shapes are as stable-diffusion.cpp sees them (the VAE's
 * mid-block attention weights are 1x1 convolutions, ne = [1, 1, C, C]).
 * On failure *out is NULL and `err` receives the message.
 */
typedef struct sdgo_quantize_source sdgo_quantize_source;

SDGO_API int32_t sdgo_quantize_open(const char * path, sdgo_quantize_source ** out, char * err, size_t err_len);
SDGO_API void    sdgo_quantize_free(sdgo_quantize_source * src);
/* The message of the last failed call on src, or "". */
SDGO_API const char * sdgo_quantize_error(const sdgo_quantize_source * src);
/* Number of tensors (0 for NULL). */
SDGO_API int64_t sdgo_quantize_tensor_count(const sdgo_quantize_source * src);
/* Total size in bytes of the files the model was read from. */
SDGO_API uint64_t sdgo_quantize_source_bytes(const sdgo_quantize_source * src);

typedef struct sdgo_quantize_tensor {
    int32_t  type;        /* ggml type id after stable-diffusion.cpp's source normalisation
                             (f64->f32, i64->i32, f8->f16), the type "keep" means;
                             -1 when GGUF cannot store the tensor (it must be dropped) */
    int32_t  stored_type; /* ggml type id as stored in the file, -1 for non-ggml types */
    int32_t  n_dims;      /* 1..4 */
    int32_t  reserved;
    int64_t  ne[4];       /* shape in ggml order: ne[0] is the row length */
    uint64_t nbytes;      /* bytes as stored in the source */
} sdgo_quantize_tensor;

/*
 * Tensor i: info into *info and its name (NUL-terminated) into name_buf.
 * *name_needed (if not NULL) receives the size the name needs, NUL included;
 * SDGO_ERR_BUFFER_TOO_SMALL when name_len is smaller (info is still filled).
 */
SDGO_API int32_t sdgo_quantize_tensor_info(sdgo_quantize_source * src, int64_t i, sdgo_quantize_tensor * info,
                                           char * name_buf, size_t name_len, size_t * name_needed);

/* Progress phases. */
enum sdgo_quantize_phase {
    SDGO_QUANTIZE_TENSOR_START = 0,
    SDGO_QUANTIZE_BYTES        = 1,
    SDGO_QUANTIZE_TENSOR_DONE  = 2,
    SDGO_QUANTIZE_FINISHING    = 3
};

typedef struct sdgo_quantize_progress {
    int64_t  tensor_index;   /* index of the current tensor in the source listing */
    int64_t  tensors_done;   /* tensors finished */
    int64_t  tensor_count;   /* tensors that will be written */
    int32_t  phase;          /* enum sdgo_quantize_phase */
    int32_t  out_type;       /* target type of the current tensor */
    uint64_t bytes_done;     /* source bytes consumed, all tensors */
    uint64_t bytes_total;    /* source bytes of all tensors being written */
    uint64_t out_bytes_done; /* output bytes written so far */
} sdgo_quantize_progress;

/* Called on the calling thread; return non-zero to cancel. */
typedef int32_t (*sdgo_quantize_progress_fn)(const sdgo_quantize_progress * p, void * user_data);

typedef struct sdgo_quantize_result {
    uint64_t bytes_in;        /* source bytes of the tensors written */
    uint64_t bytes_out;       /* size of the GGUF file written */
    int64_t  tensors_written;
    int64_t  tensors_dropped;
} sdgo_quantize_result;

/*
 * Writes the model as GGUF to out_path. plan[i] (plan_len must equal the
 * tensor count) is the ggml type id for tensor i, or -1 to leave it out.
 * A tensor whose plan type equals its (normalised) type is copied as is;
 * others are converted through f32 with ggml's quantizers and an importance
 * vector of ones, as stable-diffusion.cpp's converter does. The file is
 * written to a temporary file beside out_path and renamed at the end; on any
 * failure or cancellation out_path is untouched. ctx supplies the threads
 * (the bytes do not depend on the thread count). `cancel` (may be NULL) is
 * polled often; set it to non-zero from any thread to stop with
 * SDGO_ERR_CANCELED. progress (may be NULL) is called per tensor and per
 * piece of a few MB. Errors are reported on src.
 */
SDGO_API int32_t sdgo_quantize_write(sdgo_quantize_source * src, sdgo_context * ctx, const int32_t * plan,
                                     int64_t plan_len, const char * out_path, const int32_t * cancel,
                                     sdgo_quantize_progress_fn progress, void * user_data,
                                     sdgo_quantize_result * result);

/* ==========================================================================
 * Models, sessions and generation
 *
 * A model (sdgo_model) is a loaded Stable Diffusion 1.x/2.x checkpoint or
 * diffusers folder: files, configs, tokenizer and the weights, uploaded once
 * to the device the load options name. It never changes after load and is
 * shared: any number of sessions (sdgo_session) generate on it at the same
 * time, each on its own backend with its own threads and memory arenas. A
 * second session costs only its arenas and threads, not another copy of the
 * weights.
 *
 * Load options and requests are builders: create one, set what differs from
 * the defaults by key, pass it on, free it. Keys are append-only; new
 * features add keys, never change these signatures.
 *
 * Which calls may overlap:
 *   - sdgo_model_load, sdgo_model_info and sdgo_session_new on one model may
 *     be called from several threads at once;
 *   - sdgo_session_generate on different sessions (of one model or of
 *     several) may run at the same time; calls on one session must not
 *     overlap;
 *   - a request or options builder may be read by several calls at once
 *     (sdgo_session_generate takes it as const) but not changed meanwhile.
 * The model is reference-counted: sdgo_model_free drops the caller's
 * reference, and the model lives on until its last session is freed.
 *
 * A cancel token (sdgo_cancel) may be triggered from any thread while
 * sdgo_session_generate runs; generation then stops within one graph node
 * (a sampler step, or a part of the VAE decode) with SDGO_ERR_CANCELED and
 * the session stays usable.
 * ========================================================================== */
typedef struct sdgo_model_options sdgo_model_options;
typedef struct sdgo_model         sdgo_model;
typedef struct sdgo_session       sdgo_session;
typedef struct sdgo_request       sdgo_request;
typedef struct sdgo_result        sdgo_result;
typedef struct sdgo_cancel        sdgo_cancel;

/* Load option keys. String keys take sdgo_model_options_set_str, integer
 * keys sdgo_model_options_set_i64. String keys 16..31 are kept for the
 * load-time additions to come (LoRA files, the refiner, ControlNet). */
enum sdgo_model_option_key {
    /* strings */
    SDGO_MODEL_PATH            = 0,  /* checkpoint file (.safetensors, .gguf, .ckpt, ...) or diffusers folder; required */
    SDGO_MODEL_VAE             = 1,  /* a VAE file (or diffusers vae/ folder) replacing the model's own */
    SDGO_MODEL_WEIGHT_TYPE     = 2,  /* "" keeps stored types; "f32" converts every weight to f32 */
    SDGO_MODEL_RNG             = 3,  /* "cuda" (default) or "cpu": the default of requests */
    SDGO_MODEL_PREDICTION      = 4,  /* "" detects it (from the scheduler config or markers in the file;
                                        epsilon when nothing tells, e.g. an SD 2.x checkpoint);
                                        "epsilon" or "v" overrides (SD 2.x 768-v checkpoints need "v") */
    SDGO_MODEL_BACKEND         = 5,  /* "cpu" (default), "auto" (the first discrete GPU, then an integrated
                                        one, then the CPU; a GPU that runs out of memory or fails while
                                        loading is logged and the CPU used instead) or a backend
                                        sdgo_context_system_info lists (never falls back) */
    SDGO_MODEL_CODE_PATH       = 6,  /* the CPU code path of sessions: "" or "auto" (the best), "avx512",
                                        "avx2", "neon", "scalar" (SDGO_CODE_PATH sets it too) */
    SDGO_MODEL_WEIGHT_PLAN     = 7,  /* tensors to convert at load, one "NAME=TYPE" line each (canonical
                                        names as sdgo_quantize_tensor_info lists them, ggml type names
                                        f16 bf16 q8_0 q5_0 q5_1 q4_0 q4_1); converted with the same code
                                        as sdgo_quantize_write, so the weights equal the quantized file's */
    SDGO_MODEL_VAE_WEIGHT_PLAN = 8,  /* the same for the tensors of the SDGO_MODEL_VAE file */
    SDGO_MODEL_REFINER         = 9,  /* an SDXL refiner (file or folder) loaded beside an SDXL base for
                                        two-stage generation (SDGO_REQ_REFINER_SWITCH) */
    SDGO_MODEL_REFINER_WEIGHT_PLAN = 10, /* the weight plan of the refiner's tensors */
    /* integers */
    SDGO_MODEL_DEVICE          = 32, /* device index within the backend (0) */
    SDGO_MODEL_THREADS         = 33  /* worker threads of each session; <= 0: physical cores */
};

SDGO_API sdgo_model_options * sdgo_model_options_new(void);
SDGO_API void    sdgo_model_options_free(sdgo_model_options * o);
/* The message of the last failed setter on o, or "". */
SDGO_API const char * sdgo_model_options_error(const sdgo_model_options * o);
SDGO_API int32_t sdgo_model_options_set_str(sdgo_model_options * o, int32_t key, const char * value);
SDGO_API int32_t sdgo_model_options_set_i64(sdgo_model_options * o, int32_t key, int64_t value);

/* Loads a model. On failure *out is NULL and `err` receives the message. */
SDGO_API int32_t sdgo_model_load(const sdgo_model_options * opts, sdgo_model ** out, char * err, size_t err_len);
/* Drops the caller's reference (see above). */
SDGO_API void    sdgo_model_free(sdgo_model * m);
/* The message of the last failed call on m, or "". */
SDGO_API const char * sdgo_model_error(const sdgo_model * m);
/*
 * The model as JSON: {"family":"sd1","variant":"base","prediction":"epsilon",
 * "source":"diffusers","unet_in_channels":4,"latent_channels":4,
 * "vae_downscale":8,"granularity":64,"text_max_positions":77,
 * "backend":"cpu","device":"cpu","weight_bytes":N}. Width and height of
 * requests must be multiples of "granularity".
 */
SDGO_API int32_t sdgo_model_info(sdgo_model * m, char * buf, size_t buf_len, size_t * needed);

/*
 * A session: a backend on the model's device with its own threads
 * (n_threads <= 0: the model's SDGO_MODEL_THREADS). It holds a reference to
 * the model. On failure *out is NULL and `err` receives the message.
 */
SDGO_API int32_t sdgo_session_new(sdgo_model * m, int32_t n_threads, sdgo_session ** out, char * err,
                                  size_t err_len);
SDGO_API void    sdgo_session_free(sdgo_session * s);
/* The message of the last failed call on s, or "". */
SDGO_API const char * sdgo_session_error(const sdgo_session * s);

/* Request keys. String keys take sdgo_request_set_str, and so on. A key that
 * is never set keeps the engine's default (sdgo_catalog_json lists them). */
enum sdgo_request_key {
    /* strings */
    SDGO_REQ_PROMPT          = 0,
    SDGO_REQ_NEGATIVE_PROMPT = 1,
    SDGO_REQ_SAMPLER         = 2,  /* euler, euler_a (default), heun, dpm2, dpm++2s_a, dpm++2m, lcm, ddim */
    SDGO_REQ_SCHEDULER       = 3,  /* discrete (default), karras, exponential, sgm_uniform, simple, ddim_uniform, lcm */
    SDGO_REQ_RNG             = 4,  /* cuda, cpu; "": the model's */
    SDGO_REQ_COMPAT          = 5,  /* "a1111" (default) or "diffusers" */
    SDGO_REQ_VAE_TILING      = 6,  /* "auto" (default: tiles only when the whole VAE decode does not fit the
                                      device), "on", "off" */
    /* integers */
    SDGO_REQ_WIDTH           = 16, /* 512 */
    SDGO_REQ_HEIGHT          = 17, /* 512 */
    SDGO_REQ_STEPS           = 18, /* 20 */
    SDGO_REQ_SEED            = 19, /* 42; image b of a batch uses seed + b (wrapping as uint64) */
    SDGO_REQ_BATCH           = 20, /* 1 */
    SDGO_REQ_CLIP_SKIP       = 21, /* 0 = the model's default */
    SDGO_REQ_VAE_TILE_SIZE   = 22, /* 512: VAE tile side in output pixels, a multiple of 8 */
    SDGO_REQ_VAE_TILE_OVERLAP = 23, /* 64: pixels shared by neighbouring tiles, a multiple of 8, <= half a tile */
    /* SDXL size conditioning (other models ignore them), in pixels, 0..16384:
     * the original size (0 = the output size), the crop's top-left corner
     * (0, 0 by default) and the target size (0 = the output size). */
    SDGO_REQ_ORIGINAL_WIDTH  = 24,
    SDGO_REQ_ORIGINAL_HEIGHT = 25,
    SDGO_REQ_CROP_LEFT       = 26,
    SDGO_REQ_CROP_TOP        = 27,
    SDGO_REQ_TARGET_WIDTH    = 28,
    SDGO_REQ_TARGET_HEIGHT   = 29,
    SDGO_REQ_ONE_GENERATOR   = 30, /* 0 (default): image b of a batch has its own generator (seed + b); 1: the
                                      whole batch from one generator, as diffusers' num_images_per_prompt
                                      (diffusers-mode txt2img only) */
    /* the negative side's (-1, the default: the positive side's value; a size of 0: the output size) */
    SDGO_REQ_NEGATIVE_ORIGINAL_WIDTH  = 64,
    SDGO_REQ_NEGATIVE_ORIGINAL_HEIGHT = 65,
    SDGO_REQ_NEGATIVE_CROP_LEFT       = 66,
    SDGO_REQ_NEGATIVE_CROP_TOP        = 67,
    SDGO_REQ_NEGATIVE_TARGET_WIDTH    = 68,
    SDGO_REQ_NEGATIVE_TARGET_HEIGHT   = 69,
    /* floats */
    SDGO_REQ_CFG_SCALE       = 32, /* 7.0; 1 runs one U-Net pass per step (no guidance) */
    SDGO_REQ_STRENGTH        = 33, /* 0.75, img2img / inpaint; in (0, 1] */
    SDGO_REQ_ETA             = 34, /* < 0: the sampler's default */
    SDGO_REQ_AESTHETIC_SCORE = 35, /* 6.0: SDXL refiner, the positive side's aesthetic score */
    SDGO_REQ_NEGATIVE_AESTHETIC_SCORE = 36, /* 2.5: SDXL refiner, the negative side's */
    SDGO_REQ_REFINER_SWITCH  = 37, /* with a refiner loaded (SDGO_MODEL_REFINER): the share of the
                                      schedule the base samples before the refiner takes over, in (0, 1]
                                      (1: the base alone); < 0 (default): 0.8 */
    /* images */
    SDGO_REQ_INIT_IMAGE      = 48, /* RGB8, channels = 3; the same size as the output */
    SDGO_REQ_MASK            = 49  /* 8-bit, channels = 1; >= 128 repaints; needs an init image */
};

SDGO_API sdgo_request * sdgo_request_new(void);
SDGO_API void    sdgo_request_free(sdgo_request * r);
/* The message of the last failed setter on r, or "". */
SDGO_API const char * sdgo_request_error(const sdgo_request * r);
SDGO_API int32_t sdgo_request_set_str(sdgo_request * r, int32_t key, const char * value);
SDGO_API int32_t sdgo_request_set_i64(sdgo_request * r, int32_t key, int64_t value);
SDGO_API int32_t sdgo_request_set_f64(sdgo_request * r, int32_t key, double value);
/* Copies width * height * channels bytes (rows top to bottom, interleaved).
 * px = NULL clears the image. */
SDGO_API int32_t sdgo_request_set_image(sdgo_request * r, int32_t key, const uint8_t * px, int32_t width,
                                        int32_t height, int32_t channels);

SDGO_API sdgo_cancel * sdgo_cancel_new(void);
SDGO_API void    sdgo_cancel_trigger(sdgo_cancel * c);  /* thread-safe, async-signal-safe */
SDGO_API void    sdgo_cancel_reset(sdgo_cancel * c);
SDGO_API void    sdgo_cancel_free(sdgo_cancel * c);

/* Phases reported to the progress callback. */
enum sdgo_phase {
    SDGO_PHASE_ENCODE = 0, /* begins: step 0, total 1 (prompts, and the init image if any) */
    SDGO_PHASE_SAMPLE = 1, /* after every sampler step: step 1..total over the whole batch */
    SDGO_PHASE_DECODE = 2  /* begins for image `step` (0-based) of `total` (the batch count) */
};

/*
 * Progress, on the calling thread. For SDGO_PHASE_SAMPLE, elapsed_ms counts
 * from the start of sampling; for the others, from the start of the call.
 * Return 0 to go on, non-zero to cancel the generation (as the cancel token
 * would).
 */
typedef int32_t (*sdgo_progress_callback)(int32_t phase, int32_t step, int32_t total, int64_t elapsed_ms,
                                          void * user_data);

/*
 * Generates the request's images on the session. The request is validated
 * (sizes, counts, the total output size) before anything is allocated. On
 * success *out receives a result (free it with sdgo_result_free); on
 * failure *out is NULL and the message is on the session: bad requests give
 * SDGO_ERR_INVALID_ARGUMENT, NaN inside the networks SDGO_ERR_INTERNAL,
 * cancellation SDGO_ERR_CANCELED. cancel and progress may be NULL.
 */
SDGO_API int32_t sdgo_session_generate(sdgo_session * s, const sdgo_request * r, sdgo_cancel * cancel,
                                       sdgo_progress_callback progress, void * user_data, sdgo_result ** out);

/* A generation's images and the seed of each. */
SDGO_API void    sdgo_result_free(sdgo_result * res);
SDGO_API int32_t sdgo_result_count(const sdgo_result * res);   /* images (0 for NULL) */
SDGO_API int32_t sdgo_result_width(const sdgo_result * res);
SDGO_API int32_t sdgo_result_height(const sdgo_result * res);
/* The seed image `index` was generated with (0 for a bad index). */
SDGO_API int64_t sdgo_result_seed(const sdgo_result * res, int32_t index);
/* Copies image `index` (height * width * 3 bytes, RGB8, rows top to bottom)
 * into buf; *needed (if not NULL) receives that size. */
SDGO_API int32_t sdgo_result_image(const sdgo_result * res, int32_t index, uint8_t * buf, size_t buf_len,
                                   size_t * needed);

/*
 * The engine's request defaults and names as JSON (the one place they are
 * defined; front ends list them from here):
 *   {"request":{"width":512,...,"sampler":"euler_a","scheduler":"discrete",...},
 *    "samplers":[...],"schedulers":[...],"rngs":[...],"compat":[...],
 *    "weight_types":[...],"limits":{...}}
 * *needed (if not NULL) receives the size required, NUL included.
 */
SDGO_API int32_t sdgo_catalog_json(char * buf, size_t buf_len, size_t * needed);

/* ==========================================================================
 * Model files (sd-go info)
 *
 * Inspects model files without preparing them for generation.
 * ========================================================================== */

/*
 * Describes the model made of paths[0..n_paths): checkpoint files
 * (.safetensors, .gguf, .ckpt/.pt/.pth/.bin, sharded *.safetensors.index.json)
 * or a diffusers folder; several paths are combined (e.g. a checkpoint plus a
 * separate VAE). Writes a NUL-terminated JSON object into buf:
 *   {"family":"sd1"|"sd2"|"sdxl"|"sdxl-refiner"|"vae"|"text-encoder"|"unknown",
 *    "variant":"base"|"inpaint"|"instruct-pix2pix"|"distilled",
 *    "prediction":"epsilon"|"v"|"edm"|"edm-v"|"unknown",
 *    "source":"safetensors"|"gguf"|"torch-zip"|"torch-legacy"|"safetensors-sharded"|"diffusers",
 *    "paths":[...], "file_bytes":N, "components":["unet","vae",...], "tensor_count":N,
 *    "parameters":{"unet":{"tensors":N,"params":N,"bytes":N},...},
 *    "types":{"f16":{"tensors":N,"params":N,"bytes":N},...},
 *    "unet":{...hyperparameters...}, "vae":{...}, "text_encoder":{...}, "text_encoder_2":{...},
 *    "tokenizer":{...} (diffusers), "metadata":{"key":"value",...}}
 * Bad or hostile files fail with SDGO_ERR_IO / SDGO_ERR_FORMAT /
 * SDGO_ERR_UNSUPPORTED and a message in err (if not NULL). A buffer that is
 * too small gives SDGO_ERR_BUFFER_TOO_SMALL; *needed (if not NULL) receives
 * the size required, NUL included. Safe to call from any thread.
 */
SDGO_API int32_t sdgo_files_info(const char * const * paths, int32_t n_paths, char * buf, size_t buf_len,
                                 size_t * needed, char * err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* SDGO_H */

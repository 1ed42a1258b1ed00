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
 *     handle must not overlap. Distinct handles are independent.
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

#define SDGO_ABI_VERSION 1

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
 *   {"engine_version":"…","abi_version":1,"arch":"x86_64",
 *    "cpu_features":["sse4.2","avx2",…],"code_paths":["avx512","avx2","scalar"],
 *    "code_path":"avx512","threads":2,"physical_cores":2,"logical_cores":2}
 * `code_paths` lists the paths compiled in and runnable here, best first.
 * *needed (if not NULL) receives the buffer size required, NUL included.
 */
SDGO_API int32_t sdgo_context_system_info(sdgo_context * ctx, char * buf, size_t buf_len, size_t * needed);

#ifdef __cplusplus
}
#endif

#endif /* SDGO_H */

/* The public header must compile as strict C99 and its symbols must link. */
#include <stdio.h>
#include <string.h>

#include "sdgo.h"

int main(void) {
    sdgo_context * ctx = NULL;
    char err[256];
    char info[2048];
    size_t need = 0;
    int32_t rc;
    if (sdgo_abi_version() != SDGO_ABI_VERSION) {
        printf("abi version mismatch: %d vs %d\n", (int)sdgo_abi_version(), SDGO_ABI_VERSION);
        return 1;
    }
    if (strlen(sdgo_version()) < 5) {
        printf("bad version string\n");
        return 1;
    }
    rc = sdgo_context_new(1, &ctx, err, sizeof err);
    if (rc != SDGO_OK || ctx == NULL) {
        printf("context_new failed: %s\n", err);
        return 1;
    }
    rc = sdgo_context_system_info(ctx, info, sizeof info, &need);
    if (rc != SDGO_OK || need != strlen(info) + 1 || info[0] != '{') {
        printf("system_info failed: %s\n", sdgo_context_error(ctx));
        sdgo_context_free(ctx);
        return 1;
    }
    rc = sdgo_context_set_code_path(ctx, "no-such-path");
    if (rc != SDGO_ERR_INVALID_ARGUMENT || strstr(sdgo_context_error(ctx), "no-such-path") == NULL) {
        printf("expected invalid argument for an unknown code path\n");
        sdgo_context_free(ctx);
        return 1;
    }
    sdgo_context_free(ctx);
    sdgo_context_free(NULL);
    printf("1 passed, 0 failed\n");
    return 0;
}

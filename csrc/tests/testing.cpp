#include "testing.h"

#include <cstring>
#include <exception>
#include <vector>

namespace sdgo::testing {
namespace {

struct Entry {
    const char * name;
    TestFn fn;
};

std::vector<Entry> & registry() {
    static std::vector<Entry> r;
    return r;
}

bool g_failed = false;
int g_failures_in_test = 0;

}  // namespace

int register_test(const char * name, TestFn fn) {
    registry().push_back({name, fn});
    return 0;
}

void report_failure(const char * file, int line, const std::string & what) {
    g_failed = true;
    if (++g_failures_in_test <= 20) std::printf("    %s:%d: %s\n", file, line, what.c_str());
}

bool current_failed() { return g_failed; }

std::string source_path(const std::string & rel) {
#ifdef SDGO_SOURCE_DIR
    return std::string(SDGO_SOURCE_DIR) + "/" + rel;
#else
    return rel;
#endif
}

}  // namespace sdgo::testing

int main(int argc, char ** argv) {
    using namespace sdgo::testing;
    const char * filter = argc > 1 ? argv[1] : nullptr;
    int passed = 0, failed = 0;
    for (const auto & t : registry()) {
        if (filter && !std::strstr(t.name, filter)) continue;
        g_failed = false;
        g_failures_in_test = 0;
        try {
            t.fn();
        } catch (const std::exception & e) {
            report_failure(__FILE__, __LINE__, std::string("exception: ") + e.what());
        }
        if (g_failed) {
            failed++;
            std::printf("FAIL %s\n", t.name);
        } else {
            passed++;
            std::printf("ok   %s\n", t.name);
        }
        std::fflush(stdout);
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

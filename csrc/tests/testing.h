// testing.h — a small test harness for the engine's C++ tests.
//
//   TEST(thread_pool_runs_every_index) {
//       CHECK(x == 3);
//       CHECK_NEAR(a, b, 1e-6);
//       CHECK_EQ(got, want);
//   }
//
// Each test_*.cpp becomes one executable (and one ctest test). It runs every
// TEST in the file, or those whose name contains argv[1], prints a line per
// failure and closes with "N passed, N failed".
#pragma once

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

namespace sdgo::testing {

using TestFn = void (*)();
int register_test(const char * name, TestFn fn);
void report_failure(const char * file, int line, const std::string & what);
bool current_failed();
// Path of a file under the source tree, e.g. source_path("testdata/x.bin").
std::string source_path(const std::string & rel);

template <typename A, typename B>
std::string describe_pair(const A & a, const B & b) {
    std::ostringstream os;
    os << a << " vs " << b;
    return os.str();
}

}  // namespace sdgo::testing

#define SDGO_TEST_CAT2(a, b) a##b
#define SDGO_TEST_CAT(a, b) SDGO_TEST_CAT2(a, b)

#define TEST(name)                                                                       \
    static void sdgo_test_##name();                                                      \
    static const int SDGO_TEST_CAT(sdgo_test_reg_, name) =                               \
        ::sdgo::testing::register_test(#name, &sdgo_test_##name);                        \
    static void sdgo_test_##name()

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) ::sdgo::testing::report_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        const auto & sdgo_a_ = (a);                                                      \
        const auto & sdgo_b_ = (b);                                                      \
        if (!(sdgo_a_ == sdgo_b_))                                                       \
            ::sdgo::testing::report_failure(__FILE__, __LINE__,                          \
                "CHECK_EQ(" #a ", " #b "): " + ::sdgo::testing::describe_pair(sdgo_a_, sdgo_b_)); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        const double sdgo_a_ = (a), sdgo_b_ = (b);                                       \
        if (!(std::fabs(sdgo_a_ - sdgo_b_) <= (tol)))                                    \
            ::sdgo::testing::report_failure(__FILE__, __LINE__,                          \
                "CHECK_NEAR(" #a ", " #b ", " #tol "): " + ::sdgo::testing::describe_pair(sdgo_a_, sdgo_b_)); \
    } while (0)

// Stops the current test when a check has already failed (for loops).
#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        CHECK(cond);                                                                     \
        if (::sdgo::testing::current_failed()) return;                                   \
    } while (0)

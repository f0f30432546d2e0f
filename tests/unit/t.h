/* t.h - a tiny test harness after libuv's runner: TEST(name) registers a case; ASSERT_* print
 * both values. t_main.c runs each case in a child process of its own with a timeout, so a crash,
 * a hang or the state a case leaves behind touches no other case; the parent prints exactly one
 * "PASS name" / "FAIL name: why" line per case, which tests/run.sh counts.
 *
 *   test_x                 every case, each in its own process
 *   test_x NAME...         only those cases, in this process (under a debugger)
 *   test_x --list          the names of the cases, one a line
 *   WH_TEST_TIMEOUT=S      seconds a forked case may run before it is killed (default 60, 300
 *                          in a sanitizer build; 0: no limit)
 *   WH_TEST_NOFORK=1       every case in this process, in order (under a debugger)
 */
#ifndef WH_T_H
#define WH_T_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cases one binary may register: the table is fixed so that registering, which runs in
 * constructors before main, cannot fail to allocate. The 513th case stops the binary with a
 * FAIL line naming this constant. */
#define T_MAX_CASES 512

typedef void (*t_fn)(void);

/* Adds a case to the table (called by TEST's constructor; name and fn are static). */
void t_register(const char *name, t_fn fn);

/* T_FAIL's jump back to the runner and its message, in the process that runs the case. */
extern jmp_buf t_jmp;
extern char t_why[1024];

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        t_register(#name, test_##name);                                                            \
    }                                                                                              \
    static void test_##name(void)

#define T_FAIL(...)                                                                                \
    do {                                                                                           \
        int _tn = snprintf(t_why, sizeof(t_why), "%s:%d: ", __FILE__, __LINE__);                   \
        snprintf(t_why + _tn, sizeof(t_why) - (size_t)_tn, __VA_ARGS__);                           \
        longjmp(t_jmp, 1);                                                                         \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) T_FAIL("assertion failed: %s", #c);                                              \
    } while (0)
#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b) T_FAIL("%s == %s: %lld != %lld", #a, #b, _a, _b);                            \
    } while (0)
#define ASSERT_STR(a, b)                                                                           \
    do {                                                                                           \
        const char *_a = (a), *_b = (b);                                                           \
        if (!_a || !_b || strcmp(_a, _b))                                                          \
            T_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");  \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *_h = (hay), *_n = (needle);                                                    \
        if (!_h || !strstr(_h, _n)) T_FAIL("\"%s\" does not contain \"%s\"", _h ? _h : "", _n);    \
    } while (0)
#define ASSERT_NOT_CONTAINS(hay, needle)                                                           \
    do {                                                                                           \
        const char *_h = (hay), *_n = (needle);                                                    \
        if (_h && strstr(_h, _n)) T_FAIL("\"%s\" contains \"%s\"", _h, _n);                        \
    } while (0)

#endif

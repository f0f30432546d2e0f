/* t.h - a tiny test harness: TEST(name) registers a test; ASSERT_* print both values.
 * Each binary prints "PASS name" / "FAIL name: why" lines; tests/run.sh counts them. */
#ifndef WH_T_H
#define WH_T_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*t_fn)(void);
typedef struct {
    const char *name;
    t_fn fn;
} t_case;

extern t_case t_cases[512];
extern int t_ncases;
extern jmp_buf t_jmp;
extern char t_why[1024];

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        t_cases[t_ncases++] = (t_case){#name, test_##name};                                        \
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

/* test.h - tiny TAP test helpers for table-driven unit tests.
 * Each CHECK prints "ok N - name" or "not ok N - name"; test_done() prints
 * the plan and returns the exit status. */
#ifndef TEST_H
#define TEST_H

#include <stdio.h>
#include <string.h>

static int t_count, t_failed;

static inline void t_report(int ok, const char *file, int line, const char *name)
{
    t_count++;
    if (!ok)
        t_failed++;
    printf("%sok %d - %s\n", ok ? "" : "not ", t_count, name);
    if (!ok)
        printf("# failed at %s:%d\n", file, line);
    fflush(stdout);
}

#define CHECK(cond, name) t_report(!!(cond), __FILE__, __LINE__, (name))
#define CHECK_STR(a, b, name)                                                                      \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        int ok_ = (a_ && b_) ? strcmp(a_, b_) == 0 : a_ == b_;                                     \
        t_report(ok_, __FILE__, __LINE__, (name));                                                 \
        if (!ok_)                                                                                  \
            printf("#   got '%s', want '%s'\n", a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
    } while (0)
#define CHECK_INT(a, b, name)                                                                      \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        t_report(a_ == b_, __FILE__, __LINE__, (name));                                            \
        if (a_ != b_)                                                                              \
            printf("#   got %lld, want %lld\n", a_, b_);                                           \
    } while (0)

static inline int test_done(void)
{
    printf("1..%d\n", t_count);
    return t_failed ? 1 : 0;
}

#endif

/* failthread.c - LD_PRELOAD shim for test_foundation: the FAIL_THREAD_AT-th
 * pthread_create call of the process fails with EAGAIN (1 = the first);
 * every other call goes to the real one. FAIL_THREAD_LOG: a file that gets
 * one line per call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static atomic_int calls;

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    create_fn real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    const char *at = getenv("FAIL_THREAD_AT"), *log = getenv("FAIL_THREAD_LOG");
    int n = atomic_fetch_add(&calls, 1) + 1;
    if (log) {
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "%d\n", n);
            fclose(f);
        }
    }
    if (at && n == strtol(at, NULL, 10))
        return EAGAIN;
    return real(t, a, fn, arg);
}

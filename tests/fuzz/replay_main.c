/* replay_main.c - replays fuzz inputs through a harness without libFuzzer
 * (the normal gcc sanitizer build of `make test`).
 *
 *   replay_<target> PATH...
 *
 * PATH is a file or a directory (its regular files, sorted by name). Each
 * input runs in a child process, so a crash, a sanitizer report, a leak
 * (LeakSanitizer runs at the child's exit) or a hang (SIGALRM after
 * REPLAY_TIMEOUT_S) fails that input alone; the output is TAP, one test
 * per input, named by its path. Exit 1 when any input failed or none was
 * found.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLAY_MAX (1024 * 1024) /* larger inputs are a mistake in the corpus */
#define REPLAY_TIMEOUT_S 30

static int count, failed;

/* read_all - the whole file into a new buffer (*len bytes); NULL on error */
static uint8_t *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    uint8_t *data = malloc(REPLAY_MAX + 1);
    size_t n = 0;
    ssize_t r = 1;
    while (data && r != 0 && n <= REPLAY_MAX) {
        r = read(fd, data + n, REPLAY_MAX + 1 - n);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0)
            n += (size_t)r;
    }
    close(fd);
    if (!data || r != 0) { /* a read error, or over REPLAY_MAX */
        free(data);
        return NULL;
    }
    *len = n;
    return data;
}

/* replay - one input in a child process; one TAP line */
static void replay(const char *path)
{
    size_t len = 0;
    uint8_t *data = read_all(path, &len);
    count++;
    if (!data) {
        failed++;
        printf("not ok %d - %s\n# cannot read it (or over %d bytes)\n", count, path, REPLAY_MAX);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(REPLAY_TIMEOUT_S); /* a hang fails the input (SIGALRM) */
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        exit(0);
    }
    free(data);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    bool ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        failed++;
    printf("%sok %d - %s\n", ok ? "" : "not ", count, path);
    if (pid < 0)
        printf("# fork failed\n");
    else if (WIFSIGNALED(st))
        printf("# killed by signal %d (the report is on stderr)\n", WTERMSIG(st));
    else if (!ok)
        printf("# exit status %d (the report is on stderr)\n", WEXITSTATUS(st));
    fflush(stdout);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void replay_dir(const char *dir)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, by_name);
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        int w = snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (w > 0 && (size_t)w < sizeof path && ents[i]->d_name[0] != '.' && stat(path, &sb) == 0 &&
            S_ISREG(sb.st_mode))
            replay(path);
        free(ents[i]);
    }
    free(ents);
    if (n < 0) {
        count++;
        failed++;
        printf("not ok %d - %s\n# cannot list it\n", count, dir);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            replay_dir(argv[i]);
        else
            replay(argv[i]);
    }
    printf("1..%d\n", count);
    return failed || count == 0 ? 1 : 0;
}

/* t_main.c - runs the cases TEST registered: each in a child process with a timeout, or in this
 * process when asked (see t.h). The parent prints each case's PASS / FAIL line, so a case that
 * crashes, hangs or exits still yields exactly one. */
#define _GNU_SOURCE
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a forked case may run unless WH_TEST_TIMEOUT says otherwise. A sanitizer build runs
 * several times slower: under ASan test_engine's 5,000-word list takes 90 s to compile. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_TIMEOUT_S 300
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define T_TIMEOUT_S 300
#endif
#endif
#ifndef T_TIMEOUT_S
#define T_TIMEOUT_S 60
#endif

jmp_buf t_jmp;
char t_why[1024];

static struct {
    const char *name;
    t_fn fn;
} cases[T_MAX_CASES];
static int ncases;

void t_register(const char *name, t_fn fn)
{
    if (ncases == T_MAX_CASES) { /* before main: stop rather than leave the case out unseen */
        printf("FAIL %s: more than T_MAX_CASES (%d) cases in one binary; raise it in "
               "tests/unit/t.h\n",
               name, T_MAX_CASES);
        exit(1);
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    ncases++;
}

/* Runs case i in this process; false, with t_why, when it failed. */
static bool run_here(int i)
{
    t_why[0] = 0;
    if (setjmp(t_jmp) != 0) return false;
    cases[i].fn();
    return true;
}

/* The names a crash is reported by (strsignal's text follows: "SIGSEGV (Segmentation fault)"). */
static const struct {
    int sig;
    const char *name;
} signal_names[] = {{SIGABRT, "SIGABRT"}, {SIGALRM, "SIGALRM"}, {SIGBUS, "SIGBUS"},
                    {SIGFPE, "SIGFPE"},   {SIGHUP, "SIGHUP"},   {SIGILL, "SIGILL"},
                    {SIGINT, "SIGINT"},   {SIGKILL, "SIGKILL"}, {SIGPIPE, "SIGPIPE"},
                    {SIGQUIT, "SIGQUIT"}, {SIGSEGV, "SIGSEGV"}, {SIGSYS, "SIGSYS"},
                    {SIGTERM, "SIGTERM"}, {SIGTRAP, "SIGTRAP"}, {SIGUSR1, "SIGUSR1"},
                    {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}};

/* "killed by SIGSEGV (Segmentation fault)" or "exited with status 1" into buf; "" for exit 0. */
static void describe_end(int status, char *buf, size_t size)
{
    buf[0] = 0;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = NULL;
        for (size_t k = 0; k < sizeof(signal_names) / sizeof(signal_names[0]) && !name; k++)
            if (signal_names[k].sig == sig) name = signal_names[k].name;
        if (name)
            snprintf(buf, size, "killed by %s (%s)", name, strsignal(sig));
        else
            snprintf(buf, size, "killed by signal %d (%s)", sig, strsignal(sig));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    }
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The child: runs the case and reports it on fd as 'P', or 'F' and t_why. */
__attribute__((noreturn)) static void child(int i, int fd)
{
    char rec[1 + sizeof(t_why)];
    size_t n = 1;
    rec[0] = run_here(i) ? 'P' : 'F';
    if (rec[0] == 'F') {
        size_t w = strnlen(t_why, sizeof(t_why) - 1);
        memcpy(rec + 1, t_why, w);
        n += w;
    }
    /* one write under PIPE_BUF: the parent reads the whole record or none of it */
    if (write(fd, rec, n) != (ssize_t)n) _exit(3);
    /* exit, not _exit: stdio is flushed, and a sanitizer's leak check runs on this case alone
     * (a leak is then a nonzero status after 'P'). The pipe closes when the process is gone. */
    exit(0);
}

/* Runs case i in a child process for at most timeout_s seconds (0: no limit); false, with t_why,
 * when it failed, hung, crashed or ended without saying how it went. */
static bool run_forked(int i, int timeout_s)
{
    char rec[1 + sizeof(t_why)], junk[256], end[160];
    size_t got = 0;
    bool timed_out = false;
    int fd[2], status = 0;
    fflush(NULL); /* or the child would write what is buffered here a second time */
    /* close-on-exec: a program the case runs (system()) must not hold the pipe open */
    if (pipe2(fd, O_CLOEXEC) != 0) {
        snprintf(t_why, sizeof(t_why), "pipe: %s", strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(t_why, sizeof(t_why), "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return false;
    }
    if (pid == 0) {
        close(fd[0]);
        child(i, fd[1]);
    }
    close(fd[1]);
    /* Read the record until end of file, which comes when the child has exited or died. */
    int64_t deadline = timeout_s > 0 ? now_ms() + timeout_s * 1000LL : -1;
    for (;;) {
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = (int)left;
        }
        struct pollfd p = {.fd = fd[0], .events = POLLIN};
        int r = poll(&p, 1, wait_ms);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        bool room = got < sizeof(rec);
        ssize_t n = read(fd[0], room ? rec + got : junk, room ? sizeof(rec) - got : sizeof(junk));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (room) got += (size_t)n;
    }
    close(fd[0]);
    if (timed_out) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        snprintf(t_why, sizeof(t_why), "timed out after %d s", timeout_s);
        return false;
    }
    describe_end(status, end, sizeof(end));
    if (got > 0 && rec[0] == 'F') {
        size_t w = got - 1 < sizeof(t_why) - 1 ? got - 1 : sizeof(t_why) - 1;
        memcpy(t_why, rec + 1, w);
        t_why[w] = 0;
        if (end[0]) snprintf(t_why + w, sizeof(t_why) - w, "; then %s", end);
        return false;
    }
    if (got > 0 && rec[0] == 'P') {
        if (!end[0]) return true;
        snprintf(t_why, sizeof(t_why), "passed, then %s (a sanitizer's report on stderr?)", end);
        return false;
    }
    if (WIFSIGNALED(status))
        snprintf(t_why, sizeof(t_why), "%s", end);
    else
        snprintf(t_why, sizeof(t_why), "%s before it reported",
                 end[0] ? end : "exited with status 0");
    return false;
}

static bool named(int argc, char **argv, const char *name)
{
    for (int k = 1; k < argc; k++)
        if (!strcmp(argv[k], name)) return true;
    return false;
}

int main(int argc, char **argv)
{
    /* line by line, so what a child printed is out even if it then crashes */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* inherited as ignored, SIGCHLD would reap the children itself and hide how they ended */
    signal(SIGCHLD, SIG_DFL);
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (int i = 0; i < ncases; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    int timeout_s = T_TIMEOUT_S;
    const char *env = getenv("WH_TEST_TIMEOUT");
    if (env && *env) {
        char *e;
        errno = 0;
        long v = strtol(env, &e, 10);
        if (errno || *e || v < 0 || v > 86400) {
            fprintf(stderr, "%s: WH_TEST_TIMEOUT=%s: want whole seconds, 0 (no limit) to 86400\n",
                    argv[0], env);
            return 2;
        }
        timeout_s = (int)v;
    }
    env = getenv("WH_TEST_NOFORK");
    bool fork_each = argc == 1 && !(env && *env && strcmp(env, "0"));
    int fail = 0;
    for (int k = 1; k < argc; k++) {
        bool known = false;
        for (int i = 0; i < ncases && !known; i++)
            known = !strcmp(argv[k], cases[i].name);
        if (!known) {
            printf("FAIL %s: no such case (%s --list names them)\n", argv[k], argv[0]);
            fail++;
        }
    }
    for (int i = 0; i < ncases; i++) {
        if (argc > 1 && !named(argc, argv, cases[i].name)) continue;
        if (fork_each ? run_forked(i, timeout_s) : run_here(i)) {
            printf("PASS %s\n", cases[i].name);
        } else {
            printf("FAIL %s: %s\n", cases[i].name, t_why);
            fail++;
        }
        fflush(stdout);
    }
    return fail ? 1 : 0;
}

/*
 * The kernel's part of a sandbox's start, one step at a time: each step runs
 * in a fresh child (which exits at once) and is measured as the median wall
 * time from fork to reaped, and the CPU time of the child and its children.
 * bench/sandbox.sh builds and runs it after its own figures.
 *
 *   sandbox-floor RUNS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { FORK_ONLY, USERNS, MOUNTNS, NETNS, PIDNS };
static const char *const names[] = {
    "fork + exit of a small process",
    "+ unshare(CLONE_NEWUSER) and the id maps",
    "+ unshare(CLONE_NEWNS) (a copy of the host's mounts)",
    "+ unshare(CLONE_NEWNET) (a network namespace)",
    "+ a pid namespace with its pid 1 (one more process)",
};
#define NSTEPS (sizeof names / sizeof *names)

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            _exit(2);
        close(fd);
    }
}

/* In the child: the steps up to and including last. */
static void child(int last, uid_t uid, gid_t gid)
{
    if (last >= USERNS) {
        char map[64];
        if (unshare(CLONE_NEWUSER) < 0)
            _exit(1);
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        write_file("/proc/self/gid_map", map);
    }
    if (last >= MOUNTNS && unshare(CLONE_NEWNS) < 0)
        _exit(1);
    if (last >= NETNS && unshare(CLONE_NEWNET) < 0)
        _exit(1);
    if (last >= PIDNS) {
        pid_t p = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
        if (p == 0)
            _exit(0);
        if (p < 0 || waitpid(p, NULL, 0) < 0)
            _exit(1);
    }
    _exit(0);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    if (runs < 1)
        runs = 1;
    double *wall = calloc((size_t)runs * NSTEPS, sizeof *wall);
    double *cpu = calloc((size_t)runs * NSTEPS, sizeof *cpu);
    if (!wall || !cpu)
        return 1;
    uid_t uid = getuid();
    gid_t gid = getgid();
    for (int i = 0; i < runs; i++)
        for (size_t s = 0; s < NSTEPS; s++) { /* interleaved */
            double t = now_ms();
            pid_t p = fork();
            if (p == 0)
                child((int)s, uid, gid);
            int st;
            struct rusage ru;
            if (p < 0 || wait4(p, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "sandbox-floor: step '%s' failed\n", names[s]);
                return 1;
            }
            wall[s * runs + i] = now_ms() - t;
            cpu[s * runs + i] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                                (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        }
    double pw = 0, pc = 0;
    for (size_t s = 0; s < NSTEPS; s++) {
        qsort(wall + s * runs, (size_t)runs, sizeof *wall, cmp);
        qsort(cpu + s * runs, (size_t)runs, sizeof *cpu, cmp);
        double w = wall[s * runs + runs / 2], c = cpu[s * runs + runs / 2];
        printf("%-54s %7.2f ms %+6.2f   cpu %6.2f ms %+6.2f\n", names[s], w, s ? w - pw : 0, c,
               s ? c - pc : 0);
        pw = w;
        pc = c;
    }
    return 0;
}

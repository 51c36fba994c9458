/*
 * emptyroot ROOT PROGRAM [ARGS...]: run PROGRAM (a path inside ROOT) with
 * ROOT as its whole file system, and nothing else but the host's /proc and
 * /dev bound onto ROOT/proc and ROOT/dev.  A new user namespace (the
 * caller's own IDs mapped to themselves, so PROGRAM runs as that ordinary
 * user) and mount namespace, then pivot_root: unlike chroot, this lets
 * PROGRAM make user namespaces of its own.  For the release test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "emptyroot: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        die(path);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: emptyroot ROOT PROGRAM [ARGS...]\n");
        return 125;
    }
    const char *root = argv[1];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        die("unshare");
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    write_file("/proc/self/gid_map", map);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("making / private");
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("binding the root");
    char path[4096];
    const char *binds[] = {"/proc", "/dev"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s%s", root, binds[i]);
        if (mount(binds[i], path, NULL, MS_BIND | MS_REC, NULL) < 0)
            die(path);
    }
    if (chdir(root) < 0)
        die("chdir");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        die("detaching the old root");
    if (chdir("/") < 0)
        die("chdir /");
    execv(argv[2], argv + 2);
    die(argv[2]);
}

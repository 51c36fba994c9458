/* The platform layer on Linux: /proc for the executable and the boot id, ELF for static programs. */
#include "config.h"

#include "run-platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "run-exec.h"

#include "banned.h"

int platform_self_exe(char *out, size_t outsz, struct rx_error **err)
{
    if (outsz < 2)
        BUG("platform_self_exe: a buffer of %zu bytes", outsz);
    ssize_t n = readlink("/proc/self/exe", out, outsz - 1);
    if (n <= 0)
        return rx_error_errno(err, "cannot read /proc/self/exe");
    out[n] = '\0';
    return 0;
}

/* User namespace policy can only change with a reboot or root's hand. */
bool platform_boot_id(char *out, size_t outsz)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, out, outsz - 1);
    close(fd);
    if (r <= 0)
        return false;
    out[r] = '\0';
    return true;
}

int platform_is_static_program(const char *real)
{
    char interp[PATH_MAX];
    if (rx_elf_interp(real, interp, sizeof interp) < 0)
        return -1;
    return interp[0] == '\0';
}

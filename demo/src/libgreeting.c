/* The demo's store library: the program finds it through its RUNPATH. */
#include <stdio.h>
#include <unistd.h>

void greeting_print(const char *who)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    printf("Hello, %s! This program was fetched from a Nix binary cache, verified and\n"
           "run by runix without Nix and without root.\n"
           "  program: %s\n",
           who, exe);
}

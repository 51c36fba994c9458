/* The demo program: its ELF interpreter and its RUNPATH are in /nix/store. */
#include <stdio.h>
#include <stdlib.h>

void greeting_print(const char *who);

int main(int argc, char **argv)
{
    greeting_print(argc > 1 ? argv[1] : "world");
    FILE *f = fopen(DATA "/share/runix-demo/message.txt", "r");
    if (!f) {
        perror(DATA "/share/runix-demo/message.txt");
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, f))
        printf("  data:    %s", line);
    fclose(f);
    return 0;
}

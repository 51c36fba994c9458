/* libFuzzer harness: distributables (the first line, the JSON, every check). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    (void)dist_sniff(text, size);
    struct dist d;
    struct rx_error *err = NULL;
    if (dist_parse("fuzz", text, size, &d, &err) == 0) {
        for (size_t i = 0; i < d.nsystems; i++) {
            const struct dist_system *s = dist_system_find(&d, "fuzz", d.systems[i].system, &err);
            if (!s)
                abort(); /* every listed system must be found */
            for (size_t j = 0; j < s->npaths; j++)
                (void)dist_narinfo_find(s, &s->paths[j]);
        }
        (void)dist_system_find(&d, "fuzz", "no-such", &err);
        rx_error_clear(&err);
        (void)dist_app_find(&d, "fuzz", NULL, &err);
        rx_error_clear(&err);
        (void)dist_app_find(&d, "fuzz", "x", &err);
        dist_release(&d);
    }
    rx_error_free(err);
    return 0;
}

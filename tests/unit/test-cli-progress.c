/* The fetch summary line: paths, bytes, time, and a rate only when it means something. */
#include "config.h"

#include <string.h>

#include "test-helpers.h"

#include "cli-progress.h"

#include "banned.h"

static void test_cli_progress_summary_gives_paths_bytes_time_and_rate(void **state)
{
    (void)state;
    char out[160];
    cli_progress_summary(12, 8493466, 1.4, out, sizeof out);
    assert_string_equal(out, "fetched 12 paths, 8.1 MiB in 1.4 s (5.8 MiB/s)");
}

static void test_cli_progress_summary_omits_a_rate_too_fast_to_measure(void **state)
{
    (void)state;
    char out[160];
    cli_progress_summary(3, 2048, 0.004, out, sizeof out);
    assert_string_equal(out, "fetched 3 paths, 2.0 KiB in 0.0 s");
    assert_null(strstr(out, "B/s"));
}

static void test_cli_progress_summary_one_path(void **state)
{
    (void)state;
    char out[160];
    cli_progress_summary(1, 100, 0.5, out, sizeof out);
    assert_string_equal(out, "fetched 1 path, 100 B in 0.5 s (200 B/s)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_progress_summary_gives_paths_bytes_time_and_rate),
        cmocka_unit_test(test_cli_progress_summary_omits_a_rate_too_fast_to_measure),
        cmocka_unit_test(test_cli_progress_summary_one_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

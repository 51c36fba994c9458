/* Stopping cleanly on SIGINT, SIGTERM and SIGHUP (see util-signal.h). */
#include "config.h"
#include "util-signal.h"

#include <stdbool.h>
#include <string.h>

#include "util-mem.h"

#include "banned.h"

volatile sig_atomic_t rx_interrupted;

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
static bool caught[ARRAY_SIZE(stop_signals)]; /* by us, not ignored by the caller */

static void on_stop_signal(int sig)
{
    rx_interrupted = sig;
}

void rx_catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waiting calls return EINTR */
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++) {
        struct sigaction old;
        /* A signal the caller ignores (nohup, a background job) stays ignored. */
        if (sigaction(stop_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        caught[i] = sigaction(stop_signals[i], &sa, NULL) == 0;
    }
}

void rx_release_interrupts(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++) {
        if (caught[i])
            signal(stop_signals[i], SIG_DFL);
        caught[i] = false;
    }
}

void rx_die_of_interrupt(void)
{
    int sig = rx_interrupted;
    if (!sig)
        return;
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

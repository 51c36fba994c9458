#pragma once
/*
 * Stopping cleanly on SIGINT, SIGTERM and SIGHUP.
 *
 * The handler only records the signal.  Long loops check rx_interrupted and
 * unwind as after any error, removing what they had half done; system calls
 * that wait (poll, flock, sleeps) return EINTR, since the handlers are
 * installed without SA_RESTART.  Once everything is cleaned up, the command
 * calls rx_die_of_interrupt(), which dies of the same signal, so that the
 * caller (a shell, a supervisor) sees what happened.
 */

#include <signal.h>

/* The signal that asked us to stop, or 0. */
extern volatile sig_atomic_t rx_interrupted;

void rx_catch_interrupts(void);

/* Back to the default actions (for the signals rx_catch_interrupts caught). */
void rx_release_interrupts(void);

/* If a signal asked us to stop: restore its default action and raise it. */
void rx_die_of_interrupt(void);

/* What the engine files share with run-engine.c, below the interface of run-engine.h. */
#pragma once

#include "run-engine.h"

/*
 * The preload half of engine_exec(): find the library, look prog up in PATH
 * when it is NULL, refuse static programs, exec.  Returns -1 only.
 */
int engine_preload_run(const char *store_dir, const char *prog, char *const argv[],
                       char *const envp[], struct rx_error **err);

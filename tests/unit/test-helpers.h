#pragma once
/* Shared helpers for the cmocka unit tests. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Path of a file under the third-party vectors ($RUNIX_TESTDATA); fails the test if unset. */
char *td_path(const char *rel);

/* Read a whole file (fails the test on error); *len gets the size. */
char *td_read(const char *path, size_t *len);

/* Read a file under the vectors directory. */
char *td_read_rel(const char *rel, size_t *len);

/*
 * Split a TSV file into rows of fields, skipping '#' comments and blank
 * lines.  Each row is a NULL-terminated array of strings; the whole result
 * is NULL-terminated.  Free with td_rows_free().
 */
char ***td_tsv(const char *rel);
void td_rows_free(char ***rows);

/* A fresh empty temporary directory; td_rmtree() removes it. */
char *td_tmpdir(void);
/* An O_DIRECTORY fd of dir (fails the test if it cannot be opened). */
int td_open_dir(const char *dir);
/* Close fd (if >= 0), remove the temporary directory dir and free it. */
void td_tmpdir_free(char *dir, int fd);
void td_rmtree(const char *dir);

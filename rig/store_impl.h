/*
 * store_impl.h - for the store's own files (rig/store*.c) only: the few
 * helpers they share with store.c. Everything else in rig/ asks the store
 * through store.h and store_*.h and never sees SQL (make check-walls).
 */
#ifndef TRACKRIG_STORE_IMPL_H
#define TRACKRIG_STORE_IMPL_H

#include "store.h"

#include <sqlite3.h>

/* Sets store_error() to "<path>: <what>: <SQLite's message>"; returns -1. */
int store_fail_db(store *s, const char *what);

/* A one-off statement (rarely run queries, not worth keeping prepared):
 * NULL with store_fail_db(WHAT) when SQL does not prepare. */
sqlite3_stmt *store_prepare(store *s, const char *what, const char *sql);

/* Text, or NULL bound as NULL. */
int store_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Row ids and run ids: 0 means none and is bound as NULL. */
int store_bind_id(sqlite3_stmt *st, int i, int64_t id);
/* Column I as text, or NULL for SQL NULL. */
const char *store_column_text(sqlite3_stmt *st, int i);

#endif

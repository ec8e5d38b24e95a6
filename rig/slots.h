/*
 * slots.h - the rack file loaded and a slot list picked from it, for the
 * commands that act on slots (power, relay, rack check).
 *
 * Each of them used to repeat the same load / select / error dance; one copy
 * keeps their messages and exit codes the same ("rig CMD: file:line:col:
 * ..." and exit 2 for a broken rack file or a bad slot list).
 */
#ifndef TRACKRIG_SLOTS_H
#define TRACKRIG_SLOTS_H

#include <stdbool.h>

#include "rack.h"

/* Loads RACK_FILE into RACK and selects SPEC ("3", "1-4,7", "all") into
 * *SEL (rack->n_slots entries, malloc'ed; free with slots_free()). Returns
 * RIG_EXIT_OK, or an exit code after saying why on stderr as "rig CMD: ..."
 * (then nothing is left to free). Returns the number selected in *N when N
 * is not NULL. */
int slots_load(const char *rack_file, const char *spec, const char *cmd, struct rack *rack, bool **sel, int *n);

/* Frees what slots_load() returned. */
void slots_free(struct rack *rack, bool *sel);

#endif

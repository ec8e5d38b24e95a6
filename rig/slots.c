/* slots.c - rack file and slot list for slot commands (see slots.h). */
#include "slots.h"
#include "cli.h"

#include <stdlib.h>

int slots_load(const char *rack_file, const char *spec, const char *cmd, struct rack *rack, bool **sel, int *n)
{
	char err[768];
	*sel = NULL;
	if (rack_load(rack_file, rack, err, sizeof err)) {
		rack_free(rack);
		return cli_fail(RIG_EXIT_USAGE, cmd, "%s", err);
	}
	bool *s = calloc(rack->n_slots > 0 ? (size_t)rack->n_slots : 1, sizeof *s);
	if (!s) {
		rack_free(rack);
		return cli_fail(RIG_EXIT_INFRA, cmd, "out of memory");
	}
	int k = rack_select(rack, spec, s, err, sizeof err);
	if (k < 0) {
		free(s);
		rack_free(rack);
		return cli_fail(RIG_EXIT_USAGE, cmd, "%s", err);
	}
	*sel = s;
	if (n)
		*n = k;
	return RIG_EXIT_OK;
}

void slots_free(struct rack *rack, bool *sel)
{
	free(sel);
	rack_free(rack);
}

/* fuzz_rack.c - the rack file loader (rig/rack.c, rig/yamldoc.c) on any
 * bytes: refused or read, it frees what it allocated (LeakSanitizer), and a
 * refusal names file:line:col. */
#include "fuzz_loader_common.h"

#include "rack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);
	struct rack r;
	char err[1024];
	if (rack_load(path, &r, err, sizeof err) == 0) {
		bool sel[RACK_MAX_SLOTS];
		rack_select(&r, "all", sel, err, sizeof err);
		rack_free(&r);
	} else if (strncmp(err, path, strlen(path)) != 0 || r.slots) {
		abort(); /* an error must say where; a refused rack keeps nothing */
	}
	return 0;
}

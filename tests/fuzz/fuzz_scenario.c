/* fuzz_scenario.c - the scenario loader (rig/scenario.c, rig/duration.c,
 * rig/yamldoc.c) on any bytes: refused or read, it frees what it
 * allocated, a refusal names the file, and what it accepts keeps its
 * limits (no duration above the ceiling). */
#include "fuzz_loader_common.h"

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);
	struct scenario sc;
	char err[1024];
	if (scenario_load(path, &sc, err, sizeof err) == 0) {
		int64_t total = 0;
		for (int i = 0; i < sc.n_steps; i++) {
			if (sc.steps[i].duration_ms < 0 || sc.steps[i].duration_ms > SCENARIO_DURATION_MAX_MS)
				abort();
			total += sc.steps[i].duration_ms;
		}
		if (total > SCENARIO_TOTAL_MAX_MS || sc.n_steps > SCENARIO_MAX_STEPS)
			abort();
		scenario_free(&sc);
	} else if (strncmp(err, path, strlen(path)) != 0 || sc.steps) {
		abort();
	}
	return 0;
}

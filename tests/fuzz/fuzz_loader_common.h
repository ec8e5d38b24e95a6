/* fuzz_loader_common.h - the rack and scenario loaders read files: each
 * input is written to one file in a temp dir made once per process. */
#ifndef FUZZ_LOADER_COMMON_H
#define FUZZ_LOADER_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[64];

static void fuzz_dir_remove(void)
{
	unlink(fuzz_path);
	char *slash = strrchr(fuzz_path, '/');
	if (slash) {
		*slash = '\0';
		rmdir(fuzz_path);
	}
}

static const char *fuzz_file(const uint8_t *data, size_t size)
{
	if (!fuzz_path[0]) {
		/* In memory where there is a tmpfs: a file per input is the cost. */
		char dir[] = "/dev/shm/trackrig-fuzz-XXXXXX";
		if (access("/dev/shm", W_OK) != 0)
			memcpy(dir, "/tmp/trackrig-fuzz-XXXXXX", sizeof "/tmp/trackrig-fuzz-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(fuzz_path, sizeof fuzz_path, "%s/in.yaml", dir);
		atexit(fuzz_dir_remove);
	}
	FILE *f = fopen(fuzz_path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	return fuzz_path;
}

#endif

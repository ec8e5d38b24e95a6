/* fuzz_framing.c - the ingest's stream framing (rig/ingest_frame.c), the
 * very function the server frames every connection with: a stream of a
 * login and packets, as a stranger may send it. Each complete frame goes
 * on to its decoder, as the server does. A frame must lie inside the
 * bytes given and move the stream on. */
#include <stdint.h>
#include <stdlib.h>

#include "ingest_frame.h"
#include "teltonika_codec.h"

static struct tlt_record recs[TLT_MAX_RECORDS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool logged_in = false;
	size_t at = 0;
	while (at < size) {
		struct ingest_frame f;
		ingest_frame_next(data + at, size - at, logged_in, &f);
		if (f.kind == INGEST_FRAME_MORE || f.kind == INGEST_FRAME_BAD) {
			if (f.len != 0)
				abort();
			break;
		}
		if (f.len == 0 || f.len > size - at)
			abort(); /* a frame outside the bytes, or one that does not advance */
		char err[256], text[1400];
		uint8_t type = 0, codec = 0;
		if (f.kind == INGEST_FRAME_LOGIN) {
			if (logged_in)
				abort();
			logged_in = true;
		} else if (f.kind == INGEST_FRAME_C12) {
			tlt_c12_decode(data + at, f.len, &type, text, sizeof text, err, sizeof err);
		} else {
			tlt_avl_decode(data + at, f.len, recs, TLT_MAX_RECORDS, &codec, err, sizeof err);
		}
		at += f.len;
	}
	return 0;
}

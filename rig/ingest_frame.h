/*
 * ingest_frame.h - the ingest's stream framing as a pure function: bytes
 * in, the next frame's boundary, kind and error out. rig/ingest.c frames
 * every connection with it and tests/fuzz/fuzz_framing.c feeds it whatever
 * a fuzzer makes, so the code that splits a hostile byte stream is the
 * code that is fuzzed.
 *
 * A connection's stream is one login frame (2-byte length + IMEI), then
 * packets (4 zero bytes, 4-byte length, codec, ..., CRC): codec 8 / 8E AVL
 * data or codec 12 messages (docs/uplink.md).
 */
#ifndef TRACKRIG_INGEST_FRAME_H
#define TRACKRIG_INGEST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ingest_frame_kind {
	INGEST_FRAME_MORE,   /* no complete frame yet: read more (len 0) */
	INGEST_FRAME_LOGIN,  /* a login frame; imei set */
	INGEST_FRAME_AVL,    /* a codec 8 / 8E packet, not yet decoded */
	INGEST_FRAME_C12,    /* a codec 12 packet, not yet decoded */
	INGEST_FRAME_BAD,    /* the stream cannot be framed: drop the link (why, tlt_err) */
};

struct ingest_frame {
	enum ingest_frame_kind kind;
	size_t len;          /* bytes of BUF the frame takes (0 for MORE and BAD) */
	char imei[16];       /* LOGIN */
	int tlt_err;         /* BAD: the codec's error (TLT_ERR_*) */
	char why[200];       /* BAD: what is wrong */
};

/* The next frame at the start of BUF (N bytes). LOGGED_IN says whether the
 * login frame is behind (then packets follow). Never reads past BUF[N-1],
 * never allocates; LEN of a complete frame is at most N. */
void ingest_frame_next(const uint8_t *buf, size_t n, bool logged_in, struct ingest_frame *f);

#endif

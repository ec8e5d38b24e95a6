/* ingest_frame.c - the ingest's stream framing (see ingest_frame.h). */
#include "ingest_frame.h"

#include <string.h>

#include "teltonika_codec.h"

static void login_frame(const uint8_t *buf, size_t n, struct ingest_frame *f)
{
	size_t used = 0;
	int rc = tlt_login_parse(buf, n, f->imei, &used, f->why, sizeof f->why);
	if (rc == TLT_NEED_MORE)
		return;
	if (rc != TLT_OK) {
		f->kind = INGEST_FRAME_BAD;
		f->tlt_err = rc;
		return;
	}
	f->kind = INGEST_FRAME_LOGIN;
	f->len = used;
}

static void packet_frame(const uint8_t *buf, size_t n, struct ingest_frame *f)
{
	size_t total = 0;
	int rc = tlt_packet_size(buf, n, &total, f->why, sizeof f->why);
	if (rc == TLT_NEED_MORE || (rc == TLT_OK && total > n))
		return;
	if (rc != TLT_OK || total < 9) {
		f->kind = INGEST_FRAME_BAD;
		f->tlt_err = rc != TLT_OK ? rc : TLT_ERR_FORMAT;
		if (rc == TLT_OK)
			strcpy(f->why, "packet shorter than its header");
		return;
	}
	f->kind = buf[8] == TLT_CODEC12 ? INGEST_FRAME_C12 : INGEST_FRAME_AVL;
	f->len = total;
}

void ingest_frame_next(const uint8_t *buf, size_t n, bool logged_in, struct ingest_frame *f)
{
	f->kind = INGEST_FRAME_MORE;
	f->len = 0;
	f->imei[0] = '\0';
	f->tlt_err = 0;
	f->why[0] = '\0';
	if (n == 0)
		return;
	if (logged_in)
		packet_frame(buf, n, f);
	else
		login_frame(buf, n, f);
}

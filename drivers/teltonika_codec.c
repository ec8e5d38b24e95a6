/*
 * teltonika_codec.c - Teltonika TCP framing: login, AVL packets (codec 8 and
 * 8E) and codec 12 commands. Layouts: shared/notes/hardware-facts.md.
 *
 * Decoding never trusts a length field: every read goes through a bounded
 * reader, and the data length must account for exactly the bytes the
 * records use, so a lying packet is refused rather than half-stored.
 * Encoding validates everything first and writes only when the whole
 * packet fits, so a failed encode leaves OUT untouched.
 */
#include "teltonika_codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Preamble (4) + data length (4) before the data, CRC (4) after it. */
#define FRAME_HEAD 8
#define FRAME_OVERHEAD 12
/* Codec id, number of data 1 and number of data 2: the shortest data. */
#define DATA_MIN 3
/* Frame plus codec id and both record counts: a packet with no records. */
#define AVL_OVERHEAD (FRAME_OVERHEAD + DATA_MIN)
/* Timestamp 8, priority 1, GPS element 15. */
#define RECORD_FIXED 24
/* Codec 12: codec, quantity 1, type, size (4) and quantity 2 around the text. */
#define C12_DATA_FIXED 8

/* Byte-at-a-time table for CRC-16/IBM (reflected 0xA001): the decoder runs
 * it over every packet a rack sends, so it is worth 512 bytes of rodata. */
static const uint16_t crc_table[256] = {
	0x0000, 0xC0C1, 0xC181, 0x0140, 0xC301, 0x03C0, 0x0280, 0xC241,
	0xC601, 0x06C0, 0x0780, 0xC741, 0x0500, 0xC5C1, 0xC481, 0x0440,
	0xCC01, 0x0CC0, 0x0D80, 0xCD41, 0x0F00, 0xCFC1, 0xCE81, 0x0E40,
	0x0A00, 0xCAC1, 0xCB81, 0x0B40, 0xC901, 0x09C0, 0x0880, 0xC841,
	0xD801, 0x18C0, 0x1980, 0xD941, 0x1B00, 0xDBC1, 0xDA81, 0x1A40,
	0x1E00, 0xDEC1, 0xDF81, 0x1F40, 0xDD01, 0x1DC0, 0x1C80, 0xDC41,
	0x1400, 0xD4C1, 0xD581, 0x1540, 0xD701, 0x17C0, 0x1680, 0xD641,
	0xD201, 0x12C0, 0x1380, 0xD341, 0x1100, 0xD1C1, 0xD081, 0x1040,
	0xF001, 0x30C0, 0x3180, 0xF141, 0x3300, 0xF3C1, 0xF281, 0x3240,
	0x3600, 0xF6C1, 0xF781, 0x3740, 0xF501, 0x35C0, 0x3480, 0xF441,
	0x3C00, 0xFCC1, 0xFD81, 0x3D40, 0xFF01, 0x3FC0, 0x3E80, 0xFE41,
	0xFA01, 0x3AC0, 0x3B80, 0xFB41, 0x3900, 0xF9C1, 0xF881, 0x3840,
	0x2800, 0xE8C1, 0xE981, 0x2940, 0xEB01, 0x2BC0, 0x2A80, 0xEA41,
	0xEE01, 0x2EC0, 0x2F80, 0xEF41, 0x2D00, 0xEDC1, 0xEC81, 0x2C40,
	0xE401, 0x24C0, 0x2580, 0xE541, 0x2700, 0xE7C1, 0xE681, 0x2640,
	0x2200, 0xE2C1, 0xE381, 0x2340, 0xE101, 0x21C0, 0x2080, 0xE041,
	0xA001, 0x60C0, 0x6180, 0xA141, 0x6300, 0xA3C1, 0xA281, 0x6240,
	0x6600, 0xA6C1, 0xA781, 0x6740, 0xA501, 0x65C0, 0x6480, 0xA441,
	0x6C00, 0xACC1, 0xAD81, 0x6D40, 0xAF01, 0x6FC0, 0x6E80, 0xAE41,
	0xAA01, 0x6AC0, 0x6B80, 0xAB41, 0x6900, 0xA9C1, 0xA881, 0x6840,
	0x7800, 0xB8C1, 0xB981, 0x7940, 0xBB01, 0x7BC0, 0x7A80, 0xBA41,
	0xBE01, 0x7EC0, 0x7F80, 0xBF41, 0x7D00, 0xBDC1, 0xBC81, 0x7C40,
	0xB401, 0x74C0, 0x7580, 0xB541, 0x7700, 0xB7C1, 0xB681, 0x7640,
	0x7200, 0xB2C1, 0xB381, 0x7340, 0xB101, 0x71C0, 0x7080, 0xB041,
	0x5000, 0x90C1, 0x9181, 0x5140, 0x9301, 0x53C0, 0x5280, 0x9241,
	0x9601, 0x56C0, 0x5780, 0x9741, 0x5500, 0x95C1, 0x9481, 0x5440,
	0x9C01, 0x5CC0, 0x5D80, 0x9D41, 0x5F00, 0x9FC1, 0x9E81, 0x5E40,
	0x5A00, 0x9AC1, 0x9B81, 0x5B40, 0x9901, 0x59C0, 0x5880, 0x9841,
	0x8801, 0x48C0, 0x4980, 0x8941, 0x4B00, 0x8BC1, 0x8A81, 0x4A40,
	0x4E00, 0x8EC1, 0x8F81, 0x4F40, 0x8D01, 0x4DC0, 0x4C80, 0x8C41,
	0x4400, 0x84C1, 0x8581, 0x4540, 0x8701, 0x47C0, 0x4680, 0x8641,
	0x8201, 0x42C0, 0x4380, 0x8341, 0x4100, 0x81C1, 0x8081, 0x4040,
};

uint16_t tlt_crc16(const uint8_t *data, size_t len)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++)
		crc = (uint16_t)((crc >> 8) ^ crc_table[(crc ^ data[i]) & 0xFF]);
	return crc;
}

/* ---- errors --------------------------------------------------------------- */

/* Formats the message into ERR (which may be NULL) and returns CODE, so a
 * failure is one statement: return fail(...). */
__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---- big-endian access ---------------------------------------------------- */

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0;) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
	return p + n;
}

/* ---- login ---------------------------------------------------------------- */

#define IMEI_MAX 15

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

int tlt_login_parse(const uint8_t *buf, size_t len, char imei[16], size_t *used, char *err, size_t errlen)
{
	if (len < 2)
		return TLT_NEED_MORE;
	size_t n = (size_t)get_be(buf, 2);
	/* Refused before the digits arrive: a peer announcing a long frame
	 * must not make the server wait for it. */
	if (n == 0 || n > IMEI_MAX)
		return fail(err, errlen, TLT_ERR_FORMAT, "login: IMEI length %zu at byte 0 is not 1..%d", n,
			    IMEI_MAX);
	size_t have = len - 2 < n ? len - 2 : n;
	for (size_t i = 0; i < have; i++)
		if (!is_digit(buf[2 + i]))
			return fail(err, errlen, TLT_ERR_FORMAT, "login: IMEI byte 0x%02X at byte %zu is not a digit",
				    buf[2 + i], 2 + i);
	if (have < n)
		return TLT_NEED_MORE;
	memcpy(imei, buf + 2, n);
	imei[n] = '\0';
	if (used)
		*used = 2 + n;
	return TLT_OK;
}

/* Returns the frame length, or 0 when IMEI is not 1..15 digits or CAP is
 * too small: a zero-length login is never valid, so 0 cannot be mistaken. */
size_t tlt_login_encode(const char *imei, uint8_t *out, size_t cap)
{
	if (!imei)
		return 0;
	size_t n = strnlen(imei, IMEI_MAX + 1);
	if (n == 0 || n > IMEI_MAX || cap < 2 + n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_digit((uint8_t)imei[i]))
			return 0;
	put_be(out, n, 2);
	memcpy(out + 2, imei, n);
	return 2 + n;
}

/* ---- records -------------------------------------------------------------- */

/* NX elements have no kept value, so they are reported absent rather than
 * as a made-up 0. The first element with ID wins if a device repeats one. */
bool tlt_record_io(const struct tlt_record *rec, uint16_t id, uint64_t *value)
{
	if (!rec)
		return false;
	for (uint16_t i = 0; i < rec->n_io && i < TLT_MAX_IO; i++) {
		if (rec->io[i].id != id || rec->io[i].size == 0)
			continue;
		if (value)
			*value = rec->io[i].value;
		return true;
	}
	return false;
}

/* ---- framing (shared by AVL and codec 12) ---------------------------------- */

/* Checks the preamble and the data length as far as LEN allows. Returns
 * TLT_OK with *TOTAL, TLT_NEED_MORE, or an error. Each preamble byte is
 * checked as soon as it is there, so garbage is refused at once instead
 * of waiting for a header that will never make sense. */
static int frame_header(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen)
{
	for (size_t i = 0; i < 4 && i < len; i++)
		if (buf[i] != 0)
			return fail(err, errlen, TLT_ERR_FORMAT, "preamble byte %zu is 0x%02X, not 0", i, buf[i]);
	if (len < FRAME_HEAD)
		return TLT_NEED_MORE;
	uint32_t dl = (uint32_t)get_be(buf + 4, 4);
	if (dl > TLT_PACKET_MAX - FRAME_OVERHEAD)
		return fail(err, errlen, TLT_ERR_TOO_BIG,
			    "data length %" PRIu32 " at byte 4 makes a packet above %d bytes", dl, TLT_PACKET_MAX);
	if (dl < DATA_MIN)
		return fail(err, errlen, TLT_ERR_FORMAT,
			    "data length %" PRIu32 " at byte 4 cannot hold a codec id and two counts", dl);
	*total = FRAME_OVERHEAD + dl;
	return TLT_OK;
}

int tlt_packet_size(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen)
{
	size_t t = 0;
	int rc = frame_header(buf, len, &t, err, errlen);
	if (rc != TLT_OK)
		return rc;
	if (len < t)
		return TLT_NEED_MORE;
	*total = t;
	return TLT_OK;
}

/* A whole packet of exactly LEN bytes with a good CRC. Decoders take one
 * packet, so a short buffer is an error here, never TLT_NEED_MORE (which
 * tlt_avl_decode could not tell from "1 record"). */
static int frame_check(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen)
{
	int rc = frame_header(buf, len, total, err, errlen);
	if (rc == TLT_NEED_MORE)
		return fail(err, errlen, TLT_ERR_FORMAT, "packet of %zu bytes ends inside its %d-byte header", len,
			    FRAME_HEAD);
	if (rc != TLT_OK)
		return rc;
	if (len != *total)
		return fail(err, errlen, TLT_ERR_FORMAT, "packet is %zu bytes but its data length at byte 4 makes it %zu",
			    len, *total);
	size_t dl = *total - FRAME_OVERHEAD;
	uint64_t want = get_be(buf + FRAME_HEAD + dl, 4);
	uint16_t got = tlt_crc16(buf + FRAME_HEAD, dl);
	if (want != got)
		return fail(err, errlen, TLT_ERR_CRC, "CRC at byte %zu is 0x%08" PRIX64 ", the data gives 0x%04X",
			    FRAME_HEAD + dl, want, got);
	return TLT_OK;
}

/* ---- AVL decoding --------------------------------------------------------- */

/* A bounded reader over the records of one packet. END is where number of
 * data 2 sits, so a record can neither borrow the trailer's bytes nor
 * stop short of it unnoticed. */
struct reader {
	const uint8_t *buf;
	size_t pos, end;
	unsigned rec;        /* 1-based record being read, for messages */
	char *err;
	size_t errlen;
};

static const uint8_t io_sizes[4] = { 1, 2, 4, 8 };

/* True when N more bytes are there; otherwise says what would overrun. */
__attribute__((format(printf, 3, 4)))
static bool need(struct reader *r, size_t n, const char *fmt, ...)
{
	if (r->end - r->pos >= n)
		return true;
	char what[80];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	fail(r->err, r->errlen, TLT_ERR_FORMAT, "record %u: %s runs past the packet at byte %zu", r->rec, what,
	     r->pos);
	return false;
}

/* Only after need(): reads N big-endian bytes. */
static uint64_t take(struct reader *r, unsigned n)
{
	uint64_t v = get_be(r->buf + r->pos, n);
	r->pos += n;
	return v;
}

/* Elements past TLT_MAX_IO are checked but not kept: refusing the packet
 * would leave it unacked and the device would resend it forever. */
static void keep_io(struct tlt_record *rec, uint16_t id, uint8_t size, uint64_t value, uint16_t nx_len)
{
	if (rec->n_io >= TLT_MAX_IO)
		return;
	rec->io[rec->n_io++] = (struct tlt_io){ .id = id, .size = size, .value = value, .nx_len = nx_len };
}

/* The IO element: codec 8 has one-byte ids and counts, 8E two-byte ones and
 * a trailing NX group of variable-length values. */
static int read_io(struct reader *r, bool ext, struct tlt_record *rec)
{
	unsigned w = ext ? 2 : 1;
	if (!need(r, 2u * w, "IO element header"))
		return TLT_ERR_FORMAT;
	rec->event_io = (uint16_t)take(r, w);
	size_t total_at = r->pos;
	unsigned total = (unsigned)take(r, w);
	unsigned sum = 0;
	rec->n_io = 0;
	for (unsigned k = 0; k < 4; k++) {
		unsigned size = io_sizes[k];
		if (!need(r, w, "count of the IO group of %u-byte values", size))
			return TLT_ERR_FORMAT;
		unsigned count = (unsigned)take(r, w);
		if (!need(r, (size_t)count * (w + size), "IO group of %u-byte values", size))
			return TLT_ERR_FORMAT;
		for (unsigned j = 0; j < count; j++) {
			uint16_t id = (uint16_t)take(r, w);
			keep_io(rec, id, (uint8_t)size, take(r, size), 0);
		}
		sum += count;
	}
	if (ext) {
		if (!need(r, 2, "count of the NX IO group"))
			return TLT_ERR_FORMAT;
		unsigned count = (unsigned)take(r, 2);
		for (unsigned j = 0; j < count; j++) {
			if (!need(r, 4, "NX IO element %u of %u", j + 1, count))
				return TLT_ERR_FORMAT;
			uint16_t id = (uint16_t)take(r, 2);
			uint16_t nx_len = (uint16_t)take(r, 2);
			if (!need(r, nx_len, "value of NX IO element %u (%u bytes)", id, nx_len))
				return TLT_ERR_FORMAT;
			r->pos += nx_len;
			keep_io(rec, id, 0, 0, nx_len);
		}
		sum += count;
	}
	if (sum != total)
		return fail(r->err, r->errlen, TLT_ERR_FORMAT,
			    "record %u: IO total count %u at byte %zu differs from the %u elements in its groups", r->rec,
			    total, total_at, sum);
	return TLT_OK;
}

static int read_record(struct reader *r, bool ext, struct tlt_record *rec)
{
	if (!need(r, RECORD_FIXED, "timestamp, priority and GPS element"))
		return TLT_ERR_FORMAT;
	rec->timestamp_ms = take(r, 8);
	rec->priority = (uint8_t)take(r, 1);
	rec->lon_e7 = (int32_t)(uint32_t)take(r, 4);
	rec->lat_e7 = (int32_t)(uint32_t)take(r, 4);
	rec->altitude_m = (int16_t)(uint16_t)take(r, 2);
	rec->angle = (uint16_t)take(r, 2);
	rec->satellites = (uint8_t)take(r, 1);
	rec->speed_kmh = (uint16_t)take(r, 2);
	return read_io(r, ext, rec);
}

int tlt_avl_decode(const uint8_t *buf, size_t len, struct tlt_record *recs, size_t cap, uint8_t *codec,
		   char *err, size_t errlen)
{
	size_t total = 0;
	int rc = frame_check(buf, len, &total, err, errlen);
	if (rc != TLT_OK)
		return rc;
	uint8_t c = buf[FRAME_HEAD];
	if (c != TLT_CODEC8 && c != TLT_CODEC8E)
		return fail(err, errlen, TLT_ERR_CODEC, "codec id 0x%02X at byte %d is not 0x08 or 0x8E", c, FRAME_HEAD);
	size_t n2_at = total - 5;
	unsigned n1 = buf[FRAME_HEAD + 1], n2 = buf[n2_at];
	if (n1 != n2)
		return fail(err, errlen, TLT_ERR_FORMAT,
			    "number of data 1 (%u at byte %d) differs from number of data 2 (%u at byte %zu)", n1,
			    FRAME_HEAD + 1, n2, n2_at);
	if (n1 == 0)
		return fail(err, errlen, TLT_ERR_FORMAT, "packet holds no records (number of data 0 at byte %d)",
			    FRAME_HEAD + 1);
	if (n1 > cap)
		return fail(err, errlen, TLT_ERR_SPACE, "packet holds %u records, room for %zu", n1, cap);
	struct reader r = { .buf = buf, .pos = FRAME_HEAD + 2, .end = n2_at, .err = err, .errlen = errlen };
	for (unsigned i = 0; i < n1; i++) {
		r.rec = i + 1;
		rc = read_record(&r, c == TLT_CODEC8E, &recs[i]);
		if (rc != TLT_OK)
			return rc;
	}
	if (r.pos != n2_at)
		return fail(err, errlen, TLT_ERR_FORMAT,
			    "%u records end at byte %zu but the data length puts number of data 2 at byte %zu", n1, r.pos,
			    n2_at);
	if (codec)
		*codec = c;
	return (int)n1;
}

/* ---- AVL encoding --------------------------------------------------------- */

/* Encoded size of REC in CODEC, or TLT_ERR_FORMAT when the codec cannot carry
 * it: codec 8 has one-byte ids and counts and no NX group, and a value
 * wider than its size would be silently cut. */
static int record_size(uint8_t codec, const struct tlt_record *rec, size_t *size)
{
	bool ext = codec == TLT_CODEC8E;
	size_t w = ext ? 2 : 1;
	if (rec->n_io > TLT_MAX_IO || (!ext && (rec->event_io > 0xFF || rec->n_io > 0xFF)))
		return TLT_ERR_FORMAT;
	/* Event id, total count and the four group counts; 8E adds the NX count. */
	size_t s = RECORD_FIXED + 6 * w + (ext ? 2 : 0);
	for (uint16_t i = 0; i < rec->n_io; i++) {
		const struct tlt_io *io = &rec->io[i];
		if (!ext && io->id > 0xFF)
			return TLT_ERR_FORMAT;
		switch (io->size) {
		case 1: case 2: case 4:
			if (io->value >> (8 * io->size))
				return TLT_ERR_FORMAT;
			/* fall through */
		case 8:
			s += w + io->size;
			break;
		case 0:
			if (!ext)
				return TLT_ERR_FORMAT;
			s += 4 + (size_t)io->nx_len;
			break;
		default:
			return TLT_ERR_FORMAT;
		}
	}
	*size = s;
	return TLT_OK;
}

static uint8_t *write_group(uint8_t *p, const struct tlt_record *rec, uint8_t size, unsigned w)
{
	unsigned count = 0;
	for (uint16_t i = 0; i < rec->n_io; i++)
		count += rec->io[i].size == size;
	p = put_be(p, count, w);
	for (uint16_t i = 0; i < rec->n_io; i++) {
		const struct tlt_io *io = &rec->io[i];
		if (io->size != size)
			continue;
		p = put_be(p, io->id, w);
		if (size) {
			p = put_be(p, io->value, size);
		} else {
			/* The decoder keeps only an NX value's length, so it comes
			 * back as that many zero bytes. */
			p = put_be(p, io->nx_len, 2);
			memset(p, 0, io->nx_len);
			p += io->nx_len;
		}
	}
	return p;
}

/* Only after record_size() accepted REC: writes it, groups in 1, 2, 4, 8
 * (and NX) order, each keeping the order of REC's elements. */
static uint8_t *write_record(uint8_t *p, bool ext, const struct tlt_record *rec)
{
	unsigned w = ext ? 2 : 1;
	p = put_be(p, rec->timestamp_ms, 8);
	p = put_be(p, rec->priority, 1);
	p = put_be(p, (uint32_t)rec->lon_e7, 4);
	p = put_be(p, (uint32_t)rec->lat_e7, 4);
	p = put_be(p, (uint16_t)rec->altitude_m, 2);
	p = put_be(p, rec->angle, 2);
	p = put_be(p, rec->satellites, 1);
	p = put_be(p, rec->speed_kmh, 2);
	p = put_be(p, rec->event_io, w);
	p = put_be(p, rec->n_io, w);
	for (unsigned k = 0; k < 4; k++)
		p = write_group(p, rec, io_sizes[k], w);
	if (ext)
		p = write_group(p, rec, 0, 2);
	return p;
}

/* Packets above TLT_PACKET_MAX are refused with TLT_ERR_TOO_BIG whatever
 * CAP is: the rig's decoder would refuse them, so it never makes them. */
int tlt_avl_encode(uint8_t codec, const struct tlt_record *recs, size_t n, uint8_t *out, size_t cap)
{
	if (codec != TLT_CODEC8 && codec != TLT_CODEC8E)
		return TLT_ERR_CODEC;
	if (n == 0 || n > TLT_MAX_RECORDS)
		return TLT_ERR_FORMAT;
	size_t total = AVL_OVERHEAD;
	for (size_t i = 0; i < n; i++) {
		size_t s;
		int rc = record_size(codec, &recs[i], &s);
		if (rc != TLT_OK)
			return rc;
		total += s;
		if (total > TLT_PACKET_MAX)
			return TLT_ERR_TOO_BIG;
	}
	if (total > cap)
		return TLT_ERR_SPACE;
	size_t dl = total - FRAME_OVERHEAD;
	uint8_t *p = put_be(out, 0, 4);
	p = put_be(p, dl, 4);
	p = put_be(p, codec, 1);
	p = put_be(p, n, 1);
	for (size_t i = 0; i < n; i++)
		p = write_record(p, codec == TLT_CODEC8E, &recs[i]);
	p = put_be(p, n, 1);
	put_be(p, tlt_crc16(out + FRAME_HEAD, dl), 4);
	return (int)total;
}

/* Stops at the first record that does not fit or that CODEC cannot carry,
 * keeping the backlog in order; 0 means the first record alone cannot go,
 * and the caller must not loop on it. */
size_t tlt_avl_fit(uint8_t codec, const struct tlt_record *recs, size_t n, size_t max)
{
	if (codec != TLT_CODEC8 && codec != TLT_CODEC8E)
		return 0;
	if (max > TLT_PACKET_MAX)
		max = TLT_PACKET_MAX;
	size_t total = AVL_OVERHEAD, i;
	for (i = 0; i < n && i < TLT_MAX_RECORDS; i++) {
		size_t s;
		if (record_size(codec, &recs[i], &s) != TLT_OK || total + s > max)
			break;
		total += s;
	}
	return i;
}

/* ---- codec 12 ------------------------------------------------------------- */

int tlt_c12_encode(uint8_t type, const char *text, size_t text_len, uint8_t *out, size_t cap)
{
	if (type != TLT_C12_COMMAND && type != TLT_C12_RESPONSE)
		return TLT_ERR_FORMAT;
	if (!text && text_len)
		return TLT_ERR_FORMAT;
	if (text_len > TLT_PACKET_MAX - FRAME_OVERHEAD - C12_DATA_FIXED)
		return TLT_ERR_TOO_BIG;
	size_t dl = C12_DATA_FIXED + text_len, total = FRAME_OVERHEAD + dl;
	if (total > cap)
		return TLT_ERR_SPACE;
	uint8_t *p = put_be(out, 0, 4);
	p = put_be(p, dl, 4);
	p = put_be(p, TLT_CODEC12, 1);
	p = put_be(p, 1, 1);
	p = put_be(p, type, 1);
	p = put_be(p, text_len, 4);
	if (text_len)
		memcpy(p, text, text_len);
	p += text_len;
	p = put_be(p, 1, 1);
	put_be(p, tlt_crc16(out + FRAME_HEAD, dl), 4);
	return (int)total;
}

/* Returns the length of what was stored in TEXT (at most TEXT_CAP-1), so
 * it is always safe to use as a length into TEXT. */
int tlt_c12_decode(const uint8_t *buf, size_t len, uint8_t *type, char *text, size_t text_cap, char *err,
		   size_t errlen)
{
	size_t total = 0;
	int rc = frame_check(buf, len, &total, err, errlen);
	if (rc != TLT_OK)
		return rc;
	uint8_t c = buf[FRAME_HEAD];
	if (c != TLT_CODEC12)
		return fail(err, errlen, TLT_ERR_CODEC, "codec id 0x%02X at byte %d is not 0x0C", c, FRAME_HEAD);
	size_t dl = total - FRAME_OVERHEAD;
	if (dl < C12_DATA_FIXED)
		return fail(err, errlen, TLT_ERR_FORMAT, "codec 12 data length %zu at byte 4 is below %d", dl,
			    C12_DATA_FIXED);
	unsigned q1 = buf[FRAME_HEAD + 1], q2 = buf[total - 5];
	if (q1 != 1 || q2 != 1)
		return fail(err, errlen, TLT_ERR_FORMAT,
			    "codec 12 quantities are %u (byte %d) and %u (byte %zu), not 1 and 1", q1, FRAME_HEAD + 1,
			    q2, total - 5);
	uint8_t t = buf[FRAME_HEAD + 2];
	if (t != TLT_C12_COMMAND && t != TLT_C12_RESPONSE)
		return fail(err, errlen, TLT_ERR_FORMAT, "codec 12 type 0x%02X at byte %d is not 05 or 06", t,
			    FRAME_HEAD + 2);
	uint64_t size = get_be(buf + FRAME_HEAD + 3, 4);
	if (size != dl - C12_DATA_FIXED)
		return fail(err, errlen, TLT_ERR_FORMAT,
			    "codec 12 text size %" PRIu64 " at byte %d disagrees with the data length (%zu bytes of text)",
			    size, FRAME_HEAD + 3, dl - C12_DATA_FIXED);
	if (type)
		*type = t;
	if (!text || text_cap == 0)
		return 0;
	size_t n = size < text_cap - 1 ? (size_t)size : text_cap - 1;
	memcpy(text, buf + FRAME_HEAD + 7, n);
	text[n] = '\0';
	return (int)n;
}

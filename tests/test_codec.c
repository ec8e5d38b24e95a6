/*
 * test_codec.c - drivers/teltonika_codec: the official vectors field by
 * field, byte-identical re-encoding, random round trips, backlog splitting,
 * and hostile input (truncations, bit flips, lying lengths, fuzz) that must
 * be refused without an over-read. Random input is seeded, so a failure
 * repeats.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teltonika_codec.h"

/* Official examples (shared/notes/hardware-facts.md). */
static const char VEC8_ONE[] =
	"000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A01"
	"4E0000000000000000010000C7CF";
static const char VEC8_TWO[] =
	"000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C1980100"
	"00000000000000000000000000000101010101000000020000252C";
static const char VEC8E_ONE[] =
	"000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D000100"
	"10015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994";
static const char VEC12_GETINFO[] = "000000000000000F0C010500000007676574696E666F0100004312";
static const char VEC12_GETIO[] =
	"00000000000000370C01060000002F4449313A31204449323A30204449333A302041494E313A302041494E323A31363932342044"
	"4F313A3020444F323A3101000066E3";

static const char *const AVL_VECTORS[] = { VEC8_ONE, VEC8_TWO, VEC8E_ONE };
static const char *const ALL_VECTORS[] = { VEC8_ONE, VEC8_TWO, VEC8E_ONE, VEC12_GETINFO, VEC12_GETIO };
#define NVEC(a) (sizeof(a) / sizeof(a)[0])

static size_t from_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	cr_assert_leq(n, cap, "vector of %zu bytes does not fit %zu", n, cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* xorshift64*: the test's own seeded generator, no shared state. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd(s) % n;
}

/* Makes BUF of LEN bytes a well-framed packet again after a test changed it:
 * data length = LEN - 12 and a correct CRC, so what is tested is the layout
 * behind the frame, not the CRC. */
static void refit_frame(uint8_t *buf, size_t len)
{
	size_t dl = len - 12;
	buf[4] = (uint8_t)(dl >> 24);
	buf[5] = (uint8_t)(dl >> 16);
	buf[6] = (uint8_t)(dl >> 8);
	buf[7] = (uint8_t)dl;
	uint16_t crc = tlt_crc16(buf + 8, dl);
	buf[len - 4] = 0;
	buf[len - 3] = 0;
	buf[len - 2] = (uint8_t)(crc >> 8);
	buf[len - 1] = (uint8_t)crc;
}

static int decode_vec(const char *hex, struct tlt_record *recs, size_t cap, uint8_t *codec)
{
	uint8_t buf[TLT_PACKET_MAX];
	size_t len = from_hex(hex, buf, sizeof buf);
	char err[160] = "";
	int n = tlt_avl_decode(buf, len, recs, cap, codec, err, sizeof err);
	cr_assert_gt(n, 0, "official vector refused: %d %s", n, err);
	return n;
}

static void assert_gps_zero(const struct tlt_record *r)
{
	cr_assert_eq(r->lon_e7, 0);
	cr_assert_eq(r->lat_e7, 0);
	cr_assert_eq(r->altitude_m, 0);
	cr_assert_eq(r->angle, 0);
	cr_assert_eq(r->satellites, 0);
	cr_assert_eq(r->speed_kmh, 0);
}

static void assert_io(const struct tlt_record *r, unsigned i, uint16_t id, uint8_t size, uint64_t value)
{
	cr_assert_lt(i, r->n_io);
	cr_assert_eq(r->io[i].id, id, "io[%u] id %u, want %u", i, r->io[i].id, id);
	cr_assert_eq(r->io[i].size, size, "io[%u] (id %u) size %u, want %u", i, id, r->io[i].size, size);
	cr_assert_eq(r->io[i].value, value, "io[%u] (id %u) value %llu, want %llu", i, id,
		     (unsigned long long)r->io[i].value, (unsigned long long)value);
	uint64_t v = ~value;
	cr_assert(tlt_record_io(r, id, &v), "tlt_record_io misses id %u", id);
	cr_assert_eq(v, value);
}

Test(codec, crc16_check_value)
{
	cr_assert_eq(tlt_crc16((const uint8_t *)"123456789", 9), 0xBB3D);
	cr_assert_eq(tlt_crc16((const uint8_t *)"", 0), 0);
	/* And the table agrees with each vector's own CRC field. */
	for (size_t v = 0; v < NVEC(ALL_VECTORS); v++) {
		uint8_t buf[TLT_PACKET_MAX];
		size_t len = from_hex(ALL_VECTORS[v], buf, sizeof buf);
		uint16_t want = (uint16_t)(buf[len - 2] << 8 | buf[len - 1]);
		cr_assert_eq(tlt_crc16(buf + 8, len - 12), want, "vector %zu", v);
	}
}

Test(codec, codec8_one_record_fields)
{
	struct tlt_record r[2];
	uint8_t codec = 0;
	cr_assert_eq(decode_vec(VEC8_ONE, r, 2, &codec), 1);
	cr_assert_eq(codec, TLT_CODEC8);
	cr_assert_eq(r[0].timestamp_ms, 0x16B40D8EA30ULL);
	cr_assert_eq(r[0].timestamp_ms, 1560161086000ULL, "2019-06-10T10:04:46Z in ms");
	cr_assert_eq(r[0].priority, 1);
	assert_gps_zero(&r[0]);
	cr_assert_eq(r[0].event_io, 1);
	cr_assert_eq(r[0].n_io, 5);
	assert_io(&r[0], 0, 21, 1, 3);
	assert_io(&r[0], 1, 1, 1, 1);
	assert_io(&r[0], 2, 66, 2, 24079);
	cr_assert_eq(r[0].io[2].value, 0x5E0F);
	assert_io(&r[0], 3, 241, 4, 24602);
	assert_io(&r[0], 4, 78, 8, 0);
	uint64_t v;
	cr_assert_not(tlt_record_io(&r[0], 67, &v), "IO 67 is not in the record");
}

Test(codec, codec8_two_records_fields)
{
	struct tlt_record r[2];
	uint8_t codec = 0;
	cr_assert_eq(decode_vec(VEC8_TWO, r, 2, &codec), 2);
	cr_assert_eq(codec, TLT_CODEC8);
	cr_assert_eq(r[0].timestamp_ms, 0x16B40D57B48ULL);
	cr_assert_eq(r[1].timestamp_ms, 0x16B40D5C198ULL);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(r[i].priority, 1);
		assert_gps_zero(&r[i]);
		cr_assert_eq(r[i].event_io, 1);
		cr_assert_eq(r[i].n_io, 1);
	}
	assert_io(&r[0], 0, 1, 1, 0);
	assert_io(&r[1], 0, 1, 1, 1);
}

Test(codec, codec8e_one_record_fields)
{
	struct tlt_record r[1];
	uint8_t codec = 0;
	cr_assert_eq(decode_vec(VEC8E_ONE, r, 1, &codec), 1);
	cr_assert_eq(codec, TLT_CODEC8E);
	cr_assert_eq(r[0].timestamp_ms, 0x16B412CEE00ULL);
	cr_assert_eq(r[0].priority, 1);
	assert_gps_zero(&r[0]);
	cr_assert_eq(r[0].event_io, 1);
	cr_assert_eq(r[0].n_io, 5);
	assert_io(&r[0], 0, 1, 1, 1);
	assert_io(&r[0], 1, 17, 2, 29);
	assert_io(&r[0], 2, 16, 4, 22949000);
	assert_io(&r[0], 3, 11, 8, 893700218);
	assert_io(&r[0], 4, 14, 8, 500686954);
}

static void c12_vector(const char *hex, uint8_t want_type, const char *want_text)
{
	uint8_t buf[TLT_PACKET_MAX], out[TLT_PACKET_MAX];
	size_t len = from_hex(hex, buf, sizeof buf);
	char text[128], err[160] = "";
	uint8_t type = 0;
	int n = tlt_c12_decode(buf, len, &type, text, sizeof text, err, sizeof err);
	cr_assert_eq(n, (int)strlen(want_text), "decode gave %d: %s", n, err);
	cr_assert_eq(type, want_type);
	cr_assert_str_eq(text, want_text);
	int m = tlt_c12_encode(want_type, want_text, strlen(want_text), out, sizeof out);
	cr_assert_eq(m, (int)len);
	cr_assert_arr_eq(out, buf, len, "codec 12 re-encoding differs");
	/* A short TEXT buffer truncates, NUL-terminated, and says what it kept. */
	char small[6];
	cr_assert_eq(tlt_c12_decode(buf, len, &type, small, sizeof small, NULL, 0), 5);
	cr_assert_eq(strncmp(small, want_text, 5), 0);
	cr_assert_eq(small[5], '\0');
	/* An AVL decoder does not take it, nor the reverse. */
	struct tlt_record r[1];
	cr_assert_eq(tlt_avl_decode(buf, len, r, 1, NULL, NULL, 0), TLT_ERR_CODEC);
}

Test(codec, codec12_getinfo_command)
{
	c12_vector(VEC12_GETINFO, TLT_C12_COMMAND, "getinfo");
}

Test(codec, codec12_getio_response)
{
	c12_vector(VEC12_GETIO, TLT_C12_RESPONSE, "DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1");
	uint8_t buf[TLT_PACKET_MAX];
	size_t len = from_hex(VEC8_ONE, buf, sizeof buf);
	char text[16];
	cr_assert_eq(tlt_c12_decode(buf, len, NULL, text, sizeof text, NULL, 0), TLT_ERR_CODEC);
}

/* The getio response with one bit of its text or of its CRC changed: the
 * CRC names where it sits and both values, so a damaged answer is told
 * from a wrong one; a frame cut short says so instead of reading on. */
Test(codec, codec12_response_crc_and_length_checked)
{
	uint8_t buf[TLT_PACKET_MAX];
	char text[128], err[160];
	size_t len = from_hex(VEC12_GETIO, buf, sizeof buf);
	cr_assert_eq(len, 67u);
	buf[19] ^= 0x01; /* "DI1:1" becomes "DI1:0" */
	cr_assert_eq(tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err), TLT_ERR_CRC, "%s", err);
	cr_assert_str_eq(err, "CRC at byte 63 is 0x000066E3, the data gives 0xF723");
	buf[19] ^= 0x01;
	buf[len - 1] ^= 0x01;
	cr_assert_eq(tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err), TLT_ERR_CRC, "%s", err);
	buf[len - 1] ^= 0x01;
	cr_assert_eq(tlt_c12_decode(buf, len - 1, NULL, text, sizeof text, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert(strstr(err, "66 bytes") != NULL, "%s", err);
	cr_assert_eq(tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err), 47);
}

Test(codec, codec12_encode_limits)
{
	uint8_t out[TLT_PACKET_MAX + 64];
	char text[TLT_PACKET_MAX];
	memset(text, 'a', sizeof text);
	cr_assert_eq(tlt_c12_encode(0x07, "x", 1, out, sizeof out), TLT_ERR_FORMAT);
	cr_assert_eq(tlt_c12_encode(TLT_C12_COMMAND, "getinfo", 7, out, 26), TLT_ERR_SPACE);
	cr_assert_eq(tlt_c12_encode(TLT_C12_COMMAND, "getinfo", 7, out, 27), 27);
	cr_assert_eq(tlt_c12_encode(TLT_C12_RESPONSE, text, TLT_PACKET_MAX - 20, out, sizeof out), TLT_PACKET_MAX);
	cr_assert_eq(tlt_c12_encode(TLT_C12_RESPONSE, text, TLT_PACKET_MAX - 19, out, sizeof out), TLT_ERR_TOO_BIG);
}

Test(codec, codec12_bad_fields)
{
	uint8_t buf[TLT_PACKET_MAX];
	char text[64], err[160];
	struct { size_t at; uint8_t value; int want; const char *what; } cases[] = {
		{ 9, 2, TLT_ERR_FORMAT, "quantity 1 is 2" },
		{ 26 - 4, 2, TLT_ERR_FORMAT, "quantity 2 is 2" },
		{ 10, 0x07, TLT_ERR_FORMAT, "type 07" },
		{ 14, 8, TLT_ERR_FORMAT, "text size 8 for 7 bytes" },
		{ 14, 6, TLT_ERR_FORMAT, "text size 6 for 7 bytes" },
		{ 8, 0x8E, TLT_ERR_CODEC, "codec 8E" },
	};
	for (size_t i = 0; i < NVEC(cases); i++) {
		size_t len = from_hex(VEC12_GETINFO, buf, sizeof buf);
		buf[cases[i].at] = cases[i].value;
		refit_frame(buf, len);
		err[0] = '\0';
		int n = tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err);
		cr_assert_eq(n, cases[i].want, "%s: %d (%s)", cases[i].what, n, err);
		cr_assert_neq(err[0], '\0', "%s: no message", cases[i].what);
	}
	/* Quantities that agree but are not 1: one command per packet. */
	size_t len = from_hex(VEC12_GETINFO, buf, sizeof buf);
	buf[9] = buf[len - 5] = 2;
	refit_frame(buf, len);
	cr_assert_eq(tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err), TLT_ERR_FORMAT);
}

Test(codec, encode_never_exceeds_packet_max)
{
	/* 42 empty codec 8 records make 1275 bytes, 43 would make 1305: refused
	 * as too big however large OUT is, since no decoder here would take it. */
	static struct tlt_record recs[43];
	static uint8_t out[4096];
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, recs, 42, out, sizeof out), 15 + 42 * 30);
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, recs, 43, out, sizeof out), TLT_ERR_TOO_BIG);
	cr_assert_eq(tlt_avl_fit(TLT_CODEC8, recs, 43, sizeof out), 42);
}

Test(codec, vectors_reencode_identically)
{
	for (size_t v = 0; v < NVEC(AVL_VECTORS); v++) {
		uint8_t buf[TLT_PACKET_MAX], out[TLT_PACKET_MAX];
		size_t len = from_hex(AVL_VECTORS[v], buf, sizeof buf);
		struct tlt_record r[4];
		uint8_t codec = 0;
		int n = tlt_avl_decode(buf, len, r, 4, &codec, NULL, 0);
		cr_assert_gt(n, 0);
		int m = tlt_avl_encode(codec, r, (size_t)n, out, sizeof out);
		cr_assert_eq(m, (int)len, "vector %zu: %d bytes, want %zu", v, m, len);
		cr_assert_arr_eq(out, buf, len, "vector %zu re-encodes differently", v);
		cr_assert_eq(tlt_avl_fit(codec, r, (size_t)n, len), (size_t)n, "vector %zu fits exactly its size", v);
		cr_assert_eq(tlt_avl_fit(codec, r, (size_t)n, len - 1), (size_t)n - 1, "vector %zu, one byte short", v);
	}
}

/* ---- random records ------------------------------------------------------- */

static const uint8_t SIZES[5] = { 1, 2, 4, 8, 0 };

/* A record CODEC8_OK can carry in codec 8 (one-byte ids, no NX), or one
 * that needs 8E. Sized so any one record fits a 1280-byte packet. */
static void gen_record(uint64_t *s, bool codec8_ok, struct tlt_record *r)
{
	memset(r, 0, sizeof *r);
	r->timestamp_ms = rnd(s) & 0xFFFFFFFFFFFFULL;
	r->priority = (uint8_t)rnd_below(s, 3);
	r->lon_e7 = (int32_t)(uint32_t)rnd(s);
	r->lat_e7 = (int32_t)(uint32_t)rnd(s);
	r->altitude_m = (int16_t)(uint16_t)rnd(s);
	r->angle = (uint16_t)rnd_below(s, 360);
	r->satellites = (uint8_t)rnd(s);
	r->speed_kmh = (uint16_t)rnd(s);
	uint16_t id_mask = codec8_ok ? 0xFF : 0xFFFF;
	r->event_io = (uint16_t)(rnd(s) & id_mask);
	r->n_io = (uint16_t)(rnd_below(s, 10) == 0 ? rnd_below(s, TLT_MAX_IO + 1) : rnd_below(s, 11));
	for (uint16_t i = 0; i < r->n_io; i++) {
		struct tlt_io *io = &r->io[i];
		io->id = (uint16_t)(rnd(s) & id_mask);
		io->size = SIZES[rnd_below(s, codec8_ok ? 4 : 5)];
		if (io->size == 0)
			io->nx_len = (uint16_t)rnd_below(s, 9);
		else
			io->value = io->size == 8 ? rnd(s) : rnd(s) & ((1ULL << (8 * io->size)) - 1);
	}
}

/* What the decoder gives back for R: elements in group order 1, 2, 4, 8,
 * NX, each group in R's order (the wire format groups by size). */
static void canonical(const struct tlt_record *r, struct tlt_record *c)
{
	*c = *r;
	uint16_t k = 0;
	for (int g = 0; g < 5; g++)
		for (uint16_t i = 0; i < r->n_io; i++)
			if (r->io[i].size == SIZES[g])
				c->io[k++] = r->io[i];
}

static void assert_same_record(const struct tlt_record *got, const struct tlt_record *orig, const char *where)
{
	struct tlt_record w;
	canonical(orig, &w);
	cr_assert_eq(got->timestamp_ms, w.timestamp_ms, "%s: timestamp", where);
	cr_assert_eq(got->priority, w.priority, "%s: priority", where);
	cr_assert_eq(got->lon_e7, w.lon_e7, "%s: lon", where);
	cr_assert_eq(got->lat_e7, w.lat_e7, "%s: lat", where);
	cr_assert_eq(got->altitude_m, w.altitude_m, "%s: altitude", where);
	cr_assert_eq(got->angle, w.angle, "%s: angle", where);
	cr_assert_eq(got->satellites, w.satellites, "%s: satellites", where);
	cr_assert_eq(got->speed_kmh, w.speed_kmh, "%s: speed", where);
	cr_assert_eq(got->event_io, w.event_io, "%s: event io", where);
	cr_assert_eq(got->n_io, w.n_io, "%s: n_io %u, want %u", where, got->n_io, w.n_io);
	for (uint16_t i = 0; i < w.n_io; i++) {
		cr_assert_eq(got->io[i].id, w.io[i].id, "%s: io[%u] id", where, i);
		cr_assert_eq(got->io[i].size, w.io[i].size, "%s: io[%u] size", where, i);
		if (w.io[i].size)
			cr_assert_eq(got->io[i].value, w.io[i].value, "%s: io[%u] value", where, i);
		else
			cr_assert_eq(got->io[i].nx_len, w.io[i].nx_len, "%s: io[%u] NX length", where, i);
	}
}

/* Splits RECS with tlt_avl_fit into packets of at most MAX bytes, checks
 * each packet is as full as it can be, decodes them all and compares. */
static void split_and_check(uint8_t codec, const struct tlt_record *recs, size_t n, size_t max, const char *what)
{
	static struct tlt_record got[TLT_MAX_RECORDS];
	uint8_t buf[TLT_PACKET_MAX];
	size_t i = 0, packets = 0;
	while (i < n) {
		size_t k = tlt_avl_fit(codec, recs + i, n - i, max);
		cr_assert_gt(k, 0, "%s: record %zu alone does not fit %zu bytes", what, i, max);
		int len = tlt_avl_encode(codec, recs + i, k, buf, max);
		cr_assert_gt(len, 0, "%s: encode of %zu records gave %d", what, k, len);
		cr_assert_leq((size_t)len, max, "%s: packet of %d bytes", what, len);
		if (i + k < n && k < TLT_MAX_RECORDS) {
			int more = tlt_avl_encode(codec, recs + i, k + 1, buf + 0, max);
			cr_assert(more == TLT_ERR_SPACE || more == TLT_ERR_TOO_BIG,
				  "%s: fit said %zu but %zu records also fit (%d)", what, k, k + 1, more);
			len = tlt_avl_encode(codec, recs + i, k, buf, max);
		}
		char err[160] = "";
		uint8_t c = 0;
		int got_n = tlt_avl_decode(buf, (size_t)len, got, TLT_MAX_RECORDS, &c, err, sizeof err);
		cr_assert_eq(got_n, (int)k, "%s: decode gave %d (%s), want %zu", what, got_n, err, k);
		cr_assert_eq(c, codec);
		for (size_t j = 0; j < k; j++) {
			char where[96];
			snprintf(where, sizeof where, "%s, record %zu", what, i + j);
			assert_same_record(&got[j], &recs[i + j], where);
		}
		i += k;
		packets++;
	}
	cr_assert_gt(packets, 0);
}

static bool codec8_can_carry(const struct tlt_record *r)
{
	if (r->event_io > 0xFF)
		return false;
	for (uint16_t i = 0; i < r->n_io; i++)
		if (r->io[i].id > 0xFF || r->io[i].size == 0)
			return false;
	return true;
}

Test(codec, random_round_trip)
{
	uint64_t seed = 0x7E170A1C5EEDULL;
	struct tlt_record *recs = calloc(50, sizeof *recs);
	cr_assert_not_null(recs);
	uint8_t buf[TLT_PACKET_MAX];
	for (int it = 0; it < 1000; it++) {
		size_t n = 1 + rnd_below(&seed, 50);
		bool narrow = it % 2 == 0;
		for (size_t i = 0; i < n; i++)
			gen_record(&seed, narrow, &recs[i]);
		char what[64];
		snprintf(what, sizeof what, "iteration %d, 8E", it);
		split_and_check(TLT_CODEC8E, recs, n, TLT_PACKET_MAX, what);
		if (narrow) {
			snprintf(what, sizeof what, "iteration %d, codec 8", it);
			split_and_check(TLT_CODEC8, recs, n, TLT_PACKET_MAX, what);
		} else {
			size_t first_wide = 0;
			while (first_wide < n && codec8_can_carry(&recs[first_wide]))
				first_wide++;
			if (first_wide < n)
				cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &recs[first_wide], 1, buf, sizeof buf),
					     TLT_ERR_FORMAT, "iteration %d: codec 8 took a record it cannot carry", it);
		}
	}
	free(recs);
}

Test(codec, codec8_refuses_what_it_cannot_carry)
{
	struct tlt_record r;
	memset(&r, 0, sizeof r);
	r.n_io = 1;
	r.io[0] = (struct tlt_io){ .id = 255, .size = 1, .value = 255 };
	uint8_t out[TLT_PACKET_MAX];
	cr_assert_gt(tlt_avl_encode(TLT_CODEC8, &r, 1, out, sizeof out), 0);
	r.io[0].id = 256;
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "id 256");
	cr_assert_gt(tlt_avl_encode(TLT_CODEC8E, &r, 1, out, sizeof out), 0);
	r.io[0].id = 1;
	r.event_io = 300;
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "event id 300");
	r.event_io = 1;
	r.io[0] = (struct tlt_io){ .id = 9, .size = 0, .nx_len = 3 };
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "NX element");
	cr_assert_gt(tlt_avl_encode(TLT_CODEC8E, &r, 1, out, sizeof out), 0);
	r.io[0] = (struct tlt_io){ .id = 9, .size = 1, .value = 256 };
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8E, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "value wider than size");
	r.io[0] = (struct tlt_io){ .id = 9, .size = 3, .value = 1 };
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8E, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "size 3");
	r.io[0].size = 1;
	r.n_io = TLT_MAX_IO + 1;
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8E, &r, 1, out, sizeof out), TLT_ERR_FORMAT, "n_io above TLT_MAX_IO");
	r.n_io = 1;
	cr_assert_eq(tlt_avl_encode(0x10, &r, 1, out, sizeof out), TLT_ERR_CODEC);
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &r, 0, out, sizeof out), TLT_ERR_FORMAT, "no records");
	/* Too small an OUT: refused and left untouched. */
	int len = tlt_avl_encode(TLT_CODEC8, &r, 1, out, sizeof out);
	memset(out, 0xA5, sizeof out);
	cr_assert_eq(tlt_avl_encode(TLT_CODEC8, &r, 1, out, (size_t)len - 1), TLT_ERR_SPACE);
	for (size_t i = 0; i < sizeof out; i++)
		cr_assert_eq(out[i], 0xA5, "byte %zu written by a refused encode", i);
}

static void backlog(uint8_t codec, size_t max)
{
	enum { N = 500 };
	struct tlt_record *recs = calloc(N, sizeof *recs);
	cr_assert_not_null(recs);
	uint64_t seed = 42 + max + codec;
	for (size_t i = 0; i < N; i++) {
		gen_record(&seed, true, &recs[i]);
		recs[i].timestamp_ms = 1560161086000ULL + i * 60000; /* one a minute, oldest first */
		if (recs[i].n_io > 12)
			recs[i].n_io = 12; /* a FMB630's 512 bytes must still take one */
	}
	char what[64];
	snprintf(what, sizeof what, "backlog codec 0x%02X max %zu", codec, max);
	split_and_check(codec, recs, N, max, what);
	free(recs);
}

Test(codec, fit_splits_backlog)
{
	backlog(TLT_CODEC8, TLT_PACKET_MAX);
	backlog(TLT_CODEC8E, TLT_PACKET_MAX);
	backlog(TLT_CODEC8E, 512);
	/* Identical small records: the count is capped by the one-byte number of data. */
	struct tlt_record *recs = calloc(500, sizeof *recs);
	cr_assert_not_null(recs);
	cr_assert_eq(tlt_avl_fit(TLT_CODEC8, recs, 500, 100000), (TLT_PACKET_MAX - 15) / 30);
	cr_assert_eq(tlt_avl_fit(TLT_CODEC8, recs, 500, 14), 0, "nothing fits below the frame");
	free(recs);
}

/* ---- hostile input -------------------------------------------------------- */

Test(codec, every_truncation_is_refused)
{
	for (size_t v = 0; v < NVEC(ALL_VECTORS); v++) {
		uint8_t full[TLT_PACKET_MAX];
		size_t len = from_hex(ALL_VECTORS[v], full, sizeof full);
		for (size_t cut = 0; cut < len; cut++) {
			/* An exact-size heap copy, so ASan sees any read past CUT. */
			uint8_t *p = malloc(cut ? cut : 1);
			cr_assert_not_null(p);
			memcpy(p, full, cut);
			size_t total = 0;
			char err[160] = "";
			int rc = tlt_packet_size(p, cut, &total, err, sizeof err);
			cr_assert(rc == TLT_NEED_MORE || rc < 0, "vector %zu cut at %zu: packet_size %d", v, cut, rc);
			struct tlt_record r[4];
			int n = tlt_avl_decode(p, cut, r, 4, NULL, err, sizeof err);
			cr_assert_lt(n, 0, "vector %zu cut at %zu: decode %d", v, cut, n);
			cr_assert_neq(err[0], '\0', "no message");
			char text[64];
			cr_assert_lt(tlt_c12_decode(p, cut, NULL, text, sizeof text, NULL, 0), 0);
			free(p);
		}
		size_t total = 0;
		cr_assert_eq(tlt_packet_size(full, len, &total, NULL, 0), TLT_OK);
		cr_assert_eq(total, len);
	}
}

Test(codec, every_bit_flip_is_refused)
{
	for (size_t v = 0; v < NVEC(ALL_VECTORS); v++) {
		uint8_t buf[TLT_PACKET_MAX];
		size_t len = from_hex(ALL_VECTORS[v], buf, sizeof buf);
		bool avl = v < NVEC(AVL_VECTORS);
		for (size_t bit = 0; bit < len * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
			char err[160] = "";
			struct tlt_record r[4];
			char text[64];
			int n = avl ? tlt_avl_decode(buf, len, r, 4, NULL, err, sizeof err)
				    : tlt_c12_decode(buf, len, NULL, text, sizeof text, err, sizeof err);
			cr_assert(n == TLT_ERR_CRC || n == TLT_ERR_FORMAT || n == TLT_ERR_TOO_BIG,
				  "vector %zu, bit %zu flipped: %d (%s)", v, bit, n, err);
			/* Inside the CRC's span, the CRC is what catches it. */
			if (bit / 8 >= 8)
				cr_assert_eq(n, TLT_ERR_CRC, "vector %zu, bit %zu: %d (%s)", v, bit, n, err);
			buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
		}
	}
}

static size_t load(const char *hex, uint8_t *buf)
{
	return from_hex(hex, buf, TLT_PACKET_MAX + 64);
}

Test(codec, record_counts_must_agree)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	size_t len = load(VEC8_TWO, buf);
	buf[len - 5] = 1; /* number of data 2 */
	refit_frame(buf, len);
	struct tlt_record r[4];
	char err[160] = "";
	cr_assert_eq(tlt_avl_decode(buf, len, r, 4, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert(strstr(err, "number of data"), "%s", err);
	buf[9] = 1; /* both say 1, but two records are there */
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 4, NULL, err, sizeof err), TLT_ERR_FORMAT);
	buf[9] = buf[len - 5] = 3; /* both say 3, two are there */
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 4, NULL, err, sizeof err), TLT_ERR_FORMAT);
	buf[9] = buf[len - 5] = 0;
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 4, NULL, err, sizeof err), TLT_ERR_FORMAT);
	/* A packet with no records at all is well framed but not an AVL packet. */
	uint8_t empty[15] = { 0, 0, 0, 0, 0, 0, 0, 3, TLT_CODEC8, 0, 0 };
	refit_frame(empty, sizeof empty);
	cr_assert_eq(tlt_avl_decode(empty, sizeof empty, r, 4, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert(strstr(err, "no records"), "%s", err);
	/* Room for fewer records than the packet holds: nothing is written past CAP. */
	len = load(VEC8_TWO, buf);
	struct tlt_record guard[2];
	memset(guard, 0x5A, sizeof guard);
	cr_assert_eq(tlt_avl_decode(buf, len, guard, 1, NULL, err, sizeof err), TLT_ERR_SPACE);
	const uint8_t *g = (const uint8_t *)&guard[1];
	for (size_t i = 0; i < sizeof guard[1]; i++)
		cr_assert_eq(g[i], 0x5A, "byte %zu of the record past CAP written", i);
}

Test(codec, io_total_count_must_match_groups)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	size_t len = load(VEC8_ONE, buf);
	buf[35] = 4; /* total count: 5 elements are in the groups */
	refit_frame(buf, len);
	struct tlt_record r[1];
	char err[160] = "";
	cr_assert_eq(tlt_avl_decode(buf, len, r, 1, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert_str_eq(err, "record 1: IO total count 4 at byte 35 differs from the 5 elements in its groups");
}

Test(codec, unknown_codec)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	size_t len = load(VEC8_ONE, buf);
	buf[8] = 0x10;
	refit_frame(buf, len);
	struct tlt_record r[1];
	char err[160] = "";
	cr_assert_eq(tlt_avl_decode(buf, len, r, 1, NULL, err, sizeof err), TLT_ERR_CODEC);
	cr_assert(strstr(err, "0x10") && strstr(err, "byte 8"), "%s", err);
}

Test(codec, length_of_100000_is_too_big)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	size_t len = load(VEC8_ONE, buf);
	buf[4] = 0x00, buf[5] = 0x01, buf[6] = 0x86, buf[7] = 0xA0; /* 100000 */
	size_t total = 0;
	char err[160] = "";
	/* Refused from the header alone: no waiting for 100 kB. */
	cr_assert_eq(tlt_packet_size(buf, 8, &total, err, sizeof err), TLT_ERR_TOO_BIG);
	cr_assert_eq(tlt_packet_size(buf, len, &total, err, sizeof err), TLT_ERR_TOO_BIG);
	struct tlt_record r[1];
	cr_assert_eq(tlt_avl_decode(buf, len, r, 1, NULL, err, sizeof err), TLT_ERR_TOO_BIG);
	buf[4] = 0xFF; /* and far beyond */
	cr_assert_eq(tlt_packet_size(buf, 8, &total, err, sizeof err), TLT_ERR_TOO_BIG);
	/* The largest allowed packet is accepted by the framing. */
	buf[4] = 0, buf[5] = 0, buf[6] = (TLT_PACKET_MAX - 12) >> 8, buf[7] = (TLT_PACKET_MAX - 12) & 0xFF;
	cr_assert_eq(tlt_packet_size(buf, 8, &total, err, sizeof err), TLT_NEED_MORE);
	buf[7]++;
	cr_assert_eq(tlt_packet_size(buf, 8, &total, err, sizeof err), TLT_ERR_TOO_BIG);
}

Test(codec, length_that_lies_is_refused)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	struct tlt_record r[2];
	char err[160] = "";

	/* Says fewer bytes than the records use: one data byte dropped from the
	 * frame (the CRC re-made), so the records run into number of data 2. */
	size_t len = load(VEC8_ONE, buf);
	memmove(buf + len - 6, buf + len - 5, 5);
	len--;
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert_str_eq(err, "record 1: IO group of 8-byte values runs past the packet at byte 52");

	/* Says more: two spare bytes between the records and number of data 2. */
	len = load(VEC8_ONE, buf);
	memmove(buf + len - 3, buf + len - 5, 5);
	buf[len - 5] = buf[len - 4] = 0;
	len += 2;
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert(strstr(err, "end at byte 61"), "%s", err);

	/* Says more than the buffer holds, or less: the frame itself is refused. */
	len = load(VEC8_ONE, buf);
	buf[7]++;
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	size_t total = 0;
	cr_assert_eq(tlt_packet_size(buf, len, &total, NULL, 0), TLT_NEED_MORE);
	buf[7] -= 2;
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	buf[4] = buf[5] = buf[6] = 0, buf[7] = 2;
	cr_assert_eq(tlt_packet_size(buf, len, &total, NULL, 0), TLT_ERR_FORMAT, "data length 2");

	/* In the second record, the message names it. */
	len = load(VEC8_TWO, buf);
	buf[68] = 9; /* record 2's group of 1-byte values claims 9 items */
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert_str_eq(err, "record 2: IO group of 1-byte values runs past the packet at byte 69");

	/* An NX length running past the packet (8E). */
	len = load(VEC8E_ONE, buf);
	cr_assert_eq(buf[len - 7], 0);
	/* Room for one NX element header (id 2, length 2) before number of data 2. */
	memmove(buf + len - 1, buf + len - 5, 5);
	buf[len - 6] = 1;                    /* NX count 1 */
	buf[len - 5] = 0, buf[len - 4] = 7;  /* id 7 */
	buf[len - 3] = 0, buf[len - 2] = 50; /* 50 bytes that are not there */
	len += 4;
	buf[36] = 0, buf[37] = 6; /* IO total count 6 */
	refit_frame(buf, len);
	cr_assert_eq(tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert_str_eq(err, "record 1: value of NX IO element 7 (50 bytes) runs past the packet at byte 85");
	buf[len - 6] = 0; /* ...and with a length of 0 it is a good 8E packet */
	refit_frame(buf, len);
	int n = tlt_avl_decode(buf, len, r, 2, NULL, err, sizeof err);
	cr_assert_eq(n, 1, "%d %s", n, err);
	cr_assert_eq(r[0].n_io, 6);
	cr_assert_eq(r[0].io[5].size, 0);
	cr_assert_eq(r[0].io[5].id, 7);
	uint64_t v;
	cr_assert_not(tlt_record_io(&r[0], 7, &v), "an NX element has no value to give");
}

Test(codec, nonzero_preamble)
{
	uint8_t buf[TLT_PACKET_MAX + 64];
	for (size_t at = 0; at < 4; at++) {
		size_t len = load(VEC8_ONE, buf);
		buf[at] = 0x01;
		size_t total = 0;
		char err[160] = "";
		/* Refused as soon as the bad byte has arrived. */
		cr_assert_eq(tlt_packet_size(buf, at + 1, &total, err, sizeof err), TLT_ERR_FORMAT, "byte %zu", at);
		cr_assert_eq(tlt_packet_size(buf, len, &total, err, sizeof err), TLT_ERR_FORMAT);
		struct tlt_record r[1];
		cr_assert_eq(tlt_avl_decode(buf, len, r, 1, NULL, err, sizeof err), TLT_ERR_FORMAT);
		cr_assert(strstr(err, "preamble"), "%s", err);
	}
}

/* ---- login ---------------------------------------------------------------- */

Test(codec, login)
{
	const uint8_t ok[] = "\x00\x0F" "356307042441013" "\x00\x08";
	char imei[16];
	size_t used = 0;
	char err[160] = "";
	cr_assert_eq(tlt_login_parse(ok, 17, imei, &used, err, sizeof err), TLT_OK, "%s", err);
	cr_assert_str_eq(imei, "356307042441013");
	cr_assert_eq(used, 17);
	/* Bytes after the frame belong to the next one. */
	cr_assert_eq(tlt_login_parse(ok, 19, imei, &used, err, sizeof err), TLT_OK);
	cr_assert_eq(used, 17);
	for (size_t cut = 0; cut < 17; cut++)
		cr_assert_eq(tlt_login_parse(ok, cut, imei, &used, err, sizeof err), TLT_NEED_MORE, "cut %zu", cut);

	uint8_t out[32];
	cr_assert_eq(tlt_login_encode("356307042441013", out, sizeof out), 17);
	cr_assert_arr_eq(out, ok, 17);
	cr_assert_eq(tlt_login_encode("356307042441013", out, 16), 0, "no room");
	cr_assert_eq(tlt_login_encode("35630704244101X", out, sizeof out), 0);
	cr_assert_eq(tlt_login_encode("", out, sizeof out), 0);
	cr_assert_eq(tlt_login_encode("3563070424410130", out, sizeof out), 0, "16 digits");
}

Test(codec, login_refusals)
{
	char imei[16];
	size_t used = 0;
	char err[160] = "";
	uint8_t bad[17];
	memcpy(bad, "\x00\x0F" "3563070A2441013", 17);
	cr_assert_eq(tlt_login_parse(bad, 17, imei, &used, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert(strstr(err, "byte 9"), "%s", err);
	/* A non-digit is refused as soon as it arrives. */
	cr_assert_eq(tlt_login_parse(bad, 10, imei, &used, err, sizeof err), TLT_ERR_FORMAT);

	const uint8_t zero[] = { 0x00, 0x00 };
	cr_assert_eq(tlt_login_parse(zero, 2, imei, &used, err, sizeof err), TLT_ERR_FORMAT);

	/* Length 200: refused from the two length bytes, without waiting. */
	uint8_t big[202];
	big[0] = 0, big[1] = 200;
	memset(big + 2, '1', 200);
	cr_assert_eq(tlt_login_parse(big, 2, imei, &used, err, sizeof err), TLT_ERR_FORMAT);
	cr_assert_eq(tlt_login_parse(big, sizeof big, imei, &used, err, sizeof err), TLT_ERR_FORMAT);
	/* 16 digits would not fit IMEI[16]. */
	big[1] = 16;
	cr_assert_eq(tlt_login_parse(big, 18, imei, &used, err, sizeof err), TLT_ERR_FORMAT);
}

/* ---- fuzz ----------------------------------------------------------------- */

/* Runs every decoder on BUF; what they accept must be consistent. */
static void feed(const uint8_t *src, size_t len, int it)
{
	static struct tlt_record recs[TLT_MAX_RECORDS];
	/* Exact-size heap copy: an over-read is an ASan report, not luck. */
	uint8_t *buf = malloc(len ? len : 1);
	cr_assert_not_null(buf);
	memcpy(buf, src, len);
	char err[160];
	size_t total = 0;
	int rc = tlt_packet_size(buf, len, &total, err, sizeof err);
	cr_assert(rc == TLT_OK || rc == TLT_NEED_MORE || (rc < 0 && rc >= TLT_ERR_SPACE), "it %d: %d", it, rc);
	if (rc == TLT_OK)
		cr_assert(total <= len && total <= TLT_PACKET_MAX, "it %d", it);

	err[0] = '\0';
	uint8_t codec = 0;
	size_t cap = it % 3 == 0 ? 1 : TLT_MAX_RECORDS;
	int n = tlt_avl_decode(buf, len, recs, cap, &codec, err, sizeof err);
	if (n < 0) {
		cr_assert(n >= TLT_ERR_SPACE, "it %d: %d", it, n);
		cr_assert_neq(err[0], '\0', "it %d: error %d without a message", it, n);
	} else {
		cr_assert(n >= 1 && (size_t)n <= cap, "it %d: %d records", it, n);
		cr_assert(rc == TLT_OK && total == len, "it %d: decode took what packet_size did not", it);
		/* Codec 8 keeps every byte: what it accepts re-encodes identically
		 * (unless a record was cut at TLT_MAX_IO). */
		bool whole = codec == TLT_CODEC8;
		for (int i = 0; i < n; i++)
			whole = whole && recs[i].n_io < TLT_MAX_IO;
		if (whole) {
			uint8_t out[TLT_PACKET_MAX];
			int m = tlt_avl_encode(codec, recs, (size_t)n, out, sizeof out);
			cr_assert_eq(m, (int)len, "it %d", it);
			cr_assert_arr_eq(out, buf, len, "it %d: accepted packet re-encodes differently", it);
		}
	}
	char text[32];
	uint8_t type;
	int t = tlt_c12_decode(buf, len, &type, text, sizeof text, err, sizeof err);
	cr_assert(t < 0 ? t >= TLT_ERR_SPACE : (t < (int)sizeof text && text[t] == '\0'), "it %d: c12 %d", it, t);
	char imei[16];
	size_t used = 0;
	rc = tlt_login_parse(buf, len, imei, &used, err, sizeof err);
	if (rc == TLT_OK)
		cr_assert(used <= len && strlen(imei) == used - 2, "it %d", it);
	free(buf);
}

Test(codec, fuzz_never_crashes)
{
	uint64_t seed = 0xF022C0DEC0DEULL;
	uint8_t buf[TLT_PACKET_MAX + 64];
	int accepted = 0;
	for (int it = 0; it < 20000; it++) {
		size_t len;
		int kind = (int)rnd_below(&seed, 4);
		if (kind == 0) {
			/* Random bytes, half of them behind a sound frame so the
			 * parser, not the CRC, meets them. */
			len = (size_t)rnd_below(&seed, 300);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd(&seed);
			if (len >= 15 && rnd_below(&seed, 2)) {
				memset(buf, 0, 4);
				buf[8] = rnd_below(&seed, 2) ? TLT_CODEC8 : TLT_CODEC8E;
				refit_frame(buf, len);
			}
		} else {
			const char *v = ALL_VECTORS[rnd_below(&seed, NVEC(ALL_VECTORS))];
			len = load(v, buf);
			int edits = 1 + (int)rnd_below(&seed, 4);
			for (int e = 0; e < edits; e++) {
				size_t at = 8 + (size_t)rnd_below(&seed, len - 12);
				int op = (int)rnd_below(&seed, 4);
				if (op == 0 && len < TLT_PACKET_MAX) { /* insert */
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = (uint8_t)rnd(&seed);
					len++;
				} else if (op == 1 && len > 16) { /* delete */
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				} else if (op == 2) { /* a small count or length */
					buf[at] = (uint8_t)rnd_below(&seed, 4);
				} else {
					buf[at] = (uint8_t)rnd(&seed);
				}
			}
			if (kind != 3)
				refit_frame(buf, len);
		}
		feed(buf, len, it);
		struct tlt_record r[1];
		accepted += tlt_avl_decode(buf, len, r, 1, NULL, NULL, 0) > 0;
	}
	/* The mutations must reach past the CRC into the parser sometimes. */
	cr_assert_gt(accepted, 0);
}

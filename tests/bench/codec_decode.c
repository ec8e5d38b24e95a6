/*
 * codec_decode.c - benchmark: tlt_avl_decode over 1,000,000 codec 8E records
 * (packets of at most TLT_PACKET_MAX bytes built with tlt_avl_encode),
 * against a memcpy of the same packets into the same scratch buffer, in
 * the same run.
 *
 * memcpy is the floor: it touches every byte once, as the decoder must.
 * The ratio of the two times is what parsing, bounds checks and the CRC
 * cost on top of that; records/s is the figure an ingest server can take.
 * Run: make bench (or build/bench/codec_decode [RECORDS]).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "teltonika_codec.h"

#define RUNS 5

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* A periodic record as docs/uplink.md describes them: GSM signal, external
 * and battery voltage, GNSS status, ignition, movement, odometer. */
static void make_record(uint64_t *s, uint64_t t_ms, struct tlt_record *r)
{
	static const struct { uint16_t id; uint8_t size; } ios[] = {
		{ 21, 1 }, { 69, 1 }, { 239, 1 }, { 240, 1 }, { 66, 2 }, { 67, 2 }, { 16, 4 }, { 11, 8 },
	};
	r->timestamp_ms = t_ms;
	r->priority = 0;
	r->lon_e7 = (int32_t)(250000000 + rnd(s) % 1000000);
	r->lat_e7 = (int32_t)(540000000 + rnd(s) % 1000000);
	r->altitude_m = (int16_t)(rnd(s) % 300);
	r->angle = (uint16_t)(rnd(s) % 360);
	r->satellites = (uint8_t)(rnd(s) % 16);
	r->speed_kmh = (uint16_t)(rnd(s) % 130);
	r->event_io = 0;
	r->n_io = sizeof ios / sizeof ios[0];
	for (uint16_t i = 0; i < r->n_io; i++) {
		uint64_t v = rnd(s);
		if (ios[i].size < 8)
			v &= (1ULL << (8 * ios[i].size)) - 1;
		r->io[i] = (struct tlt_io){ .id = ios[i].id, .size = ios[i].size, .value = v };
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long want = argc > 1 ? atol(argv[1]) : 1000000;
	if (want <= 0) {
		fprintf(stderr, "usage: codec_decode [RECORDS]\n");
		return 2;
	}
	/* Packets go end to end in one arena; OFF[i] is where packet i starts. */
	size_t arena_cap = (size_t)want * 128 + TLT_PACKET_MAX;
	uint8_t *arena = malloc(arena_cap);
	size_t *off = malloc(((size_t)want + 1) * sizeof *off);
	struct tlt_record *recs = calloc(TLT_MAX_RECORDS, sizeof *recs);
	if (!arena || !off || !recs) {
		fprintf(stderr, "codec_decode: out of memory\n");
		return 1;
	}
	uint64_t seed = 0xC0DEC8E;
	size_t used = 0, npk = 0;
	long made = 0;
	uint64_t t_ms = 1700000000000ULL;
	while (made < want) {
		size_t n = 0;
		while (n < TLT_MAX_RECORDS && made + (long)n < want) {
			make_record(&seed, t_ms, &recs[n]);
			t_ms += 1000;
			n++;
		}
		size_t k = tlt_avl_fit(TLT_CODEC8E, recs, n, TLT_PACKET_MAX);
		int len = tlt_avl_encode(TLT_CODEC8E, recs, k, arena + used, arena_cap - used);
		if (k == 0 || len < 0) {
			fprintf(stderr, "codec_decode: encode failed (%zu records, %d)\n", k, len);
			return 1;
		}
		off[npk++] = used;
		used += (size_t)len;
		made += (long)k;
		t_ms -= (n - k) * 1000; /* records that did not fit start the next packet */
	}
	off[npk] = used;

	int64_t dec[RUNS], cpy[RUNS];
	uint8_t scratch[TLT_PACKET_MAX];
	volatile uint64_t sink = 0;
	for (int run = 0; run < RUNS; run++) {
		int64_t t0 = now_ns();
		long got = 0;
		for (size_t i = 0; i < npk; i++) {
			char err[128];
			int n = tlt_avl_decode(arena + off[i], off[i + 1] - off[i], recs, TLT_MAX_RECORDS, NULL, err,
					       sizeof err);
			if (n < 0) {
				fprintf(stderr, "codec_decode: packet %zu refused: %s\n", i, err);
				return 1;
			}
			got += n;
			sink += recs[n - 1].timestamp_ms;
		}
		dec[run] = now_ns() - t0;
		if (got != made) {
			fprintf(stderr, "codec_decode: decoded %ld records, encoded %ld\n", got, made);
			return 1;
		}
		t0 = now_ns();
		for (size_t i = 0; i < npk; i++) {
			memcpy(scratch, arena + off[i], off[i + 1] - off[i]);
			sink += scratch[off[i + 1] - off[i] - 1];
		}
		cpy[run] = now_ns() - t0;
	}
	qsort(dec, RUNS, sizeof dec[0], cmp_i64);
	qsort(cpy, RUNS, sizeof cpy[0], cmp_i64);
	double d = (double)dec[RUNS / 2] / 1e9, c = (double)cpy[RUNS / 2] / 1e9;
	printf("codec 8E: %ld records in %zu packets, %.1f MB (median of %d runs)\n", made, npk, (double)used / 1e6,
	       RUNS);
	printf("%-22s %8.1f ms  %12.0f records/s  %8.1f MB/s\n", "tlt_avl_decode", d * 1e3, (double)made / d,
	       (double)used / d / 1e6);
	printf("%-22s %8.1f ms  %12.0f records/s  %8.1f MB/s\n", "memcpy (baseline)", c * 1e3, (double)made / c,
	       (double)used / c / 1e6);
	printf("decode / memcpy time: %.1fx\n", d / c);
	free(recs);
	free(off);
	free(arena);
	return 0;
}

/*
 * teltonika_codec.h - Teltonika's TCP telematics framing: login, AVL data
 * packets (codec 8 and 8 Extended) and GPRS commands (codec 12).
 *
 * Pure encoding and decoding over byte buffers: no sockets, no allocation
 * beyond what the caller passes. Both ends use it: the rig's ingest server
 * decodes what trackers send, the simulated rack encodes it. Layouts and
 * the official test vectors are in shared/notes/hardware-facts.md.
 *
 * Every decoder checks lengths before reading and never trusts a length
 * field: a truncated, oversize or lying packet is an error with a message
 * naming what was wrong and at which byte, never a crash or an over-read.
 */
#ifndef TRACKRIG_TELTONIKA_CODEC_H
#define TRACKRIG_TELTONIKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLT_CODEC8 0x08
#define TLT_CODEC8E 0x8E
#define TLT_CODEC12 0x0C

#define TLT_PACKET_MAX 1280  /* most models; larger packets are refused */
#define TLT_MAX_IO 64        /* IO elements kept per record */
#define TLT_MAX_RECORDS 255  /* number of data is one byte */

enum tlt_err {
	TLT_OK = 0,
	TLT_NEED_MORE = 1,        /* not an error: the packet is not complete yet */
	TLT_ERR_FORMAT = -1,      /* preamble, counts or layout wrong */
	TLT_ERR_CRC = -2,         /* CRC-16/IBM mismatch */
	TLT_ERR_CODEC = -3,       /* a codec id this decoder does not know */
	TLT_ERR_TOO_BIG = -4,     /* the length field says more than TLT_PACKET_MAX */
	TLT_ERR_SPACE = -5,       /* the output buffer is too small */
};

/* CRC-16/IBM (ARC): reflected poly 0xA001, init 0. check("123456789") = 0xBB3D. */
uint16_t tlt_crc16(const uint8_t *data, size_t len);

/* ---- login: 2-byte length + IMEI in ASCII ---- */

/* Parses a login frame from BUF (LEN bytes available). Returns TLT_OK with the
 * IMEI (NUL-terminated, at most 15 digits + NUL in IMEI) and *USED bytes
 * consumed, TLT_NEED_MORE, or TLT_ERR_FORMAT (length 0 or above 15, or not
 * all digits). */
int tlt_login_parse(const uint8_t *buf, size_t len, char imei[16], size_t *used, char *err, size_t errlen);
size_t tlt_login_encode(const char *imei, uint8_t *out, size_t cap);

/* ---- AVL records ---- */

struct tlt_io {
	uint16_t id;
	uint8_t size;        /* 1, 2, 4 or 8; 0 for an NX (variable) element */
	uint64_t value;      /* fixed-size values */
	uint16_t nx_len;     /* NX elements: length of the value (not kept) */
};

struct tlt_record {
	uint64_t timestamp_ms;   /* device time, ms since the Unix epoch, UTC */
	uint8_t priority;        /* 0 low, 1 high, 2 panic */
	int32_t lon_e7, lat_e7;  /* degrees x 1e7 */
	int16_t altitude_m;
	uint16_t angle;
	uint8_t satellites;
	uint16_t speed_kmh;
	uint16_t event_io;       /* the IO id that caused the record, 0 if none */
	uint16_t n_io;
	struct tlt_io io[TLT_MAX_IO];
};

/* Value of IO ID in REC; false when absent. */
bool tlt_record_io(const struct tlt_record *rec, uint16_t id, uint64_t *value);

/* ---- AVL data packet: preamble, length, codec, records, count, CRC ---- */

/* Size of the packet starting at BUF once enough bytes are there: returns
 * TLT_OK with *TOTAL set, TLT_NEED_MORE, or an error (bad preamble, length
 * above TLT_PACKET_MAX). Lets a server read exactly one packet. */
int tlt_packet_size(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen);

/* Decodes one complete AVL packet (codec 8 or 8E) of LEN bytes into up to
 * CAP records. Returns the number of records (>= 1) or a negative tlt_err;
 * ERR names the problem and the byte offset. Nothing is written to RECS
 * beyond what the packet really holds; a failed decode leaves RECS
 * unspecified, and the caller must store nothing from it. */
int tlt_avl_decode(const uint8_t *buf, size_t len, struct tlt_record *recs, size_t cap, uint8_t *codec,
		   char *err, size_t errlen);

/* Encodes N records as one packet with CODEC (8 or 8E) into OUT. Returns the
 * packet length, or a negative tlt_err (TLT_ERR_SPACE when it would exceed
 * CAP). */
int tlt_avl_encode(uint8_t codec, const struct tlt_record *recs, size_t n, uint8_t *out, size_t cap);

/* How many of RECS (from the first) fit one packet of at most MAX bytes:
 * a backlog becomes many packets. */
size_t tlt_avl_fit(uint8_t codec, const struct tlt_record *recs, size_t n, size_t max);

/* ---- codec 12: GPRS command (type 5) and response (type 6) ---- */

#define TLT_C12_COMMAND 0x05
#define TLT_C12_RESPONSE 0x06

/* Encodes TEXT as a codec 12 message of TYPE. Returns its length or a
 * negative tlt_err. */
int tlt_c12_encode(uint8_t type, const char *text, size_t text_len, uint8_t *out, size_t cap);

/* Decodes one complete codec 12 packet: *TYPE and the text (NUL-terminated,
 * truncated to TEXT_CAP-1). Returns the text length or a negative tlt_err. */
int tlt_c12_decode(const uint8_t *buf, size_t len, uint8_t *type, char *text, size_t text_cap, char *err,
		   size_t errlen);

#endif

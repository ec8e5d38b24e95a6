/*
 * modbus_link.h - one Modbus connection (TCP or RTU) to one unit.
 *
 * Power supplies and relay boards speak Modbus over a TCP gateway or a
 * serial line; their drivers only see this small face and never know which
 * transport is underneath (libmodbus keeps framing per backend).
 *
 * Transport strings:
 *   "tcp://HOST:PORT"          HOST a name or address, PORT 1..65535
 *   "rtu:/dev/ttyUSB0@115200"  always 8N1 (every supported device uses it)
 *
 * Every call returns MODBUS_LINK_OK (0) or a negative enum modbus_link_err
 * and leaves a message in modbus_link_error() naming the transport, the
 * unit, the operation with its register or coil, and the reason:
 * "tcp://10.0.0.5:502 unit 7: read holding registers 0..18: no answer
 * within 500 ms (unit absent or wrong unit id?)".
 * A unit that never answers and a wrong unit id look the same on the wire
 * (a request for another unit gets no answer), so both are TIMEOUT.
 *
 * Recovery: a unit or gateway that stalls (a busy supply, a USB-serial
 * adapter hiccup, a gateway restarting) costs retries, not an error. After
 * a failed attempt (no answer, an answer that is not this request's, a lost
 * connection, a "busy" or "gateway target" exception) the link is put back
 * in step first (TCP: a fresh connection, so a late reply can never be read
 * as the answer to the next request; RTU: the line drained until quiet),
 * then the same request is sent again, until the retry budget
 * (MODBUS_LINK_DEFAULT_RETRY_MS, counted from the first attempt) is spent.
 * Every request the drivers make is idempotent, so repeating one is safe.
 * A real "no" (illegal address, illegal value, ...) is never retried.
 */
#ifndef TRACKRIG_MODBUS_LINK_H
#define TRACKRIG_MODBUS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum modbus_link_err {
	MODBUS_LINK_OK = 0,
	MODBUS_LINK_ERR_ARG = -1,       /* bad transport string, unit, address, count */
	MODBUS_LINK_ERR_CONNECT = -2,   /* connection refused, port cannot be opened */
	MODBUS_LINK_ERR_TIMEOUT = -3,   /* no answer in time (absent unit, wrong unit id) */
	MODBUS_LINK_ERR_EXCEPTION = -4, /* the unit answered with a Modbus exception */
	MODBUS_LINK_ERR_GONE = -5,      /* connection lost and one reconnect failed */
	MODBUS_LINK_ERR_IO = -6,        /* malformed answer or other OS error */
};

#define MODBUS_LINK_DEFAULT_TIMEOUT_MS 500
/* Retries of one request stop this long after its first attempt (plus the
 * attempt then in flight): a stall of up to 5 s is ridden out. */
#define MODBUS_LINK_DEFAULT_RETRY_MS 8000
#define MODBUS_LINK_DRAIN_QUIET_MS 100      /* RTU: silence that ends a drain */
#define MODBUS_LINK_RECONNECT_PAUSE_MS 100  /* between refused reconnects */

typedef struct modbus_link modbus_link;

/* Opens TRANSPORT to UNIT (0..255 over TCP, 1..247 over RTU) and connects,
 * with a response timeout of MODBUS_LINK_DEFAULT_TIMEOUT_MS. On failure
 * *OUT is NULL, the reason is in ERR (ERRLEN bytes, may be 0). */
int modbus_link_open(const char *transport, int unit, modbus_link **out,
		     char *err, size_t errlen);

void modbus_link_close(modbus_link *l);

/* Checks the shape of TRANSPORT ("tcp://HOST:PORT" or "rtu:DEVICE@BAUD")
 * without opening anything: the Modbus drivers' check_transport hook, so a
 * rack file's typo is caught when it is read. Returns 0, or -1 with
 * "'tcp://host': expected tcp://HOST:PORT" in ERR. */
int modbus_link_check_transport(const char *transport, char *err, size_t errlen);

/* Sets how long each request waits for its answer (MS > 0). */
int modbus_link_set_timeout(modbus_link *l, int ms);

/* Sets the retry budget of each request (MS >= 0; 0: one attempt only). */
int modbus_link_set_retry_budget(modbus_link *l, int ms);

/* FC03: reads N (1..125) holding registers from ADDR into DEST. */
int modbus_link_read_registers(modbus_link *l, int addr, int n, uint16_t *dest);

/* FC06: writes VALUE to holding register ADDR. */
int modbus_link_write_register(modbus_link *l, int addr, uint16_t value);

/* FC05: sets coil ADDR on (0xFF00) or off (0x0000). */
int modbus_link_write_coil(modbus_link *l, int addr, bool on);

/* FC01: reads N (1..2000) coils from ADDR into DEST. */
int modbus_link_read_coils(modbus_link *l, int addr, int n, bool *dest);

/* The last failure's message, or "". */
const char *modbus_link_error(const modbus_link *l);

/* "TRANSPORT unit N", for callers' own messages. */
const char *modbus_link_where(const modbus_link *l);

/* The exception code (1..11) of the last EXCEPTION failure, else 0. */
int modbus_link_exception(const modbus_link *l);

/* Short text for an error code ("timeout", "exception", ...). */
const char *modbus_link_strerror(int err);

#endif

/*
 * tracker_teltonika.h - the Teltonika command set's parts, for command sets
 * built on it (the agent dialect is Teltonika's commands plus trackrig's
 * declared extensions, docs/agent-protocol.md). Inside drivers/ only.
 */
#ifndef TRACKRIG_TRACKER_TELTONIKA_H
#define TRACKRIG_TRACKER_TELTONIKA_H

#include "tracker.h"

const char *teltonika_answer_prefix(const char *cmd);
bool teltonika_is_refusal(const char *line);
int teltonika_identify(tracker *t, struct tracker_identity *id, int timeout_ms);
/* As teltonika_identify, leaving getver's answer in GETVER (for the
 * extension fields a command set adds to it). */
int teltonika_identify_getver(tracker *t, struct tracker_identity *id, char *getver, size_t glen, int timeout_ms);
int teltonika_ping(tracker *t, char *imei, size_t len, int timeout_ms);
int teltonika_status(tracker *t, struct tracker_status *st, int timeout_ms);
/* As teltonika_status, leaving getinfo's answer in GETINFO. */
int teltonika_status_getinfo(tracker *t, struct tracker_status *st, char *getinfo, size_t glen, int timeout_ms);
int teltonika_restarts(tracker *t, struct tracker_restarts *r, int timeout_ms);
int teltonika_buffered(tracker *t, long *records, int timeout_ms);
int teltonika_server_get(tracker *t, struct tracker_server *srv, int timeout_ms);
int teltonika_server_set(tracker *t, const struct tracker_server *srv, int timeout_ms);
int teltonika_report_period_set(tracker *t, int seconds, int timeout_ms);
int teltonika_input_get(tracker *t, int n, long *value, int timeout_ms);
int teltonika_output_set(tracker *t, int n, bool on, int timeout_ms);
int teltonika_in_service(tracker *t, bool *in_service, int timeout_ms);
int teltonika_data_session(tracker *t, enum tracker_data_session *s, int timeout_ms);
int teltonika_reboot(tracker *t, int timeout_ms);

/* Teltonika's reset-source number (getinfo RS) as a name, "" unknown. */
const char *teltonika_reset_name(long rs);

#endif

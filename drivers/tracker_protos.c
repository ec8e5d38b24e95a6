/* tracker_protos.c - every tracker command set the rig knows. A new vendor
 * is one file defining its struct tracker_proto and one line here. */
#include "tracker.h"

extern const struct tracker_proto tracker_teltonika;
extern const struct tracker_proto tracker_agent;

const struct tracker_proto *const tracker_protos[] = {
	&tracker_teltonika,
	&tracker_agent,
	NULL,
};

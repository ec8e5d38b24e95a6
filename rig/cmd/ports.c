/* cmd/ports.c - `rig ports`: serial ports as libserialport sees them. */
#include "cli.h"
#include "json.h"
#include "serial.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

const char cmd_ports_usage[] =
	"usage: rig ports [--json]\n\n"
	"Lists the serial ports of this machine through libserialport, with USB\n"
	"VID:PID, serial number, manufacturer and product where the port is USB.\n"
	"Pseudo-terminals (simulated trackers) are not listed: they are no ports\n"
	"to libserialport.\n";

int cmd_ports(int argc, char **argv)
{
	static const struct option longopts[] = { { "json", no_argument, 0, 'j' }, { 0, 0, 0, 0 } };
	bool as_json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("ports", longopts, argv[optind - 1]);
		as_json = true;
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "ports", "unexpected argument '%s'", argv[optind]);
	struct serial_port_info *ports;
	size_t n;
	if (serial_list(&ports, &n) != SERIAL_OK)
		return cli_fail(RIG_EXIT_INFRA, "ports", "%s", serial_open_error());
	if (as_json) {
		struct json j;
		json_init(&j, stdout, true);
		json_arr_begin(&j, NULL);
		for (size_t i = 0; i < n; i++) {
			const struct serial_port_info *p = &ports[i];
			json_obj_begin(&j, NULL);
			json_str(&j, "path", p->path);
			json_str(&j, "transport", p->transport);
			json_str(&j, "description", p->description);
			if (p->usb_vid >= 0) {
				char id[16];
				snprintf(id, sizeof id, "%04x:%04x", p->usb_vid, p->usb_pid);
				json_str(&j, "usb_id", id);
				json_str(&j, "usb_serial", p->usb_serial);
				json_str(&j, "manufacturer", p->usb_manufacturer);
				json_str(&j, "product", p->usb_product);
				json_int(&j, "usb_bus", p->usb_bus);
				json_int(&j, "usb_address", p->usb_address);
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_end(&j);
	} else if (n == 0) {
		printf("no serial ports found\n");
	} else {
		printf("%-20s  %-9s  %-9s  %-16s  %-20s  %s\n", "PORT", "TRANSPORT", "USB ID", "SERIAL", "MANUFACTURER", "PRODUCT");
		for (size_t i = 0; i < n; i++) {
			const struct serial_port_info *p = &ports[i];
			char id[16] = "-";
			if (p->usb_vid >= 0)
				snprintf(id, sizeof id, "%04x:%04x", p->usb_vid, p->usb_pid);
			printf("%-20s  %-9s  %-9s  %-16s  %-20s  %s\n", p->path, p->transport, id,
			       *p->usb_serial ? p->usb_serial : "-", *p->usb_manufacturer ? p->usb_manufacturer : "-",
			       *p->usb_product ? p->usb_product : (*p->description ? p->description : "-"));
		}
	}
	free(ports);
	return RIG_EXIT_OK;
}

/*
 * ident.h - device identity numbers: IMEI and ICCID checks (Luhn).
 *
 * An IMEI is 15 digits, the last a Luhn check digit over the first 14.
 * An ICCID is 19 or 20 digits starting "89" (telecom), the last a Luhn check
 * digit. A number that fails its check is a misread or a typo in a work
 * order: callers name it rather than trust it.
 */
#ifndef TRACKRIG_IDENT_H
#define TRACKRIG_IDENT_H

#include <stdbool.h>

/* The Luhn check digit ('0'..'9') for the digit string DIGITS, or 0 when
 * DIGITS is empty or holds anything but digits. */
char ident_luhn_digit(const char *digits);

/* True when DIGITS (check digit last) passes the Luhn check. */
bool ident_luhn_valid(const char *digits);

bool ident_imei_valid(const char *imei);
bool ident_iccid_valid(const char *iccid);

#endif

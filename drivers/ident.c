/* ident.c - IMEI and ICCID checks. */
#include "ident.h"

#include <string.h>

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* Luhn sum of N digits where the rightmost one is doubled when DOUBLE_LAST. */
static int luhn_sum(const char *s, size_t n, bool double_last)
{
	int sum = 0;
	bool dbl = double_last;
	for (size_t i = n; i-- > 0;) {
		int d = s[i] - '0';
		if (dbl) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		dbl = !dbl;
	}
	return sum;
}

char ident_luhn_digit(const char *digits)
{
	size_t n = digits ? strlen(digits) : 0;
	if (!all_digits(digits, n))
		return 0;
	return (char)('0' + (10 - luhn_sum(digits, n, true) % 10) % 10);
}

bool ident_luhn_valid(const char *digits)
{
	size_t n = digits ? strlen(digits) : 0;
	return n >= 2 && all_digits(digits, n) && luhn_sum(digits, n, false) % 10 == 0;
}

bool ident_imei_valid(const char *imei)
{
	return imei && strlen(imei) == 15 && ident_luhn_valid(imei);
}

bool ident_iccid_valid(const char *iccid)
{
	size_t n = iccid ? strlen(iccid) : 0;
	return (n == 19 || n == 20) && strncmp(iccid, "89", 2) == 0 && ident_luhn_valid(iccid);
}

/*
 * ptyshim.c - LD_PRELOAD shim that lets libserialport open a pseudo-terminal.
 *
 * Why: libserialport 0.1.1 reads and sets the modem lines (TIOCMGET,
 * TIOCMSET, TIOCMBIS, TIOCMBIC) while opening and configuring a port. A pty
 * has no modem lines, so the kernel answers ENOTTY and sp_open() fails. The
 * tests still want to drive the libserialport backend against a simulated
 * tracker on a pty, so this shim makes those four requests succeed on
 * terminals: TIOCMGET reports DTR, RTS, CTS, DSR and carrier up (a cable
 * plugged into a live device), the setters do nothing.
 *
 * Only those requests, only ENOTTY and only on a file descriptor that is a
 * terminal are touched: the same ioctl on a pipe or a regular file still
 * fails as it should, and every other request goes to the real ioctl().
 *
 * Built without sanitizers (it is preloaded into sanitizer-built and plain
 * programs alike). An ASan program run with this preloaded needs
 * ASAN_OPTIONS=verify_asan_link_order=0, since the shim then comes before
 * the ASan runtime in the library list.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

typedef int (*ioctl_fn)(int, unsigned long, ...);

/* Resolved on first use; a race only stores the same pointer twice. */
static ioctl_fn real_ioctl(void)
{
	static ioctl_fn cached;
	ioctl_fn fn = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);

	if (!fn) {
		fn = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
		__atomic_store_n(&cached, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

static int is_modem_request(unsigned long request)
{
	return request == TIOCMGET || request == TIOCMSET ||
	       request == TIOCMBIS || request == TIOCMBIC;
}

/* Reads the optional third argument as one pointer-sized word, as glibc's
 * own ioctl() does, whether or not the caller passed one. */
int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);

	ioctl_fn fn = real_ioctl();
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}

	int ret = fn(fd, request, arg);
	if (ret != -1 || errno != ENOTTY || !is_modem_request(request))
		return ret;

	int saved = errno;
	if (!isatty(fd)) {
		errno = saved;
		return ret;
	}
	if (request == TIOCMGET && arg)
		*(int *)arg = TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | TIOCM_CAR;
	errno = saved;
	return 0;
}

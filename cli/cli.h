/* cli.h: what netlabctl's commands share: settings, exit codes, helpers.
 *
 * Settings come from built-in defaults, then the INI files, then options; the
 * server is never trusted: every reply is length-checked before it is read
 * and escaped before it reaches a terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in netlabctl(1). */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_OTHER = 1, /* out of memory and the like */
        EXIT_USAGE = 2,         /* bad option, argument or INI file */
        EXIT_CONNECT = 3,       /* cannot resolve or connect */
        EXIT_REFUSED = 4,       /* the server answered with an error status */
        EXIT_BUSY = 5,          /* the server is at its limits: try again later */
        EXIT_PROTOCOL = 6,      /* the reply is malformed or missing */
        EXIT_TIMEOUT = 7,       /* no (complete) reply in time */
        EXIT_LOCAL_IO = 8,      /* a local file could not be read or written */
};

#define CLI_HOST_MAX 255

struct settings {
        char host[CLI_HOST_MAX + 1];
        uint64_t timeout_ms;
        bool json;
        /* [send] */
        uint16_t send_port;
        bool send_lab;
};

extern struct settings settings;
extern const char *program_name;

/* ini.c */

/* Fill settings with built-in defaults, then read the INI files: explicit
 * (only that file, which must exist) or the system file then the user's
 * ($XDG_CONFIG_HOME or ~/.config), each optional.
 * Return: 0, or -EINVAL after printing "file:line: problem" to stderr. */
int settings_load(const char *explicit_path);

/* Common options every command takes.  parse_common_option() returns 1 if it
 * took the option, 0 if the option is not a common one, -EINVAL on a bad
 * value (message printed). */
#define COMMON_OPTIONS_SHORT "H:p:t:jh"
enum {
        OPT_JSON = 'j',
        OPT_TIMEOUT = 't',
        OPT_HOST = 'H',
        OPT_PORT = 'p',
        OPT_HELP = 'h',
        OPT_CONFIG = 0x100,
        OPT_NO_JSON = 0x101,
        OPT_FIRST_COMMAND_OPTION = 0x200,
};
#define COMMON_LONG_OPTIONS                                              \
        { "host", required_argument, NULL, OPT_HOST },                  \
        { "port", required_argument, NULL, OPT_PORT },                  \
        { "timeout", required_argument, NULL, OPT_TIMEOUT },            \
        { "json", no_argument, NULL, OPT_JSON },                        \
        { "no-json", no_argument, NULL, OPT_NO_JSON },                  \
        { "help", no_argument, NULL, OPT_HELP }

int parse_common_option(int opt, const char *arg, uint16_t *port);
#define COMMON_OPTIONS_HELP                                                                 \
        "  -H, --host=HOST        server name or address (default from the INI file, else localhost)\n" \
        "  -p, --port=PORT        server port\n"                                              \
        "  -t, --timeout=SECONDS  give up after this long without progress (default 5)\n"     \
        "  -j, --json             print one JSON object instead of text\n"                    \
        "      --no-json          print text even if the INI file says json = true\n"         \
        "  -h, --help             show this help\n"

/* Report an option problem in one line and return EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a port number option value.  Return: 0 or -EINVAL (message printed). */
int parse_port(const char *opt, const char *arg, uint16_t *ret);

/* net.c */

/* Resolve host and connect by TCP, trying each address, each attempt bounded
 * by timeout_ms.  Return: a connected non-blocking socket; negative errno
 * with the reason written to err. */
int net_connect_tcp(const char *host, uint16_t port, uint64_t timeout_ms, char *err, size_t err_size);

/* Wait until fd is ready for events (POLLIN/POLLOUT), at most timeout_ms.
 * Return: the revents, 0 on timeout, negative errno. */
int net_wait(int fd, short events, uint64_t timeout_ms);

/* Read up to size bytes, waiting at most timeout_ms for the first.
 * Return: bytes read, 0 on EOF, -ETIMEDOUT, negative errno. */
ssize_t net_read(int fd, void *buf, size_t size, uint64_t timeout_ms);

/* Read exactly n bytes.  Return: 0; -EPIPE if EOF came first (*ret_got says
 * how many arrived); -ETIMEDOUT; negative errno. */
int net_read_exact(int fd, void *buf, size_t n, uint64_t timeout_ms, size_t *ret_got);

/* Write all n bytes.  If the server starts answering before everything is
 * sent (it refused early), stop and return -EALREADY so the caller reads the
 * answer.  Return: 0, -EALREADY, -ETIMEDOUT, negative errno. */
int net_write_all(int fd, const void *buf, size_t n, uint64_t timeout_ms);

/* Current time in microseconds (CLOCK_MONOTONIC). */
uint64_t mono_usec(void);

/* output.c */

/* Print bytes a server sent: raw when stdout is not a terminal, with control
 * characters escaped when it is (a hostile server must not drive the
 * terminal).  Adds a final newline when missing if add_newline is set. */
void print_server_text(const uint8_t *buf, size_t n, bool add_newline);

/* JSON helpers: a string value with escaping (any bytes; invalid UTF-8 as
 * \u00XX of each byte). */
void json_string(FILE *f, const uint8_t *buf, size_t n);

/* Print an error: "netlabctl: <text>" to stderr, and with --json an object
 * {"command":..., "status":..., "error":...} to stdout.  Returns exit_code. */
int fail(const char *command, int exit_code, const char *status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Commands. */
int cmd_send(int argc, char **argv);

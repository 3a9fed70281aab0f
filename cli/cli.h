/* cli.h: what netlabctl's commands share: settings, exit codes, helpers.
 *
 * Settings come from built-in defaults, then the INI files, then options; the
 * server is never trusted: every reply is length-checked before it is read
 * and escaped before it reaches a terminal. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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
        EXIT_CHANGED = 9,       /* fetch --no-restart: the server's file changed; partial kept */
        EXIT_VERIFY = 10,       /* fetch --verify: the digest of the local file differs */
        EXIT_LOSS = 11,         /* echo: a probe got no reply or an altered one */
        EXIT_LOST = 12,         /* guess: the round was lost, or the guesses ran out */
};

#define CLI_HOST_MAX 255

struct settings {
        char host[CLI_HOST_MAX + 1];
        uint64_t timeout_ms;
        bool json;
        /* [send] */
        uint16_t send_port;
        bool send_lab;
        /* [fetch], also the port of ls */
        uint16_t fetch_port;
        bool fetch_lab;
        bool fetch_verify;
        /* [echo] */
        uint16_t echo_port;
        /* [guess] */
        uint16_t guess_port;
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

/* udp.c: UDP exchanges for echo and guess. */

#define UDP_PAYLOAD_MAX_IPV4 65507u /* 65535 - 20 (IPv4 header) - 8 (UDP header) */
#define UDP_WAIT_DEFAULT_USEC 1000000u /* --wait: for each reply */
#define UDP_WAIT_MAX_USEC (3600u * 1000000ull)
#define UDP_RETRIES_DEFAULT 2u         /* --retries: resends of one request */
#define UDP_RETRIES_MAX 100u
#define UDP_DRAIN_MAX 1024             /* most queued datagrams udp_drain() drops in one call */

struct addrinfo;

struct udp_peer {
        int fd;                      /* connected, non-blocking, close-on-exec; -1 if none */
        struct addrinfo *addrs;      /* every address of host (owned) */
        const struct addrinfo *cur;  /* the one fd is connected to */
        bool confirmed;              /* a datagram came from cur: stay with it */
        const char *host;            /* borrowed: as given, for messages */
        uint16_t port;
        char addr[64];               /* cur, numeric */
        size_t payload_max;          /* 65507 over IPv4, 65527 over IPv6 */
        const sigset_t *wait_mask;   /* if set: ppoll() mask; a signal ends waits with -EINTR */
};

/* Resolve host for UDP: every address, in getaddrinfo()'s order.
 * Return: 0 with *ret (release with freeaddrinfo()); -EHOSTUNREACH with the
 * reason written to err. */
int udp_resolve(const char *host, uint16_t port, struct addrinfo **ret, char *err, size_t err_size);

/* Resolve host and connect a UDP socket to the first address that takes it.
 * Return: 0 with p filled (release with udp_peer_done()); negative errno with
 * the reason written to err. */
int udp_peer_open(struct udp_peer *p, const char *host, uint16_t port, char *err, size_t err_size);

/* Close the socket and free the addresses.  Safe to call twice. */
void udp_peer_done(struct udp_peer *p);

/* Wait until p's socket is ready for events (POLLIN/POLLOUT), or until
 * until_usec (mono_usec() time); with events 0, just sleep until then.
 * Return: the revents, 0 at the deadline, -EINTR if a signal came and
 * p->wait_mask is set, negative errno. */
int udp_wait(const struct udp_peer *p, short events, uint64_t until_usec);

/* Send one datagram.  Return: 0; -ECONNREFUSED (an ICMP error left by an
 * earlier datagram); -EMSGSIZE; -ETIMEDOUT (send buffer full until the
 * deadline); -EINTR; negative errno. */
int udp_send(struct udp_peer *p, const void *buf, size_t n, uint64_t until_usec);

/* Receive one datagram into buf.  Return: its real size, which is larger
 * than size if it was cut; -ETIMEDOUT; -ECONNREFUSED (ICMP port
 * unreachable); -EINTR; negative errno. */
ssize_t udp_recv(struct udp_peer *p, uint8_t *buf, size_t size, uint64_t until_usec);

/* Drop the datagrams already queued (late replies to earlier requests), at
 * most UDP_DRAIN_MAX.  Return: how many were dropped; negative errno
 * (-ECONNREFUSED). */
int udp_drain(struct udp_peer *p, uint8_t *buf, size_t size);

/* One request and its reply, resent after each wait that expires. */
struct udp_exchange {
        const void *req;
        size_t req_len;
        uint64_t wait_usec;   /* for a reply to each attempt */
        unsigned retries;     /* resends after the first attempt */
        uint64_t cap_usec;    /* for all attempts together (--timeout) */
        /* Is this datagram (n bytes in buf, real_len its size before any
         * cut) the reply?  1 yes; 0 no (stale, keep waiting); negative errno
         * to end the exchange with.  NULL takes any datagram. */
        int (*accept)(const uint8_t *buf, size_t n, size_t real_len, void *userdata);
        void *userdata;
        /* Results, written by udp_exchange() whatever it returns: */
        unsigned n_attempts;        /* datagrams sent */
        uint64_t first_send_usec;
        uint64_t last_send_usec;
        uint64_t reply_usec;
};

/* Run exchange x: send, wait up to wait_usec, resend, at most 1 + retries
 * times and within cap_usec.  If the server refuses (ICMP) before it ever
 * answered and its name has more addresses, the next address is tried from
 * the first attempt.
 * Return: 0 with the reply in reply (cut to reply_size) and its real size in
 * *ret_n; -ETIMEDOUT; -ECONNREFUSED; -EINTR; the accept hook's error;
 * negative errno. */
int udp_exchange(struct udp_peer *p, struct udp_exchange *x, uint8_t *reply, size_t reply_size,
                 size_t *ret_n);

/* Report a failed exchange with p through fail(): no reply after attempts
 * tries, a port unreachable, or another error r.  Return: the exit code. */
int udp_exchange_failed(const char *command, const struct udp_peer *p, int r, unsigned attempts);

/* Parse decimal seconds ("1", "0.25", at most 6 decimals) within
 * [min_usec, max_usec].  Return: 0; -EINVAL (message naming opt printed). */
int parse_seconds(const char *opt, const char *arg, uint64_t min_usec, uint64_t max_usec,
                  uint64_t *ret_usec);

/* Write usec as seconds with no trailing zeros ("1", "0.5", "0.001"). */
void format_seconds(char *buf, size_t size, uint64_t usec);

/* xfer-recv.c: the receiving side of netlab's UDP transfer (fetch --udp;
 * docs/PROTOCOL.md, section 11). */

#define XFER_RECV_MEMORY (64u * 1024u * 1024u) /* default --window: this much of blocks */
#define XFER_RECV_TEXT_MAX 1024u               /* NL_ERROR_TEXT_MAX */

struct iovec;
struct file_info;
struct xfer_recv;

struct xfer_recv_params {
        const char *host;
        uint16_t port;
        const uint8_t *get;       /* the FILE_GET body, exactly as over TCP (borrowed) */
        size_t get_len;
        uint32_t block_max;       /* largest block to ask for; 0: what the path allows */
        uint32_t window;          /* blocks; 0: XFER_RECV_MEMORY worth of block_max */
        uint64_t timeout_usec;    /* nothing valid from the server for this long: give up */
        bool discard;             /* keep no data: deliver() gets no iovecs */
        /* Pass on the next n bytes of the transfer, in order, as n_iov
         * consecutive pieces (which it may modify); with discard, iov is NULL
         * and n_iov 0.  Return: 0; negative errno (-EINTR: a signal). */
        int (*deliver)(void *userdata, struct iovec *iov, int n_iov, size_t n);
        void *userdata;
        volatile sig_atomic_t *interrupted; /* set by a signal handler: cancel */
};

enum xfer_recv_result {
        XFER_RECV_OK = 0,
        XFER_RECV_REFUSED,      /* the server sent ERROR: status, text */
        XFER_RECV_TIMEOUT,      /* nothing valid for timeout_usec: problem */
        XFER_RECV_UNREACHABLE,  /* handshake: ICMP error from every address (err): problem */
        XFER_RECV_GONE,         /* data phase: port unreachable: the transfer ended */
        XFER_RECV_PROTOCOL,     /* the server broke the protocol: problem */
        XFER_RECV_LOCAL,        /* deliver() failed: err */
        XFER_RECV_NET,          /* a socket error: err */
        XFER_RECV_SIGNAL,       /* *interrupted: the server was told (ERROR CANCELLED) */
        XFER_RECV_NOMEM,
};

/* What a step ended with, and statistics; written by the xfer_recv_*() calls. */
struct xfer_recv_report {
        uint8_t status;                      /* REFUSED: the ERROR's; after the data: the END's */
        uint8_t text[XFER_RECV_TEXT_MAX];    /* its text (or the FILE_END body with OK) */
        size_t text_len;
        int err;                             /* errno for UNREACHABLE, NET, LOCAL */
        char problem[512];                   /* for TIMEOUT, UNREACHABLE, PROTOCOL */
        char addr[64];                       /* the server address in use, numeric */
        uint32_t block_max, window_max;      /* asked for */
        uint32_t block_size, window;         /* chosen by the server */
        uint32_t rwnd;                       /* offered in ACKs: window, or what the socket holds */
        unsigned n_requests;                 /* REQUEST datagrams sent */
        uint64_t n_datagrams;                /* received in the data phase */
        uint64_t n_duplicates, n_out_of_order, n_ignored, n_acks;
        uint64_t rtt_usec;                   /* REQUEST -> RETRY, 0 if unknown */
};

/* Set up a transfer (nothing is sent yet).  p and rep must outlive it.
 * Return: 0 with *ret (release with xfer_recv_free()); -ENOMEM. */
int xfer_recv_new(const struct xfer_recv_params *p, struct xfer_recv_report *rep,
                  struct xfer_recv **ret);
struct xfer_recv *xfer_recv_free(struct xfer_recv *x);

/* The handshake: REQUEST, RETRY, REQUEST with the cookie, until ACCEPT,
 * tried on each address of host in turn while the previous ones answer only
 * with ICMP errors.  ACCEPT's block size and window are checked against what
 * was asked; its FILE_INFO is the caller's to check (then xfer_recv_abort()
 * if it is wrong).  Return: enum xfer_recv_result: XFER_RECV_OK with
 * *ret_info; REFUSED, TIMEOUT, UNREACHABLE, PROTOCOL, NET, SIGNAL, NOMEM. */
int xfer_recv_handshake(struct xfer_recv *x, struct file_info *ret_info);

/* Acknowledge ACCEPT, receive every block, passing them to deliver() in
 * order, until END (answered with DONE).  Return: XFER_RECV_OK with the END's
 * status and body in the report; REFUSED, TIMEOUT, GONE, PROTOCOL, LOCAL,
 * NET, SIGNAL, NOMEM (the server was told with an ERROR where it helps). */
int xfer_recv_data(struct xfer_recv *x);

/* Tell the server the transfer is off: ERROR(status, text).  Best effort. */
void xfer_recv_abort(struct xfer_recv *x, uint8_t status, const char *text);

/* After the END: answer the server's retransmitted ENDs with DONE for a
 * short while (3 round trips, at most 200 ms from the END). */
void xfer_recv_linger(struct xfer_recv *x);

/* file-client.c: the file service's request and answer frames, shared by
 * fetch and ls (docs/PROTOCOL.md, section 8). */

struct nl_header;
struct file_request;

/* Encode req and send it on fd.  Return: 0; -EALREADY if the server answered
 * before the whole request was sent (read its answer); -ETIMEDOUT; -EINVAL
 * if req cannot be encoded; negative errno of send(). */
int file_client_send(int fd, const struct file_request *req);

/* Read one frame: its header, then its body into body (body_size must be at
 * least NL_ERROR_TEXT_MAX).  A body longer than ok_max (status OK) or
 * NL_ERROR_TEXT_MAX (any other status) is refused before it is read.
 * first_hint is NULL except for the first frame of the answer, where a
 * non-netlab first byte means a lab-style server: it then ends the message
 * ("try --lab").  Every wait is bounded by the timeout.
 * Return: 0 with *ret_h filled and *ret_n body bytes in body; -ENODATA if the
 * connection closed before the first byte; -EPIPE if it closed inside the
 * frame; -ETIMEDOUT; -EPROTO with problem set (malformed, foreign, too long);
 * negative errno of recv(). */
int file_client_read_frame(int fd, const char *first_hint, uint8_t *body, size_t body_size,
                           size_t ok_max, struct nl_header *ret_h, size_t *ret_n, char *problem,
                           size_t problem_size);

/* Report a failed file_client_send() or file_client_read_frame() result r
 * through fail(), with what (the frame that was expected, e.g. "the answer")
 * and suffix appended to the message ("" for none).  Return: the exit code. */
int file_client_fail(const char *command, int r, const char *what, const char *problem,
                     const char *suffix);

/* Report a refusal (a FILE_INFO or FILE_END frame with a status other than OK)
 * as "server refused (NAME): TEXT" + suffix, the text escaped.
 * Return: the exit code: EXIT_BUSY, EXIT_CHANGED for changed and mismatch,
 * else EXIT_REFUSED. */
int file_client_refused(const char *command, const struct nl_header *h, const uint8_t *body,
                        size_t n, const char *suffix);

/* progress.c: a one-line progress bar on standard error. */

struct progress {
        bool enabled;
        uint64_t total;      /* whole-file size; UINT64_MAX when unknown (lab format) */
        uint64_t pos;        /* position in the whole file at the last redraw */
        uint64_t start_usec; /* CLOCK_MONOTONIC_COARSE, microseconds */
        uint64_t next_usec;  /* no redraw before this */
        uint64_t last_usec;
        double rate;         /* bytes per second, smoothed */
        int columns;         /* of the terminal */
        int drawn;           /* width of the line on screen, 0 if none */
};

/* Start a bar at position pos of a file of total bytes (UINT64_MAX: unknown).
 * enabled false makes every other call a no-op. */
void progress_init(struct progress *p, bool enabled, uint64_t total, uint64_t pos);
/* Note the new position; redraws at most 10 times a second.  Costs one
 * clock_gettime(CLOCK_MONOTONIC_COARSE) (vDSO, no syscall) when enabled. */
void progress_update(struct progress *p, uint64_t pos);
/* Replace the bar with a short text (what happens next, e.g. "verifying"). */
void progress_note(struct progress *p, const char *text);
/* Erase the bar, leaving the cursor at the start of an empty line. */
void progress_clear(struct progress *p);

/* output.c */

/* Print bytes a server sent: raw when stdout is not a terminal, with control
 * characters escaped when it is (a hostile server must not drive the
 * terminal).  Adds a final newline when missing if add_newline is set. */
void print_server_text(const uint8_t *buf, size_t n, bool add_newline);

/* JSON helpers: a string value with escaping (any bytes; invalid UTF-8 as
 * \u00XX of each byte). */
void json_string(FILE *f, const uint8_t *buf, size_t n);

/* Print a name (a path component from a server) with every control byte
 * escaped as \xHH, so one name is one line; on a terminal also invalid
 * UTF-8 and C1 controls. */
void print_name(FILE *f, const uint8_t *buf, size_t n);

/* Join n command-line words with single spaces (echo TEXT, send MESSAGE).
 * Return: a new NUL-terminated string (caller frees) with its length in
 * *ret_len; NULL if longer than max bytes or out of memory. */
char *join_words(int n, char **words, size_t max, size_t *ret_len);

/* Print an error: "netlabctl: <text>" to stderr, and with --json an object
 * {"command":..., "status":..., "error":...} to stdout.  Returns exit_code. */
int fail(const char *command, int exit_code, const char *status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Commands. */
int cmd_send(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_echo(int argc, char **argv);
int cmd_guess(int argc, char **argv);

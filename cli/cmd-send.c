/* cmd-send.c: `netlabctl send`: one message to a message service, print the
 * reply.
 *
 * netlab form: one MSG_SEND frame, one MSG_REPLY frame back (PROTOCOL.md).
 * --lab form: the lab client's bytes exactly (the text, no terminator, no
 * half-close), then whatever the server sends until it closes. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

/* A lab server sends its reply and closes; one that keeps the connection
 * open is taken to be done once it has been quiet this long after its reply
 * started. */
#define LAB_REPLY_QUIET_MS 200

static void help(void)
{
        printf("Usage: %s send [OPTIONS] MESSAGE...\n"
               "\n"
               "Send one message to a message service and print its reply. The words of\n"
               "MESSAGE are joined with spaces.\n"
               "\n"
               "Options:\n"
               "  -l, --lab              speak the lab's format: the bare text with no\n"
               "                         terminator, then read the reply until the server closes;\n"
               "                         a reply starting \"error: \" counts as a refusal\n"
               "      --no-lab           netlab's format even if the INI file says lab = true\n"
               COMMON_OPTIONS_HELP
               "\n"
               "Exit status: 0 reply printed, 2 usage, 3 cannot connect, 4 refused by the\n"
               "server, 5 server busy, 6 protocol error, 7 timeout (see netlabctl(1)).\n",
               program_name);
}

static void print_result(const char *format, const uint8_t *reply, size_t n, uint64_t usec)
{
        if (settings.json) {
                printf("{\"command\":\"send\",\"status\":\"ok\",\"exit_code\":0,\"format\":\"%s\",\"server\":",
                       format);
                json_string(stdout, (const uint8_t *) settings.host, strlen(settings.host));
                printf(",\"port\":%u,\"reply\":", settings.send_port);
                json_string(stdout, reply, n);
                printf(",\"duration_ms\":%.3f}\n", (double) usec / 1000.0);
        } else
                print_server_text(reply, n, true);
}

static int send_lab(int fd, const char *msg, size_t len, uint64_t start)
{
        uint8_t reply[NL_REPLY_MAX];
        size_t n = 0;
        int r;

        r = net_write_all(fd, msg, len, settings.timeout_ms);
        if (r < 0 && r != -EALREADY)
                return fail("send", r == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_CONNECT,
                            r == -ETIMEDOUT ? "timeout" : "connection-error",
                            "sending the message failed: %s", strerror(-r));

        while (n < sizeof reply) {
                ssize_t k = net_read(fd, reply + n, sizeof reply - n,
                                     n == 0 ? settings.timeout_ms : LAB_REPLY_QUIET_MS);
                if (k == -ETIMEDOUT && n > 0)
                        break;
                if (k == -ETIMEDOUT)
                        return fail("send", EXIT_TIMEOUT, "timeout",
                                    "no reply within %llu s", (unsigned long long) settings.timeout_ms / 1000);
                if (k == -ECONNRESET && n > 0)
                        break;
                if (k < 0)
                        return fail("send", EXIT_PROTOCOL, "connection-error",
                                    "reading the reply failed: %s", strerror((int) -k));
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n == 0)
                return fail("send", EXIT_PROTOCOL, "no-reply", "the server closed the connection without replying");
        if (n == sizeof reply) {
                /* Full buffer: refuse rather than print a reply cut short. */
                uint8_t more;
                ssize_t k = net_read(fd, &more, 1, LAB_REPLY_QUIET_MS);
                if (k > 0)
                        return fail("send", EXIT_PROTOCOL, "protocol-error",
                                    "the reply is longer than the %u bytes netlabctl accepts", NL_REPLY_MAX);
        }

        /* netlabd's text form refuses with one "error: ..." line. */
        if (n >= 7 && memcmp(reply, "error: ", 7) == 0) {
                char esc[NL_ERROR_TEXT_MAX + 64];
                size_t end = n;
                while (end > 7 && (reply[end - 1] == '\n' || reply[end - 1] == '\r'))
                        end--;
                text_escape(esc, sizeof esc, reply + 7, end - 7);
                bool busy = end - 7 >= 11 && memcmp(reply + 7, "server busy", 11) == 0;
                return fail("send", busy ? EXIT_BUSY : EXIT_REFUSED, busy ? "busy" : "refused",
                            "server refused: %s", esc);
        }

        print_result("lab", reply, n, mono_usec() - start);
        return EXIT_OK;
}

static int send_netlab(int fd, const char *msg, size_t len, uint64_t start)
{
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        uint8_t head[NL_HEADER_SIZE];
        struct nl_header h;
        size_t got = 0;
        int r;

        frame = malloc(len + NL_HEADER_SIZE);
        if (!frame)
                return fail("send", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        r = nl_frame_encode(frame, len + NL_HEADER_SIZE, NL_TYPE_MSG_SEND, 0, msg, len);
        if (r < 0)
                return fail("send", EXIT_USAGE, "usage", "the message is too long to send");

        r = net_write_all(fd, frame, (size_t) r, settings.timeout_ms);
        if (r < 0 && r != -EALREADY)
                return fail("send", r == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_CONNECT,
                            r == -ETIMEDOUT ? "timeout" : "connection-error",
                            "sending the message failed: %s", strerror(-r));

        r = net_read_exact(fd, head, sizeof head, settings.timeout_ms, &got);
        if (r == -ETIMEDOUT)
                return fail("send", EXIT_TIMEOUT, "timeout", "no reply within %llu s",
                            (unsigned long long) settings.timeout_ms / 1000);
        if (r < 0 && got == 0)
                return fail("send", EXIT_PROTOCOL, "no-reply", "the server closed the connection without replying%s",
                            r == -EPIPE ? "" : " (connection reset)");
        if (got > 0 && !nl_is_frame_start(head, got)) {
                /* Not netlab: a lab-style server answering our frame as text. */
                char esc[128];
                text_escape(esc, sizeof esc, head, got);
                return fail("send", EXIT_PROTOCOL, "protocol-error",
                            "the server did not answer in netlab's format (a lab-style server? try --lab); "
                            "it sent \"%s\"", esc);
        }
        if (r < 0)
                return fail("send", EXIT_PROTOCOL, "protocol-error", "the reply ended inside its header");

        r = nl_header_decode(head, sizeof head, &h);
        if (r == -EPROTONOSUPPORT)
                return fail("send", EXIT_PROTOCOL, "protocol-error",
                            "the server answered with protocol version %u; this netlabctl speaks %u",
                            h.version, NL_VERSION);
        if (r < 0 || h.type != NL_TYPE_MSG_REPLY)
                return fail("send", EXIT_PROTOCOL, "protocol-error", "the server sent a malformed reply header");
        if (h.length > NL_REPLY_MAX)
                return fail("send", EXIT_PROTOCOL, "protocol-error",
                            "the server announced a %u-byte reply, more than the %u allowed", h.length,
                            NL_REPLY_MAX);

        body = malloc(h.length ? h.length : 1);
        if (!body)
                return fail("send", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        r = net_read_exact(fd, body, h.length, settings.timeout_ms, &got);
        if (r == -ETIMEDOUT)
                return fail("send", EXIT_TIMEOUT, "timeout", "the reply stopped arriving");
        if (r < 0)
                return fail("send", EXIT_PROTOCOL, "protocol-error",
                            "the connection ended after %zu of the reply's %u bytes", got, h.length);

        if (h.status != NL_STATUS_OK) {
                char esc[NL_ERROR_TEXT_MAX + 64];
                text_escape(esc, sizeof esc, body, h.length);
                return fail("send", h.status == NL_STATUS_BUSY ? EXIT_BUSY : EXIT_REFUSED,
                            nl_status_name(h.status), "server refused (%s): %s", nl_status_name(h.status),
                            esc);
        }

        print_result("netlab", body, h.length, mono_usec() - start);
        return EXIT_OK;
}

int cmd_send(int argc, char **argv)
{
        enum { OPT_LAB = 'l', OPT_NO_LAB = OPT_FIRST_COMMAND_OPTION };
        static const struct option options[] = {
                COMMON_LONG_OPTIONS,
                { "lab", no_argument, NULL, OPT_LAB },
                { "no-lab", no_argument, NULL, OPT_NO_LAB },
                {}
        };
        bool lab = settings.send_lab;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+:" COMMON_OPTIONS_SHORT "l", options, NULL)) >= 0) {
                int r = parse_common_option(c, optarg, &settings.send_port);
                if (r < 0)
                        return EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_HELP:
                        help();
                        return EXIT_OK;
                case OPT_LAB:
                        lab = true;
                        break;
                case OPT_NO_LAB:
                        lab = false;
                        break;
                case ':':
                        return usage_error("send: option %s needs a value", argv[optind - 1]);
                default:
                        return usage_error("send: unknown option %s (see 'send --help')", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return usage_error("send: no MESSAGE given (see 'send --help')");

        size_t len;
        _cleanup_free_ char *msg = join_words(argc - optind, argv + optind, NL_MSG_MAX_LIMIT, &len);
        if (!msg)
                return usage_error("send: the message is longer than %u bytes", NL_MSG_MAX_LIMIT);
        if (!lab && text_check((const uint8_t *) msg, len, NULL) < 0)
                return usage_error("send: the message must be printable UTF-8 text (no control characters)");

        uint64_t start = mono_usec();
        char err[512];
        _cleanup_close_ int fd = net_connect_tcp(settings.host, settings.send_port, settings.timeout_ms,
                                                 err, sizeof err);
        if (fd < 0)
                return fail("send", EXIT_CONNECT, "connect-failed", "%s", err);

        return lab ? send_lab(fd, msg, len, start) : send_netlab(fd, msg, len, start);
}

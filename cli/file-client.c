/* file-client.c: the client side of the file service's frames, shared by
 * `fetch` and `ls` (docs/PROTOCOL.md, section 8).
 *
 * The server is not trusted: a frame's length is compared with what the
 * client accepts before a byte of its body is read, every wait is bounded by
 * the timeout, and error texts are escaped before they are printed.  The
 * frames themselves are decoded by common/ (proto.h). */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

int file_client_send(int fd, const struct file_request *req)
{
        uint8_t frame[NL_HEADER_SIZE + NL_FILE_REQUEST_MAX];
        int n = file_request_encode(frame, sizeof frame, req);

        if (n < 0)
                return -EINVAL;
        return net_write_all(fd, frame, (size_t) n, settings.timeout_ms);
}

int file_client_read_frame(int fd, const char *first_hint, uint8_t *body, size_t body_size,
                           size_t ok_max, struct nl_header *ret_h, size_t *ret_n, char *problem,
                           size_t problem_size)
{
        uint8_t head[NL_HEADER_SIZE];
        struct nl_header h;
        size_t got = 0;
        int r;

        problem[0] = '\0';
        r = net_read_exact(fd, head, sizeof head, settings.timeout_ms, &got);
        if (r == -ETIMEDOUT)
                return r;
        if (r < 0 && got == 0)
                return r == -EPIPE ? -ENODATA : r;
        if (!nl_is_frame_start(head, got)) {
                char esc[128];
                (void) text_escape(esc, sizeof esc, head, got);
                if (first_hint)
                        (void) xsnprintf(
                                problem, problem_size,
                                "the server did not answer in netlab's format (a lab-style server? "
                                "%s); it sent \"%s\"",
                                first_hint, esc);
                else
                        (void) xsnprintf(problem, problem_size,
                                         "the server sent \"%s\" where a netlab frame should start",
                                         esc);
                return -EPROTO;
        }
        if (r < 0)
                return r == -EPIPE ? -EPIPE : r;

        r = nl_header_decode(head, sizeof head, &h);
        if (r == -EPROTONOSUPPORT) {
                (void) xsnprintf(
                        problem, problem_size,
                        "the server answered with protocol version %u; this netlabctl speaks %u",
                        h.version, NL_VERSION);
                return -EPROTO;
        }
        if (r < 0) {
                (void) xsnprintf(problem, problem_size, "the server sent a malformed frame header");
                return -EPROTO;
        }

        size_t max = h.status == NL_STATUS_OK ? ok_max : NL_ERROR_TEXT_MAX;
        if (max > body_size)
                max = body_size;
        if (h.length > max) {
                (void) xsnprintf(
                        problem, problem_size,
                        "the server announced a %u-byte %s frame body, more than the %zu allowed",
                        h.length, h.status == NL_STATUS_OK ? "data" : "error text", max);
                return -EPROTO;
        }
        r = net_read_exact(fd, body, h.length, settings.timeout_ms, &got);
        if (r == -EPIPE) {
                (void) xsnprintf(problem, problem_size,
                                 "the connection ended after %zu of a frame's %u bytes", got,
                                 h.length);
                return -EPIPE;
        }
        if (r < 0)
                return r;

        *ret_h = h;
        *ret_n = h.length;
        return 0;
}

int file_client_fail(const char *command, int r, const char *what, const char *problem,
                     const char *suffix)
{
        switch (r) {
        case -ETIMEDOUT:
                return fail(command, EXIT_TIMEOUT, "timeout",
                            "no data from the server for %llu s while waiting for %s%s",
                            (unsigned long long) settings.timeout_ms / 1000, what, suffix);
        case -ENODATA:
                return fail(command, EXIT_PROTOCOL, "no-reply",
                            "the server closed the connection without sending %s%s", what, suffix);
        case -EPROTO:
                return fail(command, EXIT_PROTOCOL, "protocol-error", "%s%s", problem, suffix);
        case -EPIPE:
                if (problem[0] != '\0')
                        return fail(command, EXIT_PROTOCOL, "connection-lost", "%s%s", problem,
                                    suffix);
                return fail(command, EXIT_PROTOCOL, "connection-lost",
                            "the connection ended in the middle of %s%s", what, suffix);
        case -EINVAL:
                return fail(command, EXIT_FAILURE_OTHER, "internal-error",
                            "cannot encode the request%s", suffix);
        default:
                return fail(command, EXIT_PROTOCOL, "connection-error", "reading %s failed: %s%s",
                            what, strerror(-r), suffix);
        }
}

int file_client_refused(const char *command, const struct nl_header *h, const uint8_t *body,
                        size_t n, const char *suffix)
{
        char esc[NL_ERROR_TEXT_MAX * 4 + 8];
        int code = EXIT_REFUSED;

        (void) text_escape(esc, sizeof esc, body, n);
        if (h->status == NL_STATUS_BUSY)
                code = EXIT_BUSY;
        else if (h->status == NL_STATUS_CHANGED || h->status == NL_STATUS_MISMATCH)
                code = EXIT_CHANGED;
        return fail(command, code, nl_status_name(h->status), "server refused (%s): %s%s",
                    nl_status_name(h->status), esc, suffix);
}

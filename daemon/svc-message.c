/* svc-message.c: the TCP message service (lab 1), netlab frames and lab text
 * on the same listener.
 *
 * Runs in the forked child.  Trusts nothing the client sends: the request is
 * parsed from a buffer capped at max_message plus framing, under the
 * connection's idle timeout and header and total deadlines (the message is
 * this service's whole request, so it must be in by the header deadline; the
 * reply is bounded by the idle timeout and the total deadline).  Every
 * refusal is answered in the client's own form (a frame, or an "error: ..."
 * line) before the connection is closed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "conn.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "util.h"

/* How long we keep draining a client after the last reply, so unread request
 * bytes (a 10 MB message we refused) do not turn our close into a reset that
 * destroys the reply before the client reads it. */
#define MESSAGE_LINGER_USEC (2u * 1000000u)

struct message_options {
        char *reply;
        int64_t max_message;
        int64_t text_settle_ms;
};

static const char *check_template(const char *t)
{
        for (const char *p = t; *p; p++) {
                if (*p != '%')
                        continue;
                p++;
                if (!*p || !strchr("maptl%", *p))
                        return "has an unknown escape (use %m message, %a address, %p port, "
                               "%t time, %l listener, %% percent)";
        }
        return NULL;
}

static const struct config_key message_keys[] = {
        { .name = "reply", .type = CONFIG_KEY_STRING, .min = 0, .max = 1024,
          .offset = offsetof(struct message_options, reply),
          .default_str = "message received: %m", .check = check_template,
          .doc = "reply template: %m message, %a client address, %p client port, %t UTC time, "
                 "%l listener name, %% a percent sign" },
        { .name = "max_message", .type = CONFIG_KEY_INT, .min = 1, .max = NL_MSG_MAX_LIMIT,
          .offset = offsetof(struct message_options, max_message),
          .default_int = NL_MSG_MAX_DEFAULT,
          .doc = "longest message in bytes; a longer one gets a too-long error" },
        { .name = "text_settle_ms", .type = CONFIG_KEY_INT, .min = 0, .max = 10000,
          .offset = offsetof(struct message_options, text_settle_ms), .default_int = 50,
          .doc = "text form: a message with no newline is complete once the client has been "
                 "quiet this long (0: after the first read, like the lab server)" },
        {}
};

/* Longest a rendered reply can be: each escape at its largest. */
static uint64_t template_worst_case(const char *t, uint64_t max_message)
{
        uint64_t n = 0;

        for (const char *p = t; *p; p++) {
                if (*p != '%') {
                        n++;
                        continue;
                }
                switch (*++p) {
                case 'm': n += max_message; break;
                case 'a': n += 64; break;
                case 'p': n += 5; break;
                case 't': n += 20; break;
                case 'l': n += 64; break;
                default: n += 1; break;
                }
        }
        return n;
}

static const char *message_options_check(void *options, char *buf, size_t size)
{
        struct message_options *o = options;
        uint64_t worst = template_worst_case(o->reply, (uint64_t) o->max_message);

        if (worst > NL_REPLY_MAX) {
                (void) xsnprintf(buf, size,
                                 "reply: the template can expand to %llu bytes with max_message = %lld, "
                                 "more than the %u a reply may have",
                                 (unsigned long long) worst, (long long) o->max_message, NL_REPLY_MAX);
                return buf;
        }
        return NULL;
}

struct out {
        char *buf;
        size_t len, size;
};

static int out_add(struct out *o, const void *p, size_t n)
{
        if (o->size - o->len < n)
                return -ENOBUFS;
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        return 0;
}

/* Expand the reply template into o.  Return: 0, or -ENOBUFS (cannot happen
 * when o was sized by template_worst_case()). */
static int render_reply(const char *t, const struct conn *c, const uint8_t *msg, size_t msg_len,
                        struct out *o)
{
        for (const char *p = t; *p; p++) {
                char tmp[64];
                int r = 0;

                if (*p != '%') {
                        r = out_add(o, p, 1);
                } else {
                        switch (*++p) {
                        case 'm':
                                r = out_add(o, msg, msg_len);
                                break;
                        case 'a':
                                r = out_add(o, c->remote_addr, strlen(c->remote_addr));
                                break;
                        case 'p': {
                                int k = xsnprintf(tmp, sizeof tmp, "%u", c->remote_port);
                                r = k < 0 ? k : out_add(o, tmp, (size_t) k);
                                break;
                        }
                        case 't': {
                                struct tm tm;
                                time_t now = time(NULL);
                                size_t k = gmtime_r(&now, &tm) ? strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%SZ", &tm) : 0;
                                r = out_add(o, tmp, k);
                                break;
                        }
                        case 'l':
                                r = out_add(o, c->listener->name, strlen(c->listener->name));
                                break;
                        default:
                                r = out_add(o, "%", 1);
                                break;
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Send an answer in the client's form: a frame (status + body) or a text line
 * ("error: " prefix for refusals, LF if the client ended its line with one). */
static int send_answer(struct conn *c, enum msg_format format, unsigned status, const void *body,
                       size_t len, bool newline)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = len + NL_HEADER_SIZE + 16;
        size_t n = 0;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        if (format == MSG_FORMAT_NETLAB) {
                int r = nl_frame_encode(buf, size, NL_TYPE_MSG_REPLY, (uint8_t) status, body, len);
                if (r < 0)
                        return r;
                n = (size_t) r;
        } else {
                if (status != NL_STATUS_OK) {
                        memcpy(buf, "error: ", 7);
                        n = 7;
                }
                memcpy(buf + n, body, len);
                n += len;
                if (newline)
                        buf[n++] = '\n';
        }
        return conn_write_all(c, buf, n);
}

static int svc_message_serve(struct conn *c)
{
        const struct message_options *o = c->listener->options;
        size_t max = (size_t) o->max_message;
        size_t cap = max + NL_HEADER_SIZE + 2;
        uint64_t settle_usec = (uint64_t) o->text_settle_ms * 1000u;
        _cleanup_free_ uint8_t *buf = NULL;
        struct msg_request req = { .format = MSG_FORMAT_TEXT };
        struct request_log entry = {
                .listener = c->listener->name,
                .service = "message",
                .remote_addr = c->remote_addr,
                .remote_port = c->remote_port,
        };
        char detail[256] = "", log_detail[384];
        size_t n = 0;
        bool end = false;
        int r;

        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                r = msg_request_parse(buf, n, end, max, &req);
                if (r != -EAGAIN)
                        break;

                if (req.format == MSG_FORMAT_TEXT && n > 0) {
                        /* The lab client sends no terminator and keeps the
                         * connection open: its message is complete once it has
                         * been quiet for the settle time. */
                        if (settle_usec == 0) {
                                end = true;
                                continue;
                        }
                        r = conn_wait_readable(c, settle_usec);
                        /* Quiet for the settle time, or for the whole idle
                         * timeout when that is shorter: either way the text
                         * is complete.  Only a deadline is a timeout: a text
                         * still trickling in at the header deadline is a
                         * slow client's, refused like a partial frame. */
                        if (r == 0 || (r == -ETIMEDOUT && c->timed_out == CONN_TIMEOUT_IDLE)) {
                                end = true;
                                continue;
                        }
                        if (r < 0)
                                break;
                }

                ssize_t k = conn_read(c, buf + n, cap - n);
                if (k < 0) {
                        r = (int) k;
                        break;
                }
                if (k == 0)
                        end = true;
                n += (size_t) k;
        }

        unsigned status;
        if (r == 0) {
                conn_header_done(c);
                struct out out = { .size = template_worst_case(o->reply, max) };

                out.buf = malloc(out.size ? out.size : 1);
                if (!out.buf)
                        return -ENOMEM;
                r = render_reply(o->reply, c, buf + req.text_offset, req.text_len, &out);
                if (r >= 0)
                        r = send_answer(c, req.format, NL_STATUS_OK, out.buf, out.len, req.newline);
                free(out.buf);

                entry.text = buf + req.text_offset;
                entry.text_len = req.text_len;
                entry.result = r < 0 ? (r == -ETIMEDOUT ? "timeout" : "send-failed") : "ok";
                entry.priority = r < 0 ? LOG_NOTICE : LOG_INFO;
                if (r == -ETIMEDOUT) {
                        char why[160];
                        (void) xsnprintf(detail, sizeof detail, "sending the reply failed: %s",
                                         conn_timeout_text(c, why, sizeof why));
                } else if (r < 0)
                        (void) xsnprintf(detail, sizeof detail, "sending the reply failed: %s", strerror(-r));
        } else if (r == -ETIMEDOUT || r == -EBADMSG || r == -E2BIG || r == -EPROTONOSUPPORT) {
                status = nl_status_from_errno(r);
                if (r == -ETIMEDOUT) {
                        char why[160];
                        (void) xsnprintf(detail, sizeof detail, "%s",
                                         n == 0 ? "no message arrived in time"
                                                : "the rest of the message did not arrive in time");
                        /* The client's text stays that of docs/PROTOCOL.md;
                         * the log also says which limit it was. */
                        (void) xsnprintf(log_detail, sizeof log_detail, "%s: %s", detail,
                                         conn_timeout_text(c, why, sizeof why));
                        entry.detail = log_detail;
                }
                else if (r == -E2BIG)
                        (void) xsnprintf(detail, sizeof detail, "message too long: more than %zu bytes", max);
                else if (r == -EPROTONOSUPPORT)
                        (void) xsnprintf(detail, sizeof detail,
                                         "unsupported protocol version %u (this server speaks version %u)",
                                         req.version, NL_VERSION);
                else if (req.problem && strstr(req.problem, "UTF-8"))
                        (void) xsnprintf(detail, sizeof detail, "%s (bad byte at offset %zu)",
                                         req.problem, req.bad_offset);
                else
                        (void) xsnprintf(detail, sizeof detail, "%s", req.problem ? req.problem : "bad request");

                /* The text form always gets a newline on errors: they are for people. */
                (void) send_answer(c, req.format, status, detail, strlen(detail), true);
                entry.result = nl_status_name(status);
                entry.priority = LOG_NOTICE;
        } else if (r == -ENODATA) {
                entry.result = "no-request";
                entry.priority = LOG_INFO;
                (void) xsnprintf(detail, sizeof detail, "client closed without sending a message");
        } else {
                entry.result = "io-error";
                entry.priority = LOG_NOTICE;
                (void) xsnprintf(detail, sizeof detail, "reading the request failed: %s", strerror(-r));
        }

        if (!entry.detail)
                entry.detail = detail[0] ? detail : NULL;
        conn_end_request(c, &entry, MESSAGE_LINGER_USEC);
        return r < 0 ? r : 0;
}

static int svc_message_refuse(int fd, const uint8_t *first, size_t n_first, unsigned status,
                              const char *text)
{
        return service_refuse_in_form(fd, first, n_first, NL_TYPE_MSG_REPLY, status, text);
}

const struct service svc_message = {
        .name = "message",
        .socktype = SOCK_STREAM,
        .summary = "one message in, one templated reply out, per TCP connection (lab 1)",
        .keys = message_keys,
        .options_size = sizeof(struct message_options),
        .options_check = message_options_check,
        .serve_stream = svc_message_serve,
        .refuse_stream = svc_message_refuse,
        .refuse_wants_first_byte = true,
};

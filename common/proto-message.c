/* proto-message.c: the message service's request parser.
 *
 * One listener speaks two forms (docs/PROTOCOL.md, "Message service"):
 *   - netlab frames, recognised by their first byte 0x00, which the lab's
 *     strlen()-sent text can never contain;
 *   - text: the lab client's bare message with no terminator and no half-close,
 *     or a line typed into nc/telnet.  It ends at the first LF, at EOF, or when
 *     the caller says no more bytes are coming (its settle time passed).
 * The parser is pure and incremental: it looks only at the bytes received so
 * far and says "need more", "done" or what is wrong. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "util.h"

static int text_finish(const uint8_t *buf, size_t len, size_t max, bool newline,
                       struct msg_request *req)
{
        size_t bad;

        /* A line typed on a terminal or telnet ends in CR LF. */
        if (len > 0 && buf[len - 1] == '\r')
                len--;

        req->text_offset = 0;
        req->text_len = len;
        req->newline = newline;

        if (len > max) {
                req->problem = "message too long";
                return -E2BIG;
        }
        if (text_check(buf, len, &bad) < 0) {
                req->problem = "message is not printable UTF-8 text";
                req->bad_offset = bad;
                return -EBADMSG;
        }
        return 0;
}

static int parse_text(const uint8_t *buf, size_t n, bool end, size_t max, struct msg_request *req)
{
        const uint8_t *lf = n > 0 ? memchr(buf, '\n', n) : NULL;

        if (lf)
                return text_finish(buf, (size_t) (lf - buf), max, true, req);

        /* No LF yet.  max bytes of text plus a CR waiting for its LF may still
         * be a valid line; anything longer never can be. */
        if (n > max + 1 || (n == max + 1 && buf[max] != '\r')) {
                req->problem = "message too long";
                req->text_len = n;
                return -E2BIG;
        }
        if (!end)
                return -EAGAIN;
        if (n == 0) {
                req->problem = "no message received";
                return -ENODATA;
        }
        return text_finish(buf, n, max, false, req);
}

static int parse_frame(const uint8_t *buf, size_t n, bool end, size_t max, struct msg_request *req)
{
        struct nl_header h;
        size_t bad;
        int r;

        r = nl_header_decode(buf, n, &h);
        if (r == -EAGAIN) {
                if (!end)
                        return -EAGAIN;
                req->problem = "connection closed inside the frame header";
                return -EBADMSG;
        }
        if (r == -EPROTONOSUPPORT) {
                req->version = h.version;
                req->problem = "unsupported protocol version";
                return r;
        }
        if (r < 0) {
                req->problem = "malformed frame header";
                return r;
        }

        req->version = h.version;
        if (h.type != NL_TYPE_MSG_SEND) {
                req->problem = "unexpected frame type (expected MSG_SEND)";
                return -EBADMSG;
        }
        if (h.status != 0) {
                req->problem = "status must be 0 in a request";
                return -EBADMSG;
        }

        /* Refuse an oversized body before waiting for (or buffering) it. */
        req->text_len = h.length;
        if ((uint64_t) h.length > (uint64_t) max) {
                req->problem = "message too long";
                return -E2BIG;
        }
        if (n - NL_HEADER_SIZE < h.length) {
                if (!end)
                        return -EAGAIN;
                req->problem = "connection closed before the whole message arrived";
                return -EBADMSG;
        }

        req->text_offset = NL_HEADER_SIZE;
        if (text_check(buf + NL_HEADER_SIZE, h.length, &bad) < 0) {
                req->problem = "message is not printable UTF-8 text";
                req->bad_offset = bad;
                return -EBADMSG;
        }
        return 0;
}

int msg_request_parse(const uint8_t *buf, size_t n, bool end, size_t max, struct msg_request *req)
{
        *req = (struct msg_request) {
                .format = nl_is_frame_start(buf, n) ? MSG_FORMAT_NETLAB : MSG_FORMAT_TEXT,
        };

        if (req->format == MSG_FORMAT_NETLAB)
                return parse_frame(buf, n, end, max, req);
        return parse_text(buf, n, end, max, req);
}

/* fuzz-message.c: the message service's request parser and the frame header
 * (common/proto-message.c, common/proto.c), what netlabd reads from any TCP
 * client of a message listener.
 *
 * Input: byte 0 picks max_message from a table of boundaries; the rest is
 * the byte stream the client sent.  Checked:
 *   - only the documented results, with a problem text on every refusal;
 *   - a success describes text inside the buffer that is printable UTF-8,
 *     at most max bytes, with no LF, and for a frame starts at byte 12;
 *   - streaming: once a prefix (fed with end = false) gives a result other
 *     than "need more", every longer prefix and end = true give the same one,
 *     so how the bytes were split by TCP cannot change the answer;
 *   - round trip: accepted text re-sent as a frame (and a frame's text
 *     re-sent as a line) parses back to the same text;
 *   - the frame header decoder and text_escape() on the same bytes. */
#include <errno.h>

#include "fuzz.h"
#include "proto.h"
#include "util.h"

static const size_t max_table[] = { 0, 1, 2, 12, 31, 32, 4096, NL_MSG_MAX_LIMIT };

/* The first prefix lengths are all checked, then a sample: the parser is
 * linear, so checking every prefix of a 1 MiB input would be quadratic. */
#define ALL_PREFIXES 300u
#define SAMPLED_PREFIXES 64u

static int parse_copy(const uint8_t *buf, size_t n, bool end, size_t max, struct msg_request *req)
{
        uint8_t *copy = fuzz_dup(buf, n);
        int r = msg_request_parse(copy, n, end, max, req);

        /* Fields point nowhere into the buffer (offsets only): safe to free. */
        free(copy);
        return r;
}

static void check_result(const uint8_t *buf, size_t n, bool end, size_t max, int r,
                         const struct msg_request *req)
{
        if (end)
                fuzz_check(FUZZ_RC_IN(r, 0, -ENODATA, -EBADMSG, -E2BIG, -EPROTONOSUPPORT), "r=%d", r);
        else
                fuzz_check(FUZZ_RC_IN(r, 0, -EAGAIN, -EBADMSG, -E2BIG, -EPROTONOSUPPORT), "r=%d", r);
        fuzz_check(req->format == (n > 0 && buf[0] == 0 ? MSG_FORMAT_NETLAB : MSG_FORMAT_TEXT),
                   "format %d", (int) req->format);
        if (r < 0 && r != -EAGAIN)
                fuzz_check(req->problem != NULL, "r=%d without a problem", r);
        if (r != 0)
                return;

        fuzz_check(req->text_offset <= n && req->text_len <= n - req->text_offset,
                   "text [%zu, +%zu) outside %zu bytes", req->text_offset, req->text_len, n);
        fuzz_check(req->text_len <= max, "text_len %zu > max %zu", req->text_len, max);
        fuzz_check(text_check(buf + req->text_offset, req->text_len, NULL) == 0, "text not text");
        if (req->format == MSG_FORMAT_NETLAB) {
                struct nl_header h;

                fuzz_check(req->text_offset == NL_HEADER_SIZE, "frame text at %zu", req->text_offset);
                fuzz_check(nl_header_decode(buf, n, &h) == 0 && h.type == NL_TYPE_MSG_SEND &&
                                   h.status == 0 && h.length == req->text_len,
                           "accepted frame with a bad header");
                fuzz_check(req->version == NL_VERSION, "version %u", req->version);
        } else {
                fuzz_check(req->text_offset == 0, "text at %zu", req->text_offset);
                fuzz_check(!memchr(buf, '\n', req->text_len), "LF inside the text");
                if (req->newline) {
                        size_t lf = req->text_len;

                        if (lf < n && buf[lf] == '\r')
                                lf++;
                        fuzz_check(lf < n && buf[lf] == '\n', "newline set without an LF");
                } else
                        fuzz_check(end, "a line without LF accepted before the end");
        }
}

static void check_streaming(const uint8_t *buf, size_t n, size_t max)
{
        struct msg_request first = {}, req;
        int first_r = -EAGAIN;
        size_t step = n <= ALL_PREFIXES ? 1 : (n - ALL_PREFIXES) / SAMPLED_PREFIXES + 1;

        for (size_t k = 0; k <= n; k++) {
                if (k > ALL_PREFIXES && k != n && (k - ALL_PREFIXES) % step != 0)
                        continue;

                int r = parse_copy(buf, k, false, max, &req);

                check_result(buf, k, false, max, r, &req);
                if (first_r == -EAGAIN) {
                        if (r == -EAGAIN)
                                continue;
                        first_r = r;
                        first = req;

                        /* The same bytes with end set: the same answer. */
                        int r_end = parse_copy(buf, k, true, max, &req);
                        fuzz_check(r_end == r, "prefix %zu: end=false %d, end=true %d", k, r, r_end);
                        continue;
                }
                fuzz_check(r == first_r, "prefix %zu gives %d after %d", k, r, first_r);
                if (r == 0)
                        fuzz_check(req.text_offset == first.text_offset &&
                                           req.text_len == first.text_len &&
                                           req.newline == first.newline,
                                   "prefix %zu: another text", k);
        }
}

static void check_round_trip(const uint8_t *buf, size_t n, size_t max, const struct msg_request *req)
{
        const uint8_t *text = buf + req->text_offset;
        struct msg_request again;
        uint8_t *out;
        size_t size;
        int r;

        if (req->format == MSG_FORMAT_TEXT) {
                /* The same text as a netlab frame. */
                size = NL_HEADER_SIZE + req->text_len;
                out = malloc(size);
                fuzz_check(out != NULL, "malloc");
                r = nl_frame_encode(out, size, NL_TYPE_MSG_SEND, 0, text, req->text_len);
                fuzz_check(r == (int) size, "nl_frame_encode %d", r);
                r = msg_request_parse(out, size, false, max, &again);
                fuzz_check(r == 0 && again.format == MSG_FORMAT_NETLAB &&
                                   again.text_len == req->text_len &&
                                   memcmp(out + again.text_offset, text, req->text_len) == 0,
                           "text re-sent as a frame: %d", r);
                free(out);
                return;
        }

        /* A frame's text as a line; a text starting with NUL cannot exist
         * (text_check refuses NUL), and an empty one is no line. */
        if (req->text_len == 0)
                return;
        size = req->text_len + 1;
        out = malloc(size);
        fuzz_check(out != NULL, "malloc");
        memcpy(out, text, req->text_len);
        out[req->text_len] = '\n';
        r = msg_request_parse(out, size, false, max, &again);
        fuzz_check(r == 0 && again.format == MSG_FORMAT_TEXT && again.newline &&
                           again.text_len == req->text_len && memcmp(out, text, req->text_len) == 0,
                   "frame text re-sent as a line: %d", r);
        free(out);
}

static void check_escape(const uint8_t *buf, size_t n)
{
        char out[64];
        size_t len = text_escape(out, sizeof out, buf, n);

        fuzz_check(len < sizeof out && out[len] == '\0' && strlen(out) == len, "escape length %zu", len);
        for (size_t i = 0; i < len; i++)
                fuzz_check(out[i] >= 0x20 && out[i] < 0x7f, "unprintable byte in escaped text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct msg_request req;
        struct nl_header h;
        size_t max, n;
        uint8_t *buf;
        int r;

        if (size < 1)
                return 0;
        max = max_table[data[0] % (sizeof max_table / sizeof max_table[0])];
        n = size - 1;
        buf = fuzz_dup(data + 1, n);

        r = nl_header_decode(buf, n, &h);
        fuzz_check(FUZZ_RC_IN(r, 0, -EAGAIN, -EBADMSG, -EPROTONOSUPPORT), "header r=%d", r);
        if (r == -EAGAIN)
                fuzz_check(n < NL_HEADER_SIZE, "need more with %zu bytes", n);
        if (r == 0)
                fuzz_check(h.version == NL_VERSION, "version %u", h.version);

        for (int end = 0; end <= 1; end++) {
                r = msg_request_parse(buf, n, end, max, &req);
                check_result(buf, n, end, max, r, &req);
                if (r == 0)
                        check_round_trip(buf, n, max, &req);
        }
        check_streaming(buf, n, max);
        check_escape(buf, n);
        free(buf);
        return 0;
}

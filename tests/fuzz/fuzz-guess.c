/* fuzz-guess.c: the guess service's text protocol (common/proto-guess.c):
 * requests netlabd reads from any UDP source, replies netlabctl reads from a
 * server it does not trust.
 *
 * Input: byte 0 picks request, reply or number/name matching; the rest is
 * the datagram (or the two strings, split at the first NUL).  Checked:
 *   - only the documented results, a problem on every refused request;
 *   - a request's value lies inside the datagram, before any LF or '#',
 *     non-empty, at most 128 bytes, without spaces at its ends;
 *   - round trip: a request formatted back (padded like netlabctl's) parses
 *     to the same verb, nonce, id and value, and a reply formatted back
 *     parses to the same fields;
 *   - guess_number_parse() accepts exactly the canonical decimals of
 *     [-10^9, 10^9] (formatting the result gives the input back);
 *   - guess_names_match() is symmetric, and a name matches itself exactly
 *     when it has a byte that counts. */
#include <errno.h>
#include <inttypes.h>

#include "fuzz.h"
#include "proto.h"

enum mode {
        MODE_REQUEST,
        MODE_REPLY,
        MODE_MATCH,
        _MODE_MAX,
};

static bool same_text(const char *a, size_t a_len, const char *b, size_t b_len)
{
        return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static void check_request(const uint8_t *buf, size_t n)
{
        struct guess_request req, again;
        char out[NL_GUESS_REQUEST_MAX + 64];
        int r = guess_request_parse(buf, n, &req);

        fuzz_check(FUZZ_RC_IN(r, 0, -E2BIG, -EBADMSG), "r=%d", r);
        if (r < 0) {
                fuzz_check(req.problem != NULL, "refused without a problem");
                if (r == -E2BIG)
                        fuzz_check(n > NL_GUESS_REQUEST_MAX, "-E2BIG for %zu bytes", n);
                return;
        }
        fuzz_check(n <= NL_GUESS_REQUEST_MAX, "accepted %zu bytes", n);
        if (req.verb == GUESS_PLAY) {
                fuzz_check(req.value == NULL && !req.has_id, "play with a value");
        } else {
                fuzz_check(req.verb == GUESS_GUESS || req.verb == GUESS_BARE, "verb %d", (int) req.verb);
                fuzz_check(fuzz_inside(req.value, req.value_len, buf, n) && req.value_len > 0 &&
                                   req.value_len <= NL_GUESS_VALUE_MAX,
                           "value %zu bytes", req.value_len);
                fuzz_check(!memchr(req.value, '\n', req.value_len) &&
                                   !memchr(req.value, '#', req.value_len),
                           "value holds padding");
                fuzz_check(req.value[0] != ' ' && req.value[0] != '\t' &&
                                   req.value[req.value_len - 1] != ' ' &&
                                   req.value[req.value_len - 1] != '\t',
                           "value not trimmed");
                fuzz_check(req.verb == GUESS_GUESS || (!req.has_id && !req.has_nonce),
                           "bare guess with ids");
        }

        /* What netlabctl would send for it parses back to the same request. */
        r = guess_request_format(out, sizeof out, &req, NL_GUESS_PAD);
        fuzz_check(r > 0, "an accepted request cannot be formatted: %d", r);
        fuzz_check((size_t) r >= NL_GUESS_PAD && (size_t) r <= sizeof out && out[r - 1] == '\n',
                   "formatted %d bytes", r);
        uint8_t *copy = fuzz_dup((const uint8_t *) out, (size_t) r);
        r = guess_request_parse(copy, (size_t) r, &again);
        fuzz_check(r == 0 && again.verb == req.verb && again.has_nonce == req.has_nonce &&
                           again.nonce == req.nonce && again.has_id == req.has_id &&
                           again.id == req.id &&
                           same_text(again.value, again.value_len, req.value, req.value_len),
                   "formatted request parses differently: %d", r);
        free(copy);
}

static bool same_reply(const struct guess_reply *a, const struct guess_reply *b)
{
        return a->kind == b->kind && a->has_id == b->has_id && a->id == b->id &&
               a->tries == b->tries && a->has_range == b->has_range && a->lo == b->lo &&
               a->hi == b->hi && a->direction == b->direction && a->status == b->status &&
               same_text(a->text, a->text_len, b->text, b->text_len);
}

static void check_reply(const uint8_t *buf, size_t n)
{
        struct guess_reply rep, again;
        char out[2 * NL_GUESS_REPLY_MAX];
        int r = guess_reply_parse(buf, n, &rep);

        fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG), "r=%d", r);
        if (r < 0)
                return;
        fuzz_check(n > 0 && n <= NL_GUESS_REPLY_MAX && buf[n - 1] == '\n', "accepted %zu bytes", n);
        fuzz_check(fuzz_inside(rep.text, rep.text_len, buf, n - 1), "text outside the line");
        fuzz_check(!rep.has_range || rep.lo <= rep.hi, "range %" PRId64 "..%" PRId64, rep.lo, rep.hi);
        fuzz_check(rep.status <= 255, "status %u", rep.status);

        r = guess_reply_format(out, sizeof out, &rep);
        fuzz_check(r > 0 && (size_t) r < sizeof out, "an accepted reply cannot be formatted: %d", r);
        uint8_t *copy = fuzz_dup((const uint8_t *) out, (size_t) r);
        r = guess_reply_parse(copy, (size_t) r, &again);
        fuzz_check(r == 0 && same_reply(&rep, &again), "formatted reply parses differently: %d", r);
        free(copy);
}

static void check_match(const uint8_t *buf, size_t n)
{
        const uint8_t *nul = memchr(buf, 0, n);
        size_t a_len = nul ? (size_t) (nul - buf) : n;
        const char *a = (const char *) buf, *b = nul ? (const char *) nul + 1 : a + n;
        size_t b_len = nul ? n - a_len - 1 : 0;
        int64_t v;
        char back[32];

        if (guess_number_parse(a, a_len, &v) == 0) {
                int k = snprintf(back, sizeof back, "%" PRId64, v);

                fuzz_check(v >= -1000000000 && v <= 1000000000, "number %" PRId64, v);
                fuzz_check(k > 0 && (size_t) k == a_len && memcmp(back, a, a_len) == 0,
                           "number %" PRId64 " spelled another way", v);
        }

        bool ab = guess_names_match(a, a_len, b, b_len), ba = guess_names_match(b, b_len, a, a_len);
        fuzz_check(ab == ba, "match not symmetric");

        bool counts = false;
        for (size_t i = 0; i < a_len; i++)
                if (!strchr(" \t.-'", a[i]) || a[i] == 0)
                        counts = true;
        fuzz_check(guess_names_match(a, a_len, a, a_len) == counts, "self match");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *buf;
        size_t n;

        if (size < 1)
                return 0;
        n = size - 1;
        buf = fuzz_dup(data + 1, n);
        switch (data[0] % _MODE_MAX) {
        case MODE_REQUEST:
                check_request(buf, n);
                break;
        case MODE_REPLY:
                check_reply(buf, n);
                break;
        case MODE_MATCH:
                check_match(buf, n);
                break;
        }
        free(buf);
        return 0;
}

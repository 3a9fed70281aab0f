/* proto-guess.c: the guess service's text protocol (docs/PROTOCOL.md, 10.2).
 *
 * Requests come from anyone who can forge a UDP source address, replies from
 * a server the client does not trust: both parsers take a length-delimited
 * buffer, never read past it, never allocate, and hand back fields that point
 * into it.  Only the line before the first LF or '#' is read; the rest is
 * padding that exists to make a datagram big enough for its reply. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "util.h"

#define GUESS_ID_DIGITS 8u
#define GUESS_NUMBER_LIMIT 1000000000 /* |number| at most 10^9: ten digits */

static bool is_space(char c)
{
        return c == ' ' || c == '\t';
}

static char fold(char c)
{
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

/* Does s[0..n) equal the lower-case word w, ignoring ASCII case? */
static bool word_is(const char *s, size_t n, const char *w)
{
        size_t len = strlen(w);

        if (n != len)
                return false;
        for (size_t i = 0; i < n; i++)
                if (fold(s[i]) != w[i])
                        return false;
        return true;
}

/* Does s[0..n) start with the lower-case prefix p, ignoring ASCII case? */
static bool has_prefix(const char *s, size_t n, const char *p)
{
        size_t len = strlen(p);

        return n >= len && word_is(s, len, p);
}

/* Exactly GUESS_ID_DIGITS hex digits, either case.  Return: 0; -EINVAL. */
static int parse_hex32(const char *s, size_t n, uint32_t *ret)
{
        uint32_t v = 0;

        if (n != GUESS_ID_DIGITS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = fold(s[i]);
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned) (c - 'a' + 10);
                else
                        return -EINVAL;
                v = (v << 4) | d;
        }
        *ret = v;
        return 0;
}

int guess_number_parse(const char *s, size_t n, int64_t *ret)
{
        bool neg = false;
        int64_t v = 0;
        size_t i = 0;

        if (n > 0 && s[0] == '-') {
                neg = true;
                i = 1;
        }
        if (i == n || n - i > 10)
                return -EINVAL;
        if (s[i] == '0' && (n - i > 1 || neg))
                return -EINVAL; /* leading zeros, "-0" */
        for (; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        if (v > GUESS_NUMBER_LIMIT)
                return -EINVAL;
        *ret = neg ? -v : v;
        return 0;
}

/* Skip spaces from *i to at most end. */
static void skip_spaces(const char *s, size_t *i, size_t end)
{
        while (*i < end && is_space(s[*i]))
                (*i)++;
}

/* The word starting at *i: its end, not past end. */
static size_t word_end(const char *s, size_t i, size_t end)
{
        while (i < end && !is_space(s[i]))
                i++;
        return i;
}

static int request_error(struct guess_request *ret, int err, const char *problem)
{
        ret->problem = problem;
        return err;
}

int guess_request_parse(const uint8_t *buf, size_t n, struct guess_request *ret)
{
        const char *s = (const char *) buf;
        size_t end = 0, start = 0;

        *ret = (struct guess_request) {};
        if (n > NL_GUESS_REQUEST_MAX)
                return request_error(ret, -E2BIG, "request too long");

        while (end < n && s[end] != '\n' && s[end] != '#')
                end++;
        if (end < n && s[end] == '\n' && end > 0 && s[end - 1] == '\r')
                end--;
        if (text_check(buf, end, NULL) < 0)
                return request_error(ret, -EBADMSG, "not text");

        skip_spaces(s, &start, end);
        while (end > start && is_space(s[end - 1]))
                end--;
        if (start == end)
                return request_error(ret, -EBADMSG, "empty; send play");

        size_t w = word_end(s, start, end);
        if (word_is(s + start, w - start, "play")) {
                ret->verb = GUESS_PLAY;
                for (size_t i = w; i < end;) {
                        skip_spaces(s, &i, end);
                        size_t e = word_end(s, i, end);
                        if (has_prefix(s + i, e - i, "nonce=")) {
                                if (parse_hex32(s + i + 6, e - i - 6, &ret->nonce) < 0)
                                        return request_error(ret, -EBADMSG, "bad request");
                                ret->has_nonce = true;
                        }
                        i = e;
                }
                return 0;
        }

        size_t v = start;
        if (word_is(s + start, w - start, "guess")) {
                ret->verb = GUESS_GUESS;
                v = w;
                skip_spaces(s, &v, end);
                size_t e = word_end(s, v, end);
                if (has_prefix(s + v, e - v, "id=")) {
                        if (parse_hex32(s + v + 3, e - v - 3, &ret->id) < 0)
                                return request_error(ret, -EBADMSG, "bad request");
                        ret->has_id = true;
                        v = e;
                        skip_spaces(s, &v, end);
                }
        } else
                ret->verb = GUESS_BARE;

        if (v == end || end - v > NL_GUESS_VALUE_MAX)
                return request_error(ret, -EBADMSG, "bad request");
        ret->value = s + v;
        ret->value_len = end - v;
        return 0;
}

/* A value the server will read back exactly: text, no '#', no LF, no spaces
 * at either end, at most NL_GUESS_VALUE_MAX bytes. */
static bool value_ok(const char *v, size_t n)
{
        if (!v || n == 0 || n > NL_GUESS_VALUE_MAX || text_check((const uint8_t *) v, n, NULL) < 0)
                return false;
        if (memchr(v, '#', n) || is_space(v[0]) || is_space(v[n - 1]))
                return false;
        return true;
}

int guess_request_format(char *buf, size_t size, const struct guess_request *req, size_t pad_to)
{
        int len;

        switch (req->verb) {
        case GUESS_PLAY:
                len = req->has_nonce ? xsnprintf(buf, size, "play nonce=%08x", (unsigned) req->nonce)
                                     : xsnprintf(buf, size, "play");
                break;
        case GUESS_GUESS:
                if (!value_ok(req->value, req->value_len))
                        return -EINVAL;
                len = req->has_id ? xsnprintf(buf, size, "guess id=%08x %.*s", (unsigned) req->id,
                                              (int) req->value_len, req->value)
                                  : xsnprintf(buf, size, "guess %.*s", (int) req->value_len, req->value);
                break;
        case GUESS_BARE: {
                if (!value_ok(req->value, req->value_len))
                        return -EINVAL;
                size_t w = word_end(req->value, 0, req->value_len);
                if (word_is(req->value, w, "play") || word_is(req->value, w, "guess"))
                        return -EINVAL; /* would be read as a keyword */
                len = xsnprintf(buf, size, "%.*s", (int) req->value_len, req->value);
                break;
        }
        default:
                return -EINVAL;
        }
        if (len < 0)
                return len;

        size_t n = (size_t) len;
        if (n + 3 < pad_to) {
                /* " #" then dots: the line ends at '#', the space is trimmed. */
                if (pad_to > size)
                        return -ENOBUFS;
                buf[n++] = ' ';
                buf[n++] = '#';
                while (n + 1 < pad_to)
                        buf[n++] = '.';
        }
        if (n + 1 > size)
                return -ENOBUFS;
        buf[n++] = '\n';
        return (int) n;
}

/* A text field of a reply: printable, no LF. */
static bool field_ok(const char *t, size_t n)
{
        return t && text_check((const uint8_t *) t, n, NULL) == 0;
}

int guess_reply_format(char *buf, size_t size, const struct guess_reply *r)
{
        char id[16] = "";
        int len;

        if (r->has_id)
                (void) xsnprintf(id, sizeof id, " id=%08x", (unsigned) r->id);

        switch (r->kind) {
        case GUESS_REPLY_ROUND:
                if (!r->has_id)
                        return -EINVAL;
                if (r->has_range)
                        len = xsnprintf(buf, size, "ROUND%s tries=%u range=%lld..%lld\n", id, r->tries,
                                        (long long) r->lo, (long long) r->hi);
                else {
                        if (!field_ok(r->text, r->text_len) || r->text_len == 0)
                                return -EINVAL;
                        len = xsnprintf(buf, size, "ROUND%s tries=%u hint=%.*s\n", id, r->tries,
                                        (int) r->text_len, r->text);
                }
                break;
        case GUESS_REPLY_WIN:
        case GUESS_REPLY_LOSE:
                if (!field_ok(r->text, r->text_len) || r->text_len == 0)
                        return -EINVAL;
                len = xsnprintf(buf, size, "%s%s answer=%.*s\n",
                                r->kind == GUESS_REPLY_WIN ? "WIN" : "LOSE", id, (int) r->text_len,
                                r->text);
                break;
        case GUESS_REPLY_WRONG:
                len = xsnprintf(buf, size, "WRONG%s tries=%u%s\n", id, r->tries,
                                r->direction > 0 ? " higher" : r->direction < 0 ? " lower" : "");
                break;
        case GUESS_REPLY_ERR:
                if (r->status > 255 || (r->text_len > 0 && !field_ok(r->text, r->text_len)))
                        return -EINVAL;
                if (r->text_len > 0)
                        len = xsnprintf(buf, size, "ERR %u %.*s\n", r->status, (int) r->text_len,
                                        r->text);
                else
                        len = xsnprintf(buf, size, "ERR %u\n", r->status);
                break;
        default:
                return -EINVAL;
        }
        return len;
}

/* Reply parsing: a cursor over the line, each step exact. */
struct line {
        const char *s;
        size_t n, i;
};

static bool take(struct line *l, const char *lit)
{
        size_t len = strlen(lit);

        if (l->n - l->i < len || memcmp(l->s + l->i, lit, len) != 0)
                return false;
        l->i += len;
        return true;
}

static bool take_id(struct line *l, uint32_t *ret)
{
        if (l->n - l->i < GUESS_ID_DIGITS)
                return false;
        for (size_t k = 0; k < GUESS_ID_DIGITS; k++) {
                char c = l->s[l->i + k];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        if (parse_hex32(l->s + l->i, GUESS_ID_DIGITS, ret) < 0)
                return false;
        l->i += GUESS_ID_DIGITS;
        return true;
}

/* Decimal digits up to a space or the end, as an unsigned number <= max. */
static bool take_uint(struct line *l, uint64_t max, uint64_t *ret)
{
        size_t e = word_end(l->s, l->i, l->n);

        if (num_parse_u64_n(l->s + l->i, e - l->i, 0, max, ret) < 0)
                return false;
        l->i = e;
        return true;
}

static bool take_optional_id(struct line *l, struct guess_reply *r)
{
        if (!take(l, " id="))
                return true;
        r->has_id = true;
        return take_id(l, &r->id);
}

static void take_rest(struct line *l, struct guess_reply *r)
{
        r->text = l->s + l->i;
        r->text_len = l->n - l->i;
        l->i = l->n;
}

int guess_reply_parse(const uint8_t *buf, size_t n, struct guess_reply *ret)
{
        struct line l = { .s = (const char *) buf, .n = n };
        uint64_t u;

        *ret = (struct guess_reply) {};
        if (n == 0 || n > NL_GUESS_REPLY_MAX || buf[n - 1] != '\n')
                return -EBADMSG;
        l.n = n - 1;
        if (text_check(buf, l.n, NULL) < 0)
                return -EBADMSG;

        if (take(&l, "ROUND id=")) {
                ret->kind = GUESS_REPLY_ROUND;
                ret->has_id = true;
                if (!take_id(&l, &ret->id) || !take(&l, " tries=") || !take_uint(&l, 1000, &u) || u == 0)
                        return -EBADMSG;
                ret->tries = (unsigned) u;
                if (take(&l, " range=")) {
                        size_t e = word_end(l.s, l.i, l.n);
                        const char *dots = NULL;
                        for (size_t k = l.i; k + 1 < e; k++)
                                if (l.s[k] == '.' && l.s[k + 1] == '.') {
                                        dots = l.s + k;
                                        break;
                                }
                        if (!dots)
                                return -EBADMSG;
                        size_t lo_len = (size_t) (dots - (l.s + l.i));
                        if (guess_number_parse(l.s + l.i, lo_len, &ret->lo) < 0 ||
                            guess_number_parse(dots + 2, e - l.i - lo_len - 2, &ret->hi) < 0 ||
                            ret->lo > ret->hi)
                                return -EBADMSG;
                        ret->has_range = true;
                        l.i = e;
                } else if (take(&l, " hint=")) {
                        take_rest(&l, ret);
                        if (ret->text_len == 0)
                                return -EBADMSG;
                } else
                        return -EBADMSG;
        } else if (take(&l, "WIN") || take(&l, "LOSE")) {
                ret->kind = l.s[0] == 'W' ? GUESS_REPLY_WIN : GUESS_REPLY_LOSE;
                if (!take_optional_id(&l, ret) || !take(&l, " answer="))
                        return -EBADMSG;
                take_rest(&l, ret);
                if (ret->text_len == 0)
                        return -EBADMSG;
        } else if (take(&l, "WRONG")) {
                ret->kind = GUESS_REPLY_WRONG;
                if (!take_optional_id(&l, ret) || !take(&l, " tries=") || !take_uint(&l, 1000, &u) ||
                    u == 0)
                        return -EBADMSG;
                ret->tries = (unsigned) u;
                if (take(&l, " higher"))
                        ret->direction = 1;
                else if (take(&l, " lower"))
                        ret->direction = -1;
        } else if (take(&l, "ERR ")) {
                ret->kind = GUESS_REPLY_ERR;
                if (!take_uint(&l, 255, &u))
                        return -EBADMSG;
                ret->status = (unsigned) u;
                if (take(&l, " "))
                        take_rest(&l, ret);
        } else
                return -EBADMSG;

        return l.i == l.n ? 0 : -EBADMSG;
}

/* Next byte of a name that counts for matching, from *i; 0 at the end. */
static char name_next(const char *s, size_t n, size_t *i)
{
        while (*i < n) {
                char c = s[(*i)++];
                if (c != ' ' && c != '\t' && c != '.' && c != '-' && c != '\'')
                        return fold(c);
        }
        return 0;
}

bool guess_names_match(const char *a, size_t a_len, const char *b, size_t b_len)
{
        size_t i = 0, j = 0;
        bool any = false;

        for (;;) {
                char x = name_next(a, a_len, &i), y = name_next(b, b_len, &j);
                if (x != y)
                        return false;
                if (x == 0)
                        return any;
                any = true;
        }
}

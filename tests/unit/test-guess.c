/* test-guess.c: the guess text protocol (common/proto-guess.c).
 *
 * Tables of requests and replies, each with its exact result; every input is
 * an exactly-sized heap copy so ASan catches a read past it.  Then formatting
 * round trips, the padding rule, name matching and number parsing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "test-util.h"
#include "util.h"

#define B(s) (const uint8_t *) (s), sizeof(s) - 1

struct request_case {
        const char *name;
        const uint8_t *bytes;
        size_t n;
        int r;
        enum guess_verb verb;
        int nonce_or_id;       /* -1: none, else the low 16 bits expected */
        const char *value;     /* GUESS, BARE */
        const char *problem;   /* on error */
};

#define REQ_OK(name, s, verb, id, value) { name, B(s), 0, verb, id, value, NULL }
#define REQ_BAD(name, s, err, problem) { name, B(s), err, 0, -1, NULL, problem }

static const struct request_case request_cases[] = {
        REQ_OK("play", "play\n", GUESS_PLAY, -1, NULL),
        REQ_OK("PLAY, no LF", "PLAY", GUESS_PLAY, -1, NULL),
        REQ_OK("play with dots", "play ..........\n", GUESS_PLAY, -1, NULL),
        REQ_OK("play, CRLF", "play\r\n", GUESS_PLAY, -1, NULL),
        REQ_OK("play nonce", "play nonce=0000beef #....\n", GUESS_PLAY, 0xbeef, NULL),
        REQ_OK("play NONCE upper hex", "Play NONCE=0000BEEF", GUESS_PLAY, 0xbeef, NULL),
        REQ_OK("play, padding holds junk", "play\n\0\xff\x01\n", GUESS_PLAY, -1, NULL),
        REQ_OK("play, tabs", "\tplay\t \n", GUESS_PLAY, -1, NULL),
        REQ_OK("guess", "guess 4\n", GUESS_GUESS, -1, "4"),
        REQ_OK("guess id", "guess id=1234abcd 4 #....", GUESS_GUESS, 0xabcd, "4"),
        REQ_OK("GUESS, name with spaces", "GUESS  Albert   Einstein  \n", GUESS_GUESS, -1,
               "Albert   Einstein"),
        REQ_OK("bare number", "4\n", GUESS_BARE, -1, "4"),
        REQ_OK("bare name", " marie curie \r\n", GUESS_BARE, -1, "marie curie"),
        REQ_OK("bare, UTF-8", "Erwin Schr\xc3\xb6""dinger\n", GUESS_BARE, -1, "Erwin Schr\xc3\xb6""dinger"),
        REQ_OK("playing is a bare word", "playing\n", GUESS_BARE, -1, "playing"),
        REQ_OK("guess value 128 bytes", "guess " "12345678901234567890123456789012345678901234567890"
               "12345678901234567890123456789012345678901234567890" "1234567890123456789012345678",
               GUESS_GUESS, -1, "12345678901234567890123456789012345678901234567890"
               "12345678901234567890123456789012345678901234567890" "1234567890123456789012345678"),

        REQ_BAD("empty datagram", "", -EBADMSG, "empty; send play"),
        REQ_BAD("LF only", "\n", -EBADMSG, "empty; send play"),
        REQ_BAD("spaces only", "   \n", -EBADMSG, "empty; send play"),
        REQ_BAD("comment only", "#play\n", -EBADMSG, "empty; send play"),
        REQ_BAD("NUL in line", "pl\0ay\n", -EBADMSG, "not text"),
        REQ_BAD("bad UTF-8", "\xc3\x28\n", -EBADMSG, "not text"),
        REQ_BAD("CR alone", "play\rx\n", -EBADMSG, "not text"),
        REQ_BAD("guess, no value", "guess\n", -EBADMSG, "bad request"),
        REQ_BAD("guess id, no value", "guess id=12345678\n", -EBADMSG, "bad request"),
        REQ_BAD("id too short", "guess id=1234 4\n", -EBADMSG, "bad request"),
        REQ_BAD("id not hex", "guess id=1234567g 4\n", -EBADMSG, "bad request"),
        REQ_BAD("nonce too long", "play nonce=123456789\n", -EBADMSG, "bad request"),
        REQ_BAD("value 129 bytes", "guess " "12345678901234567890123456789012345678901234567890"
                "12345678901234567890123456789012345678901234567890" "12345678901234567890123456789",
                -EBADMSG, "bad request"),
};

static void test_requests(void)
{
        for (size_t i = 0; i < ELEMENTSOF(request_cases); i++) {
                const struct request_case *c = &request_cases[i];
                uint8_t *copy = test_dup_exact(c->bytes, c->n);
                struct guess_request req;

                TEST_CASE("request: %s", c->name);
                int r = guess_request_parse(copy, c->n, &req);
                CHECK_ERR(r, c->r);
                if (r < 0) {
                        CHECK_STR(req.problem, c->problem);
                } else {
                        CHECK_INT(req.verb, c->verb);
                        bool has = c->verb == GUESS_PLAY ? req.has_nonce : req.has_id;
                        uint32_t v = c->verb == GUESS_PLAY ? req.nonce : req.id;
                        CHECK_INT(has, c->nonce_or_id >= 0);
                        if (c->nonce_or_id >= 0)
                                CHECK_INT(v & 0xffff, c->nonce_or_id);
                        if (c->value)
                                CHECK_MEM(req.value, req.value_len, c->value, strlen(c->value));
                        else
                                CHECK(req.value == NULL);
                }
                free(copy);
        }

        TEST_CASE("request: over 1024 bytes");
        uint8_t big[NL_GUESS_REQUEST_MAX + 1];
        struct guess_request req;
        memset(big, '.', sizeof big);
        memcpy(big, "play #", 6);
        CHECK_ERR(guess_request_parse(big, sizeof big, &req), -E2BIG);
        CHECK_STR(req.problem, "request too long");
        TEST_CASE("request: exactly 1024 bytes");
        CHECK_ERR(guess_request_parse(big, sizeof big - 1, &req), 0);
}

static void test_request_format(void)
{
        char buf[NL_GUESS_REQUEST_MAX];
        struct guess_request req, back;

        TEST_CASE("format: play, padded");
        req = (struct guess_request) { .verb = GUESS_PLAY, .has_nonce = true, .nonce = 0x5c0ffee1 };
        int n = guess_request_format(buf, sizeof buf, &req, NL_GUESS_PAD);
        CHECK_INT(n, NL_GUESS_PAD);
        if (n > 0) {
                CHECK(memcmp(buf, "play nonce=5c0ffee1 #...", 24) == 0);
                CHECK_INT(buf[n - 1], '\n');
                CHECK_ERR(guess_request_parse((uint8_t *) buf, (size_t) n, &back), 0);
                CHECK_INT(back.verb, GUESS_PLAY);
                CHECK_U64(back.nonce, 0x5c0ffee1);
        }

        TEST_CASE("format: guess with id, padded, round trip");
        req = (struct guess_request) { .verb = GUESS_GUESS, .has_id = true, .id = 0x9f86d081,
                                       .value = "Albert Einstein", .value_len = 15 };
        n = guess_request_format(buf, sizeof buf, &req, NL_GUESS_PAD);
        CHECK_INT(n, NL_GUESS_PAD);
        if (n > 0 && CHECK_ERR(guess_request_parse((uint8_t *) buf, (size_t) n, &back), 0)) {
                CHECK_INT(back.verb, GUESS_GUESS);
                CHECK_U64(back.id, 0x9f86d081);
                CHECK_MEM(back.value, back.value_len, "Albert Einstein", 15);
        }

        TEST_CASE("format: no padding wanted");
        req = (struct guess_request) { .verb = GUESS_GUESS, .value = "4", .value_len = 1 };
        n = guess_request_format(buf, sizeof buf, &req, 0);
        CHECK_MEM(buf, n > 0 ? (size_t) n : 0, "guess 4\n", 8);

        TEST_CASE("format: bad values");
        static const char *const bad[] = { "", " 4", "4 ", "a#b", "a\nb", "play", "guess x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                req = (struct guess_request) { .verb = GUESS_BARE, .value = bad[i], .value_len = strlen(bad[i]) };
                CHECK_ERR(guess_request_format(buf, sizeof buf, &req, 0), -EINVAL);
        }
        req = (struct guess_request) { .verb = GUESS_GUESS, .value = "a#b", .value_len = 3 };
        CHECK_ERR(guess_request_format(buf, sizeof buf, &req, 0), -EINVAL);

        TEST_CASE("format: buffer too small for the padding");
        req = (struct guess_request) { .verb = GUESS_PLAY };
        CHECK_ERR(guess_request_format(buf, 100, &req, NL_GUESS_PAD), -ENOBUFS);
}

struct reply_case {
        const char *name;
        const uint8_t *bytes;
        size_t n;
        int r;
        enum guess_reply_kind kind;
        const char *text;
};

#define REP_OK(name, s, kind, text) { name, B(s), 0, kind, text }
#define REP_BAD(name, s) { name, B(s), -EBADMSG, 0, NULL }

static const struct reply_case reply_cases[] = {
        REP_OK("round range", "ROUND id=9f86d081 tries=1 range=1..6\n", GUESS_REPLY_ROUND, NULL),
        REP_OK("round negative range", "ROUND id=9f86d081 tries=3 range=-10..-2\n", GUESS_REPLY_ROUND, NULL),
        REP_OK("round hint", "ROUND id=9f86d081 tries=1 hint=E = mc^2, 1905\n", GUESS_REPLY_ROUND,
               "E = mc^2, 1905"),
        REP_OK("win", "WIN id=9f86d081 answer=4\n", GUESS_REPLY_WIN, "4"),
        REP_OK("win without id", "WIN answer=Marie Curie\n", GUESS_REPLY_WIN, "Marie Curie"),
        REP_OK("lose", "LOSE id=9f86d081 answer=Ada Lovelace\n", GUESS_REPLY_LOSE, "Ada Lovelace"),
        REP_OK("wrong higher", "WRONG id=9f86d081 tries=2 higher\n", GUESS_REPLY_WRONG, NULL),
        REP_OK("wrong plain", "WRONG tries=1\n", GUESS_REPLY_WRONG, NULL),
        REP_OK("err with text", "ERR 4 no round; send play\n", GUESS_REPLY_ERR, "no round; send play"),
        REP_OK("err bare", "ERR 1\n", GUESS_REPLY_ERR, ""),

        REP_BAD("no LF", "WIN answer=4"),
        REP_BAD("two lines", "WIN answer=4\nWIN answer=5\n"),
        REP_BAD("unknown keyword", "DRAW answer=4\n"),
        REP_BAD("upper-case id", "ROUND id=9F86D081 tries=1 range=1..6\n"),
        REP_BAD("short id", "ROUND id=9f86 tries=1 range=1..6\n"),
        REP_BAD("round without id", "ROUND tries=1 range=1..6\n"),
        REP_BAD("zero tries", "ROUND id=9f86d081 tries=0 range=1..6\n"),
        REP_BAD("inverted range", "ROUND id=9f86d081 tries=1 range=6..1\n"),
        REP_BAD("range junk", "ROUND id=9f86d081 tries=1 range=1..6x\n"),
        REP_BAD("range one number", "ROUND id=9f86d081 tries=1 range=16\n"),
        REP_BAD("empty hint", "ROUND id=9f86d081 tries=1 hint=\n"),
        REP_BAD("empty answer", "WIN answer=\n"),
        REP_BAD("wrong junk", "WRONG tries=1 sideways\n"),
        REP_BAD("err code 256", "ERR 256\n"),
        REP_BAD("err no code", "ERR x\n"),
        REP_BAD("control byte", "WIN answer=\x1b[2J\n"),
        REP_BAD("empty", ""),
};

static void test_replies(void)
{
        for (size_t i = 0; i < ELEMENTSOF(reply_cases); i++) {
                const struct reply_case *c = &reply_cases[i];
                uint8_t *copy = test_dup_exact(c->bytes, c->n);
                struct guess_reply rep;

                TEST_CASE("reply: %s", c->name);
                int r = guess_reply_parse(copy, c->n, &rep);
                CHECK_ERR(r, c->r);
                if (r == 0) {
                        CHECK_INT(rep.kind, c->kind);
                        if (c->text)
                                CHECK_MEM(rep.text, rep.text_len, c->text, strlen(c->text));
                }
                free(copy);
        }

        struct guess_reply rep;
        TEST_CASE("reply: round range fields");
        if (CHECK_ERR(guess_reply_parse(B("ROUND id=9f86d081 tries=3 range=-10..-2\n"), &rep), 0)) {
                CHECK_U64(rep.id, 0x9f86d081);
                CHECK_INT(rep.tries, 3);
                CHECK(rep.has_range);
                CHECK_INT(rep.lo, -10);
                CHECK_INT(rep.hi, -2);
        }
        TEST_CASE("reply: wrong fields");
        if (CHECK_ERR(guess_reply_parse(B("WRONG id=0000000a tries=2 lower\n"), &rep), 0)) {
                CHECK(rep.has_id);
                CHECK_U64(rep.id, 10);
                CHECK_INT(rep.tries, 2);
                CHECK_INT(rep.direction, -1);
        }
        TEST_CASE("reply: err fields");
        if (CHECK_ERR(guess_reply_parse(B("ERR 3 busy, try again later\n"), &rep), 0))
                CHECK_INT(rep.status, 3);
}

static void test_reply_format(void)
{
        char buf[NL_GUESS_REPLY_MAX];
        struct guess_reply back;
        const struct guess_reply replies[] = {
                { .kind = GUESS_REPLY_ROUND, .has_id = true, .id = 1, .tries = 1, .has_range = true, .lo = 1, .hi = 6 },
                { .kind = GUESS_REPLY_ROUND, .has_id = true, .id = 2, .tries = 2, .text = "A hint", .text_len = 6 },
                { .kind = GUESS_REPLY_WIN, .text = "4", .text_len = 1 },
                { .kind = GUESS_REPLY_LOSE, .has_id = true, .id = 0xffffffff, .text = "Ada", .text_len = 3 },
                { .kind = GUESS_REPLY_WRONG, .tries = 5, .direction = 1 },
                { .kind = GUESS_REPLY_ERR, .status = 6, .text = "round expired", .text_len = 13 },
                { .kind = GUESS_REPLY_ERR, .status = 1 },
        };
        static const char *const want[] = {
                "ROUND id=00000001 tries=1 range=1..6\n",
                "ROUND id=00000002 tries=2 hint=A hint\n",
                "WIN answer=4\n",
                "LOSE id=ffffffff answer=Ada\n",
                "WRONG tries=5 higher\n",
                "ERR 6 round expired\n",
                "ERR 1\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(replies); i++) {
                TEST_CASE("reply format %zu", i);
                int n = guess_reply_format(buf, sizeof buf, &replies[i]);
                if (!CHECK_MEM(buf, n > 0 ? (size_t) n : 0, want[i], strlen(want[i])))
                        continue;
                CHECK_ERR(guess_reply_parse((uint8_t *) buf, (size_t) n, &back), 0);
                CHECK_INT(back.kind, replies[i].kind);
                CHECK_U64(back.id, replies[i].id);
        }

        TEST_CASE("reply format: too small");
        CHECK_ERR(guess_reply_format(buf, 10, &replies[0]), -ENOBUFS);
        TEST_CASE("reply format: answer with LF");
        struct guess_reply bad = { .kind = GUESS_REPLY_WIN, .text = "a\nb", .text_len = 3 };
        CHECK_ERR(guess_reply_format(buf, sizeof buf, &bad), -EINVAL);
}

static void test_names(void)
{
        static const struct { const char *a, *b; bool match; } cases[] = {
                { "Albert Einstein", "albert einstein", true },
                { "Albert Einstein", "ALBERTEINSTEIN", true },
                { "Albert Einstein", "  albert\teinstein ", true },
                { "J. R. R. Tolkien", "jrr tolkien", true },
                { "Jean-Paul Sartre", "jean paul sartre", true },
                { "Sinead O'Connor", "sinead oconnor", true },
                { "Albert Einstein", "Albert Einstei", false },
                { "Albert Einstein", "Albert Einsteinn", false },
                { "Ada", "", false },
                { "...", "   ", false },
                { "Schr\xc3\xb6""dinger", "schr\xc3\xb6""dinger", true },
                { "Schr\xc3\xb6""dinger", "SCHR\xc3\x96""DINGER", false }, /* ASCII folding only */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("names: \"%s\" vs \"%s\"", cases[i].a, cases[i].b);
                CHECK_INT(guess_names_match(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b)),
                          cases[i].match);
        }
}

static void test_numbers(void)
{
        static const struct { const char *s; int r; int64_t v; } cases[] = {
                { "0", 0, 0 }, { "6", 0, 6 }, { "-5", 0, -5 }, { "1000000000", 0, 1000000000 },
                { "-1000000000", 0, -1000000000 }, { "1000000001", -EINVAL, 0 },
                { "10000000000", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "-", -EINVAL, 0 },
                { "+4", -EINVAL, 0 }, { "04", -EINVAL, 0 }, { "-0", -EINVAL, 0 }, { "4x", -EINVAL, 0 },
                { " 4", -EINVAL, 0 }, { "4.0", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int64_t v = 12345;
                TEST_CASE("number \"%s\"", cases[i].s);
                CHECK_ERR(guess_number_parse(cases[i].s, strlen(cases[i].s), &v), cases[i].r);
                CHECK_INT(v, cases[i].r == 0 ? cases[i].v : 12345);
        }
}

int main(void)
{
        test_requests();
        test_request_format();
        test_replies();
        test_reply_format();
        test_names();
        test_numbers();
        return test_finish();
}

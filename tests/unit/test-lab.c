/* test-lab.c: the lab's broken-download preamble (common/proto-lab.c).
 *
 * A table of good and bad preambles, each with the exact result and the
 * number of bytes after which that result is known.  Every case is parsed
 * from every prefix (STYLE.md 4: a request split at any byte parses the
 * same): shorter than that number gives "need more" and leaves the output
 * alone; from there on, exactly the final answer, so a bad byte is refused
 * as soon as it arrives.  Each prefix is an exactly-sized heap copy, so ASan
 * catches a read past it.  Then lab_download_encode() and round trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "test-util.h"
#include "util.h"

/* Bytes of a string literal, which may hold NULs. */
#define B(s) (const uint8_t *) (s), sizeof(s) - 1

#define BAD_COMMAND "the command must be an ASCII 0, 1 or 2 followed by a NUL"
#define NEGATIVE "negative offset"
#define NOT_DECIMAL "offset is not a decimal number"
#define EMPTY "empty offset"

struct lab_case {
        const char *name;
        const uint8_t *bytes;
        size_t n;
        size_t decided;      /* bytes after which the result is known */
        int r;
        char command;        /* on success */
        uint64_t offset;     /* on success */
        const char *problem; /* on -EBADMSG */
};

#define GOOD(name, s, decided, command, offset) { name, B(s), decided, 0, command, offset, NULL }
#define BAD(name, s, decided, problem) { name, B(s), decided, -EBADMSG, 0, 0, problem }

static const struct lab_case cases[] = {
        GOOD("whole file", "0\0", 2, '0', 0),
        GOOD("whole file, more bytes after", "0\0" "1\0" "5", 2, '0', 0),
        GOOD("offset 123, NUL, 6 junk bytes", "1\0" "123\0" "\xff-a 9z", 12, '1', 123),
        GOOD("command 2, ten zeros, no NUL", "2\0" "0000000000", 12, '2', 0),
        GOOD("ten nines", "1\0" "9999999999", 12, '1', 9999999999ull),
        GOOD("above 2^32", "2\0" "4294967296", 12, '2', 4294967296ull),
        GOOD("the lab client's zero padding", "2\0" "7\0\0\0\0\0\0\0\0\0", 12, '2', 7),
        GOOD("offset 0, junk", "1\0" "0\0" "12345678", 12, '1', 0),
        GOOD("nine digits and a NUL", "1\0" "123456789\0", 12, '1', 123456789),
        GOOD("leading zeros", "1\0" "0000000042", 12, '1', 42),
        GOOD("bytes after the 12 are not read", "1\0" "5\0\0\0\0\0\0\0\0\0" "x-y", 12, '1', 5),
        GOOD("junk after NUL looks like a sign", "1\0" "8\0" "-+ x\xff\x01\0\0", 12, '1', 8),

        BAD("command 3", "3\0", 1, BAD_COMMAND),
        BAD("command a", "a\0", 1, BAD_COMMAND),
        BAD("command NUL", "\0\0", 1, BAD_COMMAND),
        BAD("command space", " 1\0", 1, BAD_COMMAND),
        BAD("command 0xff", "\xff", 1, BAD_COMMAND),
        BAD("frame magic", "\0NL", 1, BAD_COMMAND),
        BAD("0x", "0x", 2, BAD_COMMAND),
        BAD("1 then a digit", "11\0", 2, BAD_COMMAND),
        BAD("1 then a space", "1 ", 2, BAD_COMMAND),
        BAD("1 then a newline", "1\n" "123", 2, BAD_COMMAND),
        BAD("2 then 0xff", "2\xff", 2, BAD_COMMAND),
        BAD("-5", "1\0" "-5\0", 3, NEGATIVE),
        BAD("+5", "1\0" "+5\0", 3, NOT_DECIMAL),
        BAD("space 5", "1\0" " 5\0", 3, NOT_DECIMAL),
        BAD("12a", "1\0" "12a\0", 5, NOT_DECIMAL),
        BAD("12-3", "2\0" "12-3\0", 5, NOT_DECIMAL),
        BAD("0x10", "2\0" "0x10\0", 4, NOT_DECIMAL),
        BAD("empty offset", "1\0" "\0" "123456789", 3, EMPTY),
        BAD("empty offset, all NUL", "2\0" "\0\0\0\0\0\0\0\0\0\0", 3, EMPTY),
        BAD("newline after digits", "1\0" "42\n", 5, NOT_DECIMAL),
        BAD("tenth byte bad", "1\0" "123456789x", 12, NOT_DECIMAL),
        BAD("tenth byte minus", "1\0" "123456789-", 12, NOT_DECIMAL),
        BAD("non-ASCII digit", "1\0" "\xd9\xa3", 3, NOT_DECIMAL),
};

static void test_parse_splits(void)
{
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct lab_case *c = &cases[i];

                for (size_t k = 0; k <= c->n; k++) {
                        _cleanup_free_ uint8_t *prefix = test_dup_exact(c->bytes, k);
                        struct lab_download_request req = {
                                .command = 'Z',
                                .offset = 77,
                                .consumed = 99,
                                .problem = "(untouched)",
                        };

                        TEST_CASE("lab: %s, first %zu of %zu bytes", c->name, k, c->n);
                        int r = lab_download_parse(prefix, k, &req);
                        if (k < c->decided) {
                                CHECK_ERR(r, -EAGAIN);
                                CHECK_INT(req.command, 'Z');
                                CHECK_U64(req.offset, 77);
                                CHECK_U64(req.consumed, 99);
                                CHECK_STR(req.problem, "(untouched)");
                                continue;
                        }
                        CHECK_ERR(r, c->r);
                        if (c->r == 0) {
                                CHECK_INT(req.command, c->command);
                                CHECK_U64(req.offset, c->offset);
                                CHECK_U64(req.consumed, c->command == '0' ? 2 : 12);
                                CHECK(req.problem == NULL);
                        } else
                                CHECK_STR(req.problem, c->problem);
                }
        }
}

/* The way the service reads: bytes arrive in two segments, split at every
 * point, appended to one buffer and re-parsed. */
static void test_parse_two_reads(void)
{
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct lab_case *c = &cases[i];

                for (size_t split = 0; split <= c->n; split++) {
                        uint8_t buf[64];
                        struct lab_download_request req = {};
                        size_t have = split;
                        int r;

                        TEST_CASE("lab: %s, reads of %zu + %zu bytes", c->name, split,
                                  c->n - split);
                        memcpy(buf, c->bytes, c->n);
                        r = lab_download_parse(buf, have, &req);
                        if (r == -EAGAIN) {
                                have = c->n;
                                r = lab_download_parse(buf, have, &req);
                        }
                        CHECK_ERR(r, c->r);
                        if (r == 0) {
                                CHECK_U64(req.offset, c->offset);
                                CHECK_INT(req.command, c->command);
                        } else
                                CHECK_STR(req.problem, c->problem);
                }
        }
}

static void test_encode(void)
{
        static const struct {
                char command;
                uint64_t offset;
                int r;
                const uint8_t *want;
                size_t want_len;
        } enc[] = {
                { '0', 0, 2, B("0\0") },
                { '0', 123, 2, B("0\0") }, /* command 0 carries no offset */
                { '1', 0, 12, B("1\0" "0\0\0\0\0\0\0\0\0\0") },
                { '1', 123, 12, B("1\0" "123\0\0\0\0\0\0\0") },
                { '2', 123456789, 12, B("2\0" "123456789\0") },
                { '2', 9999999999ull, 12, B("2\0" "9999999999") },
                { '1', 10000000000ull, -EINVAL, B("") },
                { '1', UINT64_MAX, -EINVAL, B("") },
                { '3', 0, -EINVAL, B("") },
                { 'a', 0, -EINVAL, B("") },
                { '\0', 0, -EINVAL, B("") },
        };
        uint8_t buf[32];

        for (size_t i = 0; i < ELEMENTSOF(enc); i++) {
                TEST_CASE("encode '%c' %llu", enc[i].command ? enc[i].command : '0',
                          (unsigned long long) enc[i].offset);
                memset(buf, 0x5a, sizeof buf);
                int r = lab_download_encode(buf, sizeof buf, enc[i].command, enc[i].offset);
                CHECK_ERR(r, enc[i].r);
                if (r > 0) {
                        CHECK_MEM(buf, (size_t) r, enc[i].want, enc[i].want_len);
                        CHECK_U64(buf[r], 0x5a);
                } else
                        CHECK_U64(buf[0], 0x5a);
        }

        TEST_CASE("encode: too small");
        memset(buf, 0x5a, sizeof buf);
        CHECK_ERR(lab_download_encode(buf, 1, '0', 0), -ENOBUFS);
        CHECK_ERR(lab_download_encode(buf, 11, '1', 5), -ENOBUFS);
        CHECK_ERR(lab_download_encode(buf, 0, '2', 5), -ENOBUFS);
        CHECK_U64(buf[0], 0x5a);
        CHECK_ERR(lab_download_encode(buf, 2, '0', 0), 2);
        CHECK_ERR(lab_download_encode(buf, 12, '2', 5), 12);

        /* The largest offset that fits takes precedence over the size check. */
        TEST_CASE("encode: 11 digits into 2 bytes");
        CHECK_ERR(lab_download_encode(buf, 2, '1', 10000000000ull), -EINVAL);
}

static void test_round_trip(void)
{
        static const uint64_t offsets[] = { 0, 1, 9, 10, 123, 999999999, 1000000000, 4294967295ull,
                                            4294967296ull, 9999999999ull };
        static const char commands[] = { '0', '1', '2' };

        for (size_t c = 0; c < ELEMENTSOF(commands); c++)
                for (size_t i = 0; i < ELEMENTSOF(offsets); i++) {
                        uint8_t buf[16];
                        struct lab_download_request req;

                        TEST_CASE("round trip '%c' %llu", commands[c],
                                  (unsigned long long) offsets[i]);
                        int n = lab_download_encode(buf, sizeof buf, commands[c], offsets[i]);
                        CHECK_ERR(n, commands[c] == '0' ? 2 : 12);
                        if (n < 0)
                                continue;
                        CHECK_ERR(lab_download_parse(buf, (size_t) n, &req), 0);
                        CHECK_INT(req.command, commands[c]);
                        CHECK_U64(req.offset, commands[c] == '0' ? 0 : offsets[i]);
                        CHECK_U64(req.consumed, (size_t) n);
                        /* One byte short is still a valid prefix. */
                        CHECK_ERR(lab_download_parse(buf, (size_t) n - 1, &req), -EAGAIN);
                }
}

int main(void)
{
        test_parse_splits();
        test_parse_two_reads();
        test_encode();
        test_round_trip();
        return test_finish();
}

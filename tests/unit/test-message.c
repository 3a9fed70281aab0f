/* test-message.c: frame header codec, status table (common/proto.c) and the
 * message service's incremental request parser (common/proto-message.c).
 *
 * The parser gets a table of cases for both forms, and the STYLE.md 4
 * property: a request split at any byte gives "need more" until it is
 * complete, then exactly what a one-shot parse gives. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "test-util.h"
#include "util.h"

#define B(s) (const uint8_t *) (s), sizeof(s) - 1

/* A 12-byte header: magic, version, type, status, reserved, length. */
#define HDR(version, type, status, r0, r1, len)                                                   \
        0x00, 'N', 'L', (version), (type), (status), (r0), (r1), (uint8_t) ((uint32_t) (len) >> 24), \
                (uint8_t) ((uint32_t) (len) >> 16), (uint8_t) ((uint32_t) (len) >> 8), (uint8_t) (len)

/* ---- nl_header_decode ---- */

static void test_header_decode(void)
{
        static const uint8_t good[] = { HDR(1, NL_TYPE_MSG_SEND, 0, 0, 0, 0x01020304) };
        struct nl_header h;

        TEST_CASE("header: good");
        memset(&h, 0x5a, sizeof h);
        CHECK_ERR(nl_header_decode(good, sizeof good, &h), 0);
        CHECK_U64(h.version, 1);
        CHECK_U64(h.type, NL_TYPE_MSG_SEND);
        CHECK_U64(h.status, 0);
        CHECK_U64(h.length, 0x01020304);

        TEST_CASE("header: good, followed by body bytes");
        static const uint8_t more[] = { HDR(1, NL_TYPE_MSG_REPLY, NL_STATUS_BUSY, 0, 0, 0xffffffffu),
                                        'a', 'b', 'c' };
        CHECK_ERR(nl_header_decode(more, sizeof more, &h), 0);
        CHECK_U64(h.type, NL_TYPE_MSG_REPLY);
        CHECK_U64(h.status, NL_STATUS_BUSY);
        CHECK_U64(h.length, 0xffffffffu);

        /* Every valid prefix shorter than a header: need more, *ret untouched. */
        for (size_t n = 0; n < NL_HEADER_SIZE; n++) {
                TEST_CASE("header: valid prefix of %zu bytes", n);
                memset(&h, 0x5a, sizeof h);
                CHECK_ERR(nl_header_decode(good, n, &h), -EAGAIN);
                CHECK_U64(h.length, 0x5a5a5a5a);
        }

        /* A wrong magic byte is refused as soon as it is present, even with
         * fewer than 12 bytes; before it arrives the prefix is still valid. */
        for (size_t bad = 0; bad < 3; bad++)
                for (size_t n = 0; n <= NL_HEADER_SIZE; n++) {
                        uint8_t buf[NL_HEADER_SIZE];

                        memcpy(buf, good, sizeof buf);
                        buf[bad] ^= 0x20;
                        TEST_CASE("header: wrong magic byte %zu, %zu bytes", bad, n);
                        memset(&h, 0x5a, sizeof h);
                        CHECK_ERR(nl_header_decode(buf, n, &h), n > bad ? -EBADMSG : -EAGAIN);
                        CHECK_U64(h.length, 0x5a5a5a5a);
                }

        /* Other versions: refused, but *ret is filled so the caller can name it. */
        static const uint8_t versions[] = { 0, 2, 255 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                uint8_t buf[] = { HDR(versions[i], NL_TYPE_MSG_SEND, 0, 0, 0, 5) };

                TEST_CASE("header: version %u", versions[i]);
                memset(&h, 0x5a, sizeof h);
                CHECK_ERR(nl_header_decode(buf, sizeof buf, &h), -EPROTONOSUPPORT);
                CHECK_U64(h.version, versions[i]);
                CHECK_U64(h.type, NL_TYPE_MSG_SEND);
                CHECK_U64(h.status, 0);
                CHECK_U64(h.length, 5);

                TEST_CASE("header: version %u, only 11 bytes", versions[i]);
                CHECK_ERR(nl_header_decode(buf, sizeof buf - 1, &h), -EAGAIN);
        }

        TEST_CASE("header: reserved byte 6 non-zero");
        static const uint8_t res0[] = { HDR(1, NL_TYPE_MSG_SEND, 0, 1, 0, 0) };
        CHECK_ERR(nl_header_decode(res0, sizeof res0, &h), -EBADMSG);

        TEST_CASE("header: reserved byte 7 non-zero");
        static const uint8_t res1[] = { HDR(1, NL_TYPE_MSG_SEND, 0, 0, 0x80, 0) };
        CHECK_ERR(nl_header_decode(res1, sizeof res1, &h), -EBADMSG);

        TEST_CASE("nl_is_frame_start");
        CHECK(nl_is_frame_start(good, 1));
        CHECK(!nl_is_frame_start(good, 0));
        CHECK(!nl_is_frame_start((const uint8_t *) "NL", 2));
}

/* ---- nl_frame_encode ---- */

static void test_frame_encode(void)
{
        uint8_t buf[64];
        struct nl_header h;

        TEST_CASE("encode: reply with body");
        memset(buf, 0x5a, sizeof buf);
        CHECK_ERR(nl_frame_encode(buf, 14, NL_TYPE_MSG_REPLY, NL_STATUS_TOO_LONG, "hi", 2), 14);
        static const uint8_t want[] = { HDR(1, NL_TYPE_MSG_REPLY, NL_STATUS_TOO_LONG, 0, 0, 2),
                                        'h', 'i' };
        CHECK_MEM(buf, 14, want, sizeof want);
        CHECK_INT(buf[14], 0x5a);
        CHECK_ERR(nl_header_decode(buf, 14, &h), 0);
        CHECK_U64(h.version, NL_VERSION);
        CHECK_U64(h.type, NL_TYPE_MSG_REPLY);
        CHECK_U64(h.status, NL_STATUS_TOO_LONG);
        CHECK_U64(h.length, 2);

        TEST_CASE("encode: empty body, NULL pointer, exactly a header");
        memset(buf, 0x5a, sizeof buf);
        CHECK_ERR(nl_frame_encode(buf, NL_HEADER_SIZE, NL_TYPE_MSG_SEND, 0, NULL, 0), NL_HEADER_SIZE);
        static const uint8_t want0[] = { HDR(1, NL_TYPE_MSG_SEND, 0, 0, 0, 0) };
        CHECK_MEM(buf, NL_HEADER_SIZE, want0, sizeof want0);

        /* One byte short, for a body and for the header alone: nothing written. */
        struct { size_t size, body_len; } short_cases[] = {
                { 13, 2 }, { 0, 2 }, { 11, 0 }, { 0, 0 }, { 12, 1 }, { 63, 52 },
        };
        for (size_t i = 0; i < ELEMENTSOF(short_cases); i++) {
                TEST_CASE("encode: %zu-byte body into %zu bytes", short_cases[i].body_len,
                          short_cases[i].size);
                memset(buf, 0x5a, sizeof buf);
                CHECK_ERR(nl_frame_encode(buf, short_cases[i].size, NL_TYPE_MSG_REPLY, 0,
                                          "0123456789012345678901234567890123456789012345678901",
                                          short_cases[i].body_len),
                          -ENOBUFS);
                for (size_t k = 0; k < sizeof buf; k++)
                        CHECK_INT(buf[k], 0x5a);
        }

        TEST_CASE("encode: body too long for the length field");
        if (SIZE_MAX > UINT32_MAX) {
                CHECK_ERR(nl_frame_encode(buf, sizeof buf, NL_TYPE_MSG_REPLY, 0, "x",
                                          (size_t) UINT32_MAX + 1),
                          -E2BIG);
        }

        TEST_CASE("encode then parse as a request");
        int n = nl_frame_encode(buf, sizeof buf, NL_TYPE_MSG_SEND, 0, "hello", 5);
        struct msg_request req;
        CHECK_ERR(n, 17);
        if (n > 0) {
                CHECK_ERR(msg_request_parse(buf, (size_t) n, false, 4096, &req), 0);
                CHECK_U64(req.format, MSG_FORMAT_NETLAB);
                CHECK_MEM(buf + req.text_offset, req.text_len, "hello", 5);
        }
}

/* ---- status table ---- */

static void test_status(void)
{
        static const struct { unsigned status; const char *name, *text; } cases[] = {
                { NL_STATUS_OK, "ok", "ok" },
                { NL_STATUS_BAD_REQUEST, "bad-request", "bad request" },
                { NL_STATUS_TOO_LONG, "too-long", "request too long" },
                { NL_STATUS_BUSY, "busy", "server busy, try again later" },
                { NL_STATUS_NOT_FOUND, "not-found", "not found" },
                { NL_STATUS_NOT_PERMITTED, "not-permitted", "not permitted" },
                { NL_STATUS_TIMEOUT, "timeout", "timed out" },
                { NL_STATUS_UNSUPPORTED, "unsupported", "unsupported protocol version or request" },
                { NL_STATUS_INTERNAL, "internal-error", "internal server error" },
                { NL_STATUS_CHANGED, "changed", "the file changed on the server" },
                { NL_STATUS_MISMATCH, "mismatch", "the local data before the offset differs from the server's" },
                { NL_STATUS_RANGE, "range", "offset past the end of the file" },
                { NL_STATUS_CANCELLED, "cancelled", "the transfer was cancelled" },
                { _NL_STATUS_MAX, "unknown", "unknown status" },
                { 255, "unknown", "unknown status" },
                { UINT_MAX, "unknown", "unknown status" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("status %u", cases[i].status);
                CHECK_STR(nl_status_name(cases[i].status), cases[i].name);
                CHECK_STR(nl_status_text(cases[i].status), cases[i].text);
        }

        /* Every status below the end has a name and text of its own. */
        TEST_CASE("status table is complete");
        CHECK_INT(_NL_STATUS_MAX, 13);
        for (unsigned s = 0; s < _NL_STATUS_MAX; s++) {
                CHECK(nl_status_name(s) && strcmp(nl_status_name(s), "unknown") != 0);
                CHECK(nl_status_text(s) && strcmp(nl_status_text(s), "unknown status") != 0);
        }

        static const struct { int err; enum nl_status status; } errno_cases[] = {
                { 0, NL_STATUS_OK },
                { -EBADMSG, NL_STATUS_BAD_REQUEST },
                { -ENODATA, NL_STATUS_BAD_REQUEST },
                { -E2BIG, NL_STATUS_TOO_LONG },
                { -EMSGSIZE, NL_STATUS_TOO_LONG },
                { -EBUSY, NL_STATUS_BUSY },
                { -EAGAIN, NL_STATUS_BUSY },
                { -ENOENT, NL_STATUS_NOT_FOUND },
                { -EACCES, NL_STATUS_NOT_PERMITTED },
                { -EPERM, NL_STATUS_NOT_PERMITTED },
                { -ETIMEDOUT, NL_STATUS_TIMEOUT },
                { -EPROTONOSUPPORT, NL_STATUS_UNSUPPORTED },
                { -EOPNOTSUPP, NL_STATUS_UNSUPPORTED },
                { -ENOMEM, NL_STATUS_INTERNAL },
                { -EIO, NL_STATUS_INTERNAL },
                { -EINVAL, NL_STATUS_INTERNAL },
                { -ENOBUFS, NL_STATUS_INTERNAL },
                { -EUSERS, NL_STATUS_INTERNAL },
                { EBADMSG, NL_STATUS_INTERNAL },   /* positive: not an error code */
                { INT_MIN, NL_STATUS_INTERNAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(errno_cases); i++) {
                TEST_CASE("nl_status_from_errno(%d %s)", errno_cases[i].err,
                          test_errname(errno_cases[i].err));
                CHECK_INT(nl_status_from_errno(errno_cases[i].err), errno_cases[i].status);
        }
}

/* ---- msg_request_parse: table ---- */

#define MAX 8 /* max_message for the table: small, so max and max + 1 are short */

struct parse_case {
        const char *name;
        const uint8_t *buf;
        size_t n;
        bool end;
        int ret;
        enum msg_format format;
        size_t text_offset, text_len; /* checked when ret is 0 (text_len also on -E2BIG) */
        bool newline;
        uint8_t version;              /* netlab form, when a header was decoded */
        size_t bad_offset;            /* on a charset problem */
        const char *problem;          /* exact; NULL when none */
};

#define TEXT MSG_FORMAT_TEXT
#define FRAME MSG_FORMAT_NETLAB
#define P_NOT_TEXT "message is not printable UTF-8 text"
#define P_TOO_LONG "message too long"

static const uint8_t f_hello[] = { HDR(1, 1, 0, 0, 0, 5), 'h', 'e', 'l', 'l', 'o' };
static const uint8_t f_empty[] = { HDR(1, 1, 0, 0, 0, 0) };
static const uint8_t f_max[] = { HDR(1, 1, 0, 0, 0, MAX), '1', '2', '3', '4', '5', '6', '7', '8' };
static const uint8_t f_utf8[] = { HDR(1, 1, 0, 0, 0, 6), 'c', 'a', 'f', 0xc3, 0xa9, '!' };
static const uint8_t f_trailing[] = { HDR(1, 1, 0, 0, 0, 2), 'h', 'i', 'x', 'y', 'z' };
static const uint8_t f_max1_hdr[] = { HDR(1, 1, 0, 0, 0, MAX + 1) };
static const uint8_t f_huge_hdr[] = { HDR(1, 1, 0, 0, 0, 0xffffffffu) };
static const uint8_t f_max1_full[] = { HDR(1, 1, 0, 0, 0, MAX + 1), '1', '2', '3', '4', '5', '6',
                                       '7', '8', '9' };
static const uint8_t f_binary[] = { HDR(1, 1, 0, 0, 0, 4), 'a', 'b', 0x01, 'c' };
static const uint8_t f_lf[] = { HDR(1, 1, 0, 0, 0, 3), 'a', '\n', 'b' };
static const uint8_t f_nul[] = { HDR(1, 1, 0, 0, 0, 2), 'a', 0 };
static const uint8_t f_type2[] = { HDR(1, NL_TYPE_MSG_REPLY, 0, 0, 0, 2), 'h', 'i' };
static const uint8_t f_type0[] = { HDR(1, 0, 0, 0, 0, 0) };
static const uint8_t f_status[] = { HDR(1, 1, 1, 0, 0, 2), 'h', 'i' };
static const uint8_t f_v2[] = { HDR(2, 1, 0, 0, 0, 2), 'h', 'i' };
static const uint8_t f_v0[] = { HDR(0, 1, 0, 0, 0, 0) };
static const uint8_t f_reserved[] = { HDR(1, 1, 0, 0, 1, 2), 'h', 'i' };
static const uint8_t f_magic[] = { 0x00, 'X', 'L', 1, 1, 0, 0, 0, 0, 0, 0, 0 };

#define F(a) a, sizeof(a)
#define FN(a, n) a, (n)

static const struct parse_case parse_cases[] = {
        /* text form */
        { "text LF", B("hello\n"), false, 0, TEXT, 0, 5, true, 0, 0, NULL },
        { "text CRLF", B("hello\r\n"), false, 0, TEXT, 0, 5, true, 0, 0, NULL },
        { "text LF, end", B("hello\n"), true, 0, TEXT, 0, 5, true, 0, 0, NULL },
        { "text no terminator", B("hello"), false, -EAGAIN, TEXT, 0, 0, false, 0, 0, NULL },
        { "text no terminator, end", B("hello"), true, 0, TEXT, 0, 5, false, 0, 0, NULL },
        { "text CR only, end", B("hello\r"), true, 0, TEXT, 0, 5, false, 0, 0, NULL },
        { "text bytes after LF ignored", B("hi\nextra"), false, 0, TEXT, 0, 2, true, 0, 0, NULL },
        { "text empty line", B("\n"), false, 0, TEXT, 0, 0, true, 0, 0, NULL },
        { "text empty CRLF line", B("\r\n"), false, 0, TEXT, 0, 0, true, 0, 0, NULL },
        { "text UTF-8", B("caf\xc3\xa9\n"), false, 0, TEXT, 0, 5, true, 0, 0, NULL },
        { "text TAB", B("a\tb\n"), false, 0, TEXT, 0, 3, true, 0, 0, NULL },
        { "nothing yet", B(""), false, -EAGAIN, TEXT, 0, 0, false, 0, 0, NULL },
        { "nothing, end", B(""), true, -ENODATA, TEXT, 0, 0, false, 0, 0, "no message received" },

        /* text at the max_message boundary */
        { "text max bytes, end", B("12345678"), true, 0, TEXT, 0, MAX, false, 0, 0, NULL },
        { "text max bytes, waiting", B("12345678"), false, -EAGAIN, TEXT, 0, 0, false, 0, 0, NULL },
        { "text max bytes LF", B("12345678\n"), false, 0, TEXT, 0, MAX, true, 0, 0, NULL },
        { "text max bytes CRLF", B("12345678\r\n"), false, 0, TEXT, 0, MAX, true, 0, 0, NULL },
        { "text max bytes + CR waiting", B("12345678\r"), false, -EAGAIN, TEXT, 0, 0, false, 0, 0,
          NULL },
        { "text max bytes + CR, end", B("12345678\r"), true, 0, TEXT, 0, MAX, false, 0, 0, NULL },
        { "text max+1 bytes", B("123456789"), false, -E2BIG, TEXT, 0, MAX + 1, false, 0, 0,
          P_TOO_LONG },
        { "text max+1 bytes, end", B("123456789"), true, -E2BIG, TEXT, 0, MAX + 1, false, 0, 0,
          P_TOO_LONG },
        { "text max+1 bytes LF", B("123456789\n"), false, -E2BIG, TEXT, 0, MAX + 1, true, 0, 0,
          P_TOO_LONG },
        { "text max+1 bytes CRLF", B("123456789\r\n"), false, -E2BIG, TEXT, 0, MAX + 1, true, 0, 0,
          P_TOO_LONG },
        { "text max + CR + more", B("12345678\rX"), false, -E2BIG, TEXT, 0, MAX + 2, false, 0, 0,
          P_TOO_LONG },
        { "text much longer", B("1234567890123456"), false, -E2BIG, TEXT, 0, 16, false, 0, 0,
          P_TOO_LONG },

        /* text that is not text */
        { "text binary", B("ab\x01" "cd\n"), false, -EBADMSG, TEXT, 0, 5, true, 0, 2, P_NOT_TEXT },
        { "text binary, no LF yet", B("ab\x01" "cd"), false, -EAGAIN, TEXT, 0, 0, false, 0, 0,
          NULL },
        { "text binary, end", B("ab\x01" "cd"), true, -EBADMSG, TEXT, 0, 5, false, 0, 2,
          P_NOT_TEXT },
        { "text lone CR inside", B("a\rb\n"), false, -EBADMSG, TEXT, 0, 3, true, 0, 1, P_NOT_TEXT },
        { "text bad UTF-8", B("\x80\n"), false, -EBADMSG, TEXT, 0, 1, true, 0, 0, P_NOT_TEXT },
        { "text truncated UTF-8, end", B("h\xc3"), true, -EBADMSG, TEXT, 0, 2, false, 0, 1,
          P_NOT_TEXT },
        { "text DEL", B("abc\x7f\r\n"), false, -EBADMSG, TEXT, 0, 4, true, 0, 3, P_NOT_TEXT },

        /* netlab frames */
        { "frame", F(f_hello), false, 0, FRAME, 12, 5, false, 1, 0, NULL },
        { "frame, end", F(f_hello), true, 0, FRAME, 12, 5, false, 1, 0, NULL },
        { "frame empty body", F(f_empty), false, 0, FRAME, 12, 0, false, 1, 0, NULL },
        { "frame max body", F(f_max), false, 0, FRAME, 12, MAX, false, 1, 0, NULL },
        { "frame UTF-8", F(f_utf8), false, 0, FRAME, 12, 6, false, 1, 0, NULL },
        { "frame trailing bytes", F(f_trailing), false, 0, FRAME, 12, 2, false, 1, 0, NULL },
        { "frame first byte only", FN(f_hello, 1), false, -EAGAIN, FRAME, 0, 0, false, 0, 0, NULL },
        { "frame header only", FN(f_hello, 12), false, -EAGAIN, FRAME, 0, 5, false, 1, 0, NULL },
        { "frame truncated body", FN(f_hello, 14), false, -EAGAIN, FRAME, 0, 5, false, 1, 0, NULL },
        { "frame truncated body, end", FN(f_hello, 14), true, -EBADMSG, FRAME, 0, 5, false, 1, 0,
          "connection closed before the whole message arrived" },
        { "frame truncated header, end", FN(f_hello, 5), true, -EBADMSG, FRAME, 0, 0, false, 0, 0,
          "connection closed inside the frame header" },
        { "frame first byte, end", FN(f_hello, 1), true, -EBADMSG, FRAME, 0, 0, false, 0, 0,
          "connection closed inside the frame header" },
        { "frame length max+1, header only", F(f_max1_hdr), false, -E2BIG, FRAME, 0, MAX + 1,
          false, 1, 0,
          P_TOO_LONG },
        { "frame length max+1, whole", F(f_max1_full), false, -E2BIG, FRAME, 0, MAX + 1, false, 1,
          0,
          P_TOO_LONG },
        { "frame length 2^32-1, header only", F(f_huge_hdr), false, -E2BIG, FRAME, 0, 0xffffffffu,
          false,
          1, 0, P_TOO_LONG },
        { "frame binary body", F(f_binary), false, -EBADMSG, FRAME, 12, 4, false, 1, 2,
          P_NOT_TEXT },
        { "frame LF in body", F(f_lf), false, -EBADMSG, FRAME, 12, 3, false, 1, 1, P_NOT_TEXT },
        { "frame NUL in body", F(f_nul), false, -EBADMSG, FRAME, 12, 2, false, 1, 1, P_NOT_TEXT },
        { "frame type REPLY", F(f_type2), false, -EBADMSG, FRAME, 0, 0, false, 1, 0,
          "unexpected frame type (expected MSG_SEND)" },
        { "frame type 0", F(f_type0), false, -EBADMSG, FRAME, 0, 0, false, 1, 0,
          "unexpected frame type (expected MSG_SEND)" },
        { "frame status 1", F(f_status), false, -EBADMSG, FRAME, 0, 0, false, 1, 0,
          "status must be 0 in a request" },
        { "frame version 2", F(f_v2), false, -EPROTONOSUPPORT, FRAME, 0, 0, false, 2, 0,
          "unsupported protocol version" },
        { "frame version 0", F(f_v0), false, -EPROTONOSUPPORT, FRAME, 0, 0, false, 0, 0,
          "unsupported protocol version" },
        { "frame reserved non-zero", F(f_reserved), false, -EBADMSG, FRAME, 0, 0, false, 0, 0,
          "malformed frame header" },
        { "frame wrong magic", F(f_magic), false, -EBADMSG, FRAME, 0, 0, false, 0, 0,
          "malformed frame header" },
        { "frame wrong magic, 2 bytes", FN(f_magic, 2), false, -EBADMSG, FRAME, 0, 0, false, 0, 0,
          "malformed frame header" },
};

static bool check_request(const struct msg_request *req, const struct parse_case *c, int r)
{
        bool ok = CHECK_ERR(r, c->ret);

        ok = CHECK_U64(req->format, c->format) && ok;
        ok = CHECK_STR(req->problem, c->problem) && ok;
        if (c->ret == 0) {
                ok = CHECK_U64(req->text_offset, c->text_offset) && ok;
                ok = CHECK_U64(req->text_len, c->text_len) && ok;
                if (c->format == TEXT)
                        ok = CHECK_INT(req->newline, c->newline) && ok;
        }
        if (c->ret == -E2BIG)
                ok = CHECK_U64(req->text_len, c->text_len) && ok;
        if (c->format == FRAME)
                ok = CHECK_U64(req->version, c->version) && ok;
        if (c->problem && strcmp(c->problem, P_NOT_TEXT) == 0) {
                ok = CHECK_U64(req->text_offset, c->text_offset) && ok;
                ok = CHECK_U64(req->bad_offset, c->bad_offset) && ok;
        }
        return ok;
}

static void test_parse_table(void)
{
        for (size_t i = 0; i < ELEMENTSOF(parse_cases); i++) {
                const struct parse_case *c = &parse_cases[i];
                struct msg_request req;

                TEST_CASE("parse: %s", c->name);
                memset(&req, 0x5a, sizeof req);
                int r = msg_request_parse(c->buf, c->n, c->end, MAX, &req);
                check_request(&req, c, r);
        }

        /* The default limit and the largest a config may set. */
        static const size_t limits[] = { NL_MSG_MAX_DEFAULT, NL_MSG_MAX_LIMIT };
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                size_t max = limits[i];
                uint8_t *buf = malloc(max + NL_HEADER_SIZE + 2);
                struct msg_request req;

                TEST_CASE("parse: max_message %zu", max);
                if (!CHECK(buf))
                        continue;

                memset(buf, 'a', max + 2);
                CHECK_ERR(msg_request_parse(buf, max, false, max, &req), -EAGAIN);
                CHECK_ERR(msg_request_parse(buf, max, true, max, &req), 0);
                CHECK_U64(req.text_len, max);
                CHECK_ERR(msg_request_parse(buf, max + 1, false, max, &req), -E2BIG);
                buf[max] = '\n';
                CHECK_ERR(msg_request_parse(buf, max + 1, false, max, &req), 0);
                CHECK_U64(req.text_len, max);
                CHECK(req.newline);

                uint8_t *frame = malloc(max + NL_HEADER_SIZE);
                if (CHECK(frame)) {
                        int n = nl_frame_encode(frame, max + NL_HEADER_SIZE, NL_TYPE_MSG_SEND, 0,
                                                buf, max);
                        CHECK_INT(n, max + NL_HEADER_SIZE);
                        CHECK_ERR(msg_request_parse(frame, max + NL_HEADER_SIZE, false, max, &req), 0);
                        CHECK_U64(req.text_offset, NL_HEADER_SIZE);
                        CHECK_U64(req.text_len, max);
                        CHECK_ERR(msg_request_parse(frame, max + NL_HEADER_SIZE - 1, false, max, &req),
                                  -EAGAIN);
                        CHECK_ERR(msg_request_parse(frame, max + NL_HEADER_SIZE, false, max - 1, &req),
                                  -E2BIG);
                        CHECK_ERR(msg_request_parse(frame, NL_HEADER_SIZE, false, max - 1, &req), -E2BIG);
                }
                free(frame);
                free(buf);
        }
}

/* ---- msg_request_parse: every split point ---- */

struct split_case {
        const char *name;
        const uint8_t *buf;
        size_t n;
};

static const uint8_t s_bin_frame[] = { HDR(1, 1, 0, 0, 0, 3), 'a', 0x7f, 'b' };

static const struct split_case split_cases[] = {
        /* complete, good requests */
        { "text LF", B("hello\n") },
        { "text CRLF", B("hello\r\n") },
        { "text UTF-8 LF", B("h\xc3\xa9llo w\xf0\x9f\x98\x80\n") },
        { "text max LF", B("12345678\n") },
        { "text max CRLF", B("12345678\r\n") },
        { "text empty line", B("\n") },
        { "text LF then more", B("hi\nthere") },
        { "frame", F(f_hello) },
        { "frame empty", F(f_empty) },
        { "frame max", F(f_max) },
        { "frame UTF-8", F(f_utf8) },
        { "frame trailing", F(f_trailing) },
        /* refused requests: decided once, then the same answer */
        { "text binary", B("ab\x01" "cd\n") },
        { "text too long", B("1234567890\n") },
        { "text max + CR + junk", B("12345678\rXY\n") },
        { "frame too long", F(f_max1_full) },
        { "frame binary", F(s_bin_frame) },
        { "frame version 2", F(f_v2) },
        { "frame wrong type", F(f_type2) },
        { "frame wrong magic", F(f_magic) },
};

/* The same answer: for a complete request the same text; for a refusal the
 * same problem (and bad byte), though text_len of a too-long text may still
 * grow with the bytes seen. */
static bool same_answer(int r, const struct msg_request *a, const struct msg_request *b)
{
        bool same_problem = (!a->problem && !b->problem) ||
                            (a->problem && b->problem && strcmp(a->problem, b->problem) == 0);

        if (r == 0)
                return same_problem && a->format == b->format && a->text_offset == b->text_offset &&
                       a->text_len == b->text_len && a->newline == b->newline &&
                       a->version == b->version;
        return same_problem && a->format == b->format && a->version == b->version &&
               (r != -EBADMSG || a->bad_offset == b->bad_offset);
}

static void test_parse_splits(void)
{
        for (size_t i = 0; i < ELEMENTSOF(split_cases); i++) {
                const struct split_case *c = &split_cases[i];
                struct msg_request whole, part;

                /* Copy into a buffer of exactly n bytes, so reading past a
                 * prefix would show up under ASan/valgrind. */
                for (size_t k = 0; k <= c->n; k++) {
                        uint8_t *buf = malloc(k ? k : 1);

                        TEST_CASE("split: %s, first %zu of %zu bytes", c->name, k, c->n);
                        if (!CHECK(buf))
                                continue;
                        memcpy(buf, c->buf, k);

                        memset(&whole, 0, sizeof whole);
                        int final = msg_request_parse(c->buf, c->n, false, MAX, &whole);
                        memset(&part, 0x5a, sizeof part);
                        int r = msg_request_parse(buf, k, false, MAX, &part);

                        /* Monotone: "need more" for every prefix up to the point
                         * where the answer is decided, the final answer from
                         * there on, with the same text offset and length. */
                        if (r == -EAGAIN) {
                                CHECK(part.problem == NULL);
                                if (k == c->n)
                                        CHECK_ERR(r, final);
                        } else {
                                CHECK_ERR(r, final);
                                CHECK(same_answer(r, &part, &whole));
                                /* Once decided, every longer prefix agrees. */
                                if (k < c->n) {
                                        struct msg_request next;
                                        CHECK_ERR(msg_request_parse(c->buf, k + 1, false, MAX, &next), r);
                                }
                        }
                        free(buf);
                }

                /* Good requests: complete only with their last byte (or, for
                 * text, with the LF), then equal to the one-shot parse. */
                TEST_CASE("split: %s, decided exactly at the end", c->name);
                int final = msg_request_parse(c->buf, c->n, false, MAX, &whole);
                const uint8_t *lf = memchr(c->buf, '\n', c->n);
                size_t complete = whole.format == FRAME ? NL_HEADER_SIZE + whole.text_len :
                                  lf ? (size_t) (lf - c->buf) + 1 : c->n;
                if (CHECK(final != -EAGAIN) && final == 0) {
                        CHECK_ERR(msg_request_parse(c->buf, complete - 1, false, MAX, &part), -EAGAIN);
                        CHECK_ERR(msg_request_parse(c->buf, complete, false, MAX, &part), 0);
                        CHECK(same_answer(0, &part, &whole));
                        CHECK_U64(part.text_offset, whole.text_offset);
                        CHECK_U64(part.text_len, whole.text_len);
                }

                /* A frame cut short by EOF at any byte is a bad request
                 * (nothing at all: no request). */
                if (c->buf[0] == 0 && final == 0) {
                        TEST_CASE("split: %s, EOF at every byte", c->name);
                        for (size_t k = 0; k < c->n; k++) {
                                struct msg_request req;
                                int r = msg_request_parse(c->buf, k, true, MAX, &req);

                                if (k < NL_HEADER_SIZE + whole.text_len)
                                        CHECK_ERR(r, k == 0 ? -ENODATA : -EBADMSG);
                                else
                                        CHECK_ERR(r, 0);
                        }
                }
        }
}

int main(void)
{
        test_header_decode();
        test_frame_encode();
        test_status();
        test_parse_table();
        test_parse_splits();
        return test_finish();
}

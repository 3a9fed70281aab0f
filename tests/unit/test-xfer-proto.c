/* test-xfer-proto.c: the UDP transfer's datagrams (common/proto-xfer.c).
 *
 * Every packet type encoded at its boundaries and decoded back field by
 * field; the exact bytes of one packet per type against the layouts in
 * proto.h; every valid packet cut at every length; single fields of valid
 * packets overwritten with out-of-range values, each with its exact result
 * and problem text; the encoder refusing what the decoder refuses.  Decoders
 * are fed exactly-sized heap copies, so ASan sees any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "test-util.h"
#include "util.h"
#include "wire.h"

#define B(s) (const uint8_t *) (s), sizeof(s) - 1

#define V32(b)                                                                                    \
        b + 0, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11,     \
                b + 12, b + 13, b + 14, b + 15, b + 16, b + 17, b + 18, b + 19, b + 20, b + 21,   \
                b + 22, b + 23, b + 24, b + 25, b + 26, b + 27, b + 28, b + 29, b + 30, b + 31

/* Problem texts, as the codec words them. */
#define P_NOT_XFER "not a transfer datagram"
#define P_TRUNC_HDR "truncated header"
#define P_VERSION "unsupported transfer version"
#define P_TYPE "unknown transfer packet type"
#define P_REQ_TRUNC "truncated REQUEST"
#define P_REQ_LONG "REQUEST longer than 9216 bytes"
#define P_REQ_PAD "REQUEST not padded to 1200 bytes"
#define P_REQ_PAD_BYTE "REQUEST padding is not all zero"
#define P_REQ_CLIENT "REQUEST with client_id 0"
#define P_REQ_BLOCK "REQUEST block size outside 512..65464"
#define P_REQ_WINDOW "REQUEST window outside 1..65536"
#define P_REQ_COOKIE "REQUEST cookie longer than 32 bytes"
#define P_REQ_BODY "REQUEST body longer than 8192 bytes"
#define P_RETRY_TRUNC "truncated RETRY"
#define P_RETRY_TRAIL "trailing bytes after RETRY"
#define P_RETRY_CLIENT "RETRY with client_id 0"
#define P_RETRY_EMPTY "RETRY without a cookie"
#define P_RETRY_COOKIE "RETRY cookie longer than 32 bytes"
#define P_ACC_TRUNC "truncated ACCEPT"
#define P_ACC_TRAIL "trailing bytes after ACCEPT"
#define P_ACC_INFO "ACCEPT with an invalid FILE_INFO"
#define P_ACC_CLIENT "ACCEPT with client_id 0"
#define P_ACC_TID "ACCEPT with transfer_id 0"
#define P_ACC_BLOCK "ACCEPT block size outside 512..65464"
#define P_ACC_WINDOW "ACCEPT window outside 1..65536"
#define P_DATA_TRUNC "truncated DATA"
#define P_DATA_TID "DATA with transfer_id 0"
#define P_DATA_EMPTY "DATA without payload"
#define P_DATA_LONG "DATA payload longer than 65464 bytes"
#define P_ACK_TRUNC "truncated ACK"
#define P_ACK_TRAIL "trailing bytes after ACK"
#define P_ACK_TID "ACK with transfer_id 0"
#define P_ACK_MANY "ACK with more than 32 ranges"
#define P_ACK_CUM "ACK range starts at or below cum"
#define P_ACK_EMPTY "ACK range is empty or reversed"
#define P_ACK_ORDER "ACK ranges not in ascending order"
#define P_ACK_OVERLAP "ACK ranges overlap"
#define P_ACK_ADJACENT "ACK ranges adjacent (not merged)"
#define P_END_TRUNC "truncated END"
#define P_END_TID "END with transfer_id 0"
#define P_END_TEXT "END text longer than 1024 bytes"
#define P_DONE_TRUNC "truncated DONE"
#define P_DONE_TRAIL "trailing bytes after DONE"
#define P_DONE_TID "DONE with transfer_id 0"
#define P_ERR_TRUNC "truncated ERROR"
#define P_ERR_IDS "ERROR with neither client_id nor transfer_id"
#define P_ERR_OK "ERROR with status OK"
#define P_ERR_TEXT "ERROR text longer than 1024 bytes"

/* ---- sample data ---- */

/* A FILE_GET body as over TCP: flags 0, offset 0, no validator, no tail, "f". */
static const uint8_t get_body[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'f' };
static const uint8_t cookie32[] = { V32(0xc0) };
static const uint8_t digest_body[] = { 32, V32(0x40) }; /* a FILE_END body with digest */

/* Filled by main(): payloads, texts and bodies up to a whole UDP datagram. */
static uint8_t big[NL_UDP_PAYLOAD_MAX];
static uint8_t text[NL_ERROR_TEXT_MAX + 1];

static const struct file_info info_sample = {
        .kind = FILE_KIND_REGULAR,
        .flags = FILE_INFO_DIGEST_FOLLOWS,
        .size = 1000,
        .offset = 100,
        .length = 900,
        .mtime_sec = 1700000000,
        .mtime_nsec = 5,
        .validator = { V32(0xd0) },
};

static const struct file_info info_max = {
        .kind = FILE_KIND_REGULAR,
        .size = INT64_MAX,
        .offset = 0,
        .length = INT64_MAX,
        .mtime_sec = -1,
        .mtime_nsec = 999999999,
};

#define U8(s) ((const uint8_t *) (s))

/* Decode an exactly-sized heap copy; borrowed pointers are moved back into buf. */
static int decode_exact(const uint8_t *buf, size_t n, struct xfer_packet *p)
{
        _cleanup_free_ uint8_t *copy = test_dup_exact(buf, n);
        int r = xfer_packet_decode(copy, n, p);

        if (p->cookie)
                p->cookie = buf + (p->cookie - copy);
        if (p->body)
                p->body = buf + (p->body - copy);
        if (p->payload)
                p->payload = buf + (p->payload - copy);
        return r;
}

/* Every field a decoded packet has, against the one that was encoded (which
 * leaves the fields its type does not use at zero). */
static void check_fields(const struct xfer_packet *got, const struct xfer_packet *want)
{
        CHECK_U64(got->type, want->type);
        CHECK_U64(got->client_id, want->client_id);
        CHECK_U64(got->transfer_id, want->transfer_id);
        CHECK_U64(got->block_size, want->block_size);
        CHECK_U64(got->window, want->window);
        CHECK_MEM(got->cookie, got->cookie_len, want->cookie, want->cookie_len);
        CHECK_MEM(got->body, got->body_len, want->body, want->body_len);
        CHECK_U64(got->timestamp, want->timestamp);
        CHECK_U64(got->info.kind, want->info.kind);
        CHECK_U64(got->info.flags, want->info.flags);
        CHECK_U64(got->info.size, want->info.size);
        CHECK_U64(got->info.offset, want->info.offset);
        CHECK_U64(got->info.length, want->info.length);
        CHECK_INT(got->info.mtime_sec, want->info.mtime_sec);
        CHECK_U64(got->info.mtime_nsec, want->info.mtime_nsec);
        CHECK_MEM(got->info.validator, NL_VALIDATOR_SIZE, want->info.validator, NL_VALIDATOR_SIZE);
        CHECK_U64(got->seq, want->seq);
        CHECK_MEM(got->payload, got->payload_len, want->payload, want->payload_len);
        CHECK_U64(got->cum, want->cum);
        CHECK_U64(got->echo, want->echo);
        CHECK_U64(got->rwnd, want->rwnd);
        CHECK_U64(got->n_ranges, want->n_ranges);
        for (unsigned i = 0; i < got->n_ranges && i < NL_XFER_SACK_MAX; i++) {
                CHECK_U64(got->ranges[i].start, want->ranges[i].start);
                CHECK_U64(got->ranges[i].end, want->ranges[i].end);
        }
        CHECK_U64(got->status, want->status);
        CHECK_STR(got->problem, NULL);
}

/* A refused packet keeps only its type and the problem. */
static void check_refused(const struct xfer_packet *p, uint8_t type, const char *problem)
{
        CHECK_STR(p->problem, problem);
        CHECK_U64(p->type, type);
        CHECK_U64(p->client_id, 0);
        CHECK_U64(p->transfer_id, 0);
        CHECK(p->cookie == NULL && p->body == NULL && p->payload == NULL);
        CHECK_U64(p->cookie_len + p->body_len + p->payload_len, 0);
        CHECK_U64(p->n_ranges, 0);
        CHECK_U64(p->status, 0);
}

/* ---- round trips ---- */

struct sample {
        const char *name;
        struct xfer_packet p;
        size_t size;            /* the datagram's size */
};

#define RANGES32                                                                                  \
        { 12, 13 }, { 15, 16 }, { 18, 19 }, { 21, 22 }, { 24, 25 }, { 27, 28 }, { 30, 31 },       \
                { 33, 34 }, { 36, 37 }, { 39, 40 }, { 42, 43 }, { 45, 46 }, { 48, 49 },           \
                { 51, 52 }, { 54, 55 }, { 57, 58 }, { 60, 61 }, { 63, 64 }, { 66, 67 },           \
                { 69, 70 }, { 72, 73 }, { 75, 76 }, { 78, 79 }, { 81, 82 }, { 84, 85 },           \
                { 87, 88 }, { 90, 91 }, { 93, 94 }, { 96, 97 }, { 99, 100 }, { 102, 103 },        \
                { 105, UINT32_MAX }

static const struct sample samples[] = {
        { "REQUEST minimal",
          { .type = NL_XFER_REQUEST, .client_id = 1, .block_size = NL_XFER_BLOCK_MIN, .window = 1,
            .body = get_body, .body_len = sizeof get_body },
          NL_XFER_REQUEST_MIN },
        { "REQUEST largest block and window, cookie 32",
          { .type = NL_XFER_REQUEST, .client_id = UINT32_MAX, .block_size = NL_XFER_BLOCK_MAX,
            .window = NL_XFER_WINDOW_MAX, .cookie = cookie32, .cookie_len = 32,
            .body = get_body, .body_len = sizeof get_body },
          NL_XFER_REQUEST_MIN },
        { "REQUEST empty body", /* file_request_decode() refuses it, not this codec */
          { .type = NL_XFER_REQUEST, .client_id = 7, .block_size = 1200, .window = 64 },
          NL_XFER_REQUEST_MIN },
        { "REQUEST body filling 1200 bytes exactly",
          { .type = NL_XFER_REQUEST, .client_id = 7, .block_size = 1200, .window = 64,
            .cookie = cookie32, .cookie_len = 32, .body = big, .body_len = 1200 - 17 - 32 },
          NL_XFER_REQUEST_MIN },
        { "REQUEST body 8192, cookie 32",
          { .type = NL_XFER_REQUEST, .client_id = 7, .block_size = 1200, .window = 64,
            .cookie = cookie32, .cookie_len = 32, .body = big, .body_len = NL_FILE_REQUEST_MAX },
          17 + 32 + NL_FILE_REQUEST_MAX },
        { "RETRY cookie 1",
          { .type = NL_XFER_RETRY, .client_id = 1, .cookie = cookie32, .cookie_len = 1 },
          9 + 1 },
        { "RETRY cookie 32",
          { .type = NL_XFER_RETRY, .client_id = UINT32_MAX, .cookie = cookie32, .cookie_len = 32 },
          9 + 32 },
        { "ACCEPT smallest block and window",
          { .type = NL_XFER_ACCEPT, .client_id = 1, .transfer_id = 1,
            .block_size = NL_XFER_BLOCK_MIN, .window = 1, .timestamp = 0, .info = info_sample },
          NL_XFER_ACCEPT_SIZE },
        { "ACCEPT largest block and window",
          { .type = NL_XFER_ACCEPT, .client_id = UINT32_MAX, .transfer_id = UINT32_MAX,
            .block_size = NL_XFER_BLOCK_MAX, .window = NL_XFER_WINDOW_MAX,
            .timestamp = UINT32_MAX, .info = info_max },
          NL_XFER_ACCEPT_SIZE },
        { "DATA 1 byte",
          { .type = NL_XFER_DATA, .transfer_id = 1, .seq = 0, .timestamp = 1, .payload = U8("p"),
            .payload_len = 1 },
          16 + 1 },
        { "DATA 65464 bytes",
          { .type = NL_XFER_DATA, .transfer_id = UINT32_MAX, .seq = UINT32_MAX,
            .timestamp = UINT32_MAX, .payload = big, .payload_len = NL_XFER_BLOCK_MAX },
          NL_XFER_DATAGRAM_MAX },
        { "ACK no ranges",
          { .type = NL_XFER_ACK, .transfer_id = 1, .cum = 0, .echo = 0, .rwnd = 0 },
          21 },
        { "ACK one range",
          { .type = NL_XFER_ACK, .transfer_id = 9, .cum = 0, .echo = 77, .rwnd = 65536,
            .n_ranges = 1, .ranges = { { 1, 2 } } },
          21 + 8 },
        { "ACK 32 ranges",
          { .type = NL_XFER_ACK, .transfer_id = 9, .cum = 10, .echo = UINT32_MAX,
            .rwnd = UINT32_MAX, .n_ranges = 32, .ranges = { RANGES32 } },
          21 + 8 * 32 },
        { "ACK near the top of the block numbers",
          { .type = NL_XFER_ACK, .transfer_id = 9, .cum = UINT32_MAX - 2, .n_ranges = 1,
            .ranges = { { UINT32_MAX - 1, UINT32_MAX } } },
          21 + 8 },
        { "END OK with digest",
          { .type = NL_XFER_END, .transfer_id = 3, .status = NL_STATUS_OK, .body = digest_body,
            .body_len = sizeof digest_body },
          9 + 33 },
        { "END OK without digest",
          { .type = NL_XFER_END, .transfer_id = 3, .status = NL_STATUS_OK, .body = U8(""),
            .body_len = 1 }, /* the FILE_END body "\0" */
          9 + 1 },
        { "END OK body 1025 (not a text)",
          { .type = NL_XFER_END, .transfer_id = 3, .status = NL_STATUS_OK, .body = text,
            .body_len = NL_ERROR_TEXT_MAX + 1 },
          9 + NL_ERROR_TEXT_MAX + 1 },
        { "END CHANGED",
          { .type = NL_XFER_END, .transfer_id = 3, .status = NL_STATUS_CHANGED,
            .body = U8("file changed"), .body_len = 12 },
          9 + 12 },
        { "END CHANGED text 1024",
          { .type = NL_XFER_END, .transfer_id = 3, .status = NL_STATUS_CHANGED, .body = text,
            .body_len = NL_ERROR_TEXT_MAX },
          9 + NL_ERROR_TEXT_MAX },
        { "END NOT_FOUND empty text",
          { .type = NL_XFER_END, .transfer_id = UINT32_MAX, .status = NL_STATUS_NOT_FOUND },
          9 },
        { "DONE", { .type = NL_XFER_DONE, .transfer_id = 1 }, 8 },
        { "DONE id max", { .type = NL_XFER_DONE, .transfer_id = UINT32_MAX }, 8 },
        { "ERROR BUSY before a transfer",
          { .type = NL_XFER_ERROR, .client_id = 5, .transfer_id = 0, .status = NL_STATUS_BUSY,
            .body = U8("server busy"), .body_len = 11 },
          13 + 11 },
        { "ERROR CANCELLED, client_id 0",
          { .type = NL_XFER_ERROR, .client_id = 0, .transfer_id = 6,
            .status = NL_STATUS_CANCELLED, .body = U8("x"), .body_len = 1 },
          13 + 1 },
        { "ERROR TIMEOUT text 1024",
          { .type = NL_XFER_ERROR, .client_id = UINT32_MAX, .transfer_id = UINT32_MAX,
            .status = NL_STATUS_TIMEOUT, .body = text, .body_len = NL_ERROR_TEXT_MAX },
          13 + NL_ERROR_TEXT_MAX },
        { "ERROR empty text, status 255",
          { .type = NL_XFER_ERROR, .client_id = 5, .transfer_id = 6, .status = 255 },
          13 },
};

static uint8_t dgram[NL_XFER_DATAGRAM_MAX + 64];

/* Encode a sample into dgram.  Return: its size, or 0 after a failed check. */
static size_t encode_sample(const struct sample *s)
{
        int n = xfer_packet_encode(dgram, s->size, &s->p);

        if (!CHECK_ERR(n, (int) s->size))
                return 0;
        return (size_t) n;
}

static void test_round_trips(void)
{
        struct xfer_packet out;

        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                const struct sample *s = &samples[i];

                TEST_CASE("round trip: %s", s->name);
                memset(dgram, 0x5a, sizeof dgram);
                size_t n = encode_sample(s);
                if (n == 0)
                        continue;
                CHECK(xfer_is_packet(dgram, n));
                CHECK_U64(dgram[n], 0x5a); /* nothing written past the datagram */
                memset(&out, 0x5a, sizeof out);
                CHECK_ERR(decode_exact(dgram, n, &out), 0);
                check_fields(&out, &s->p);

                /* Into a bigger buffer: the same size. */
                TEST_CASE("encode: %s into a large buffer", s->name);
                CHECK_ERR(xfer_packet_encode(dgram, sizeof dgram, &s->p), (int) s->size);

                /* One byte short: -ENOBUFS, nothing written. */
                TEST_CASE("encode: %s into %zu bytes", s->name, n - 1);
                memset(dgram, 0x5a, sizeof dgram);
                CHECK_ERR(xfer_packet_encode(dgram, n - 1, &s->p), -ENOBUFS);
                CHECK_U64(dgram[0], 0x5a);
                CHECK_U64(dgram[n - 2], 0x5a);
                CHECK_ERR(xfer_packet_encode(NULL, 0, &s->p), -ENOBUFS);
        }
}

/* ---- exact bytes ---- */

static void check_bytes(const char *name, const struct xfer_packet *p, const uint8_t *want,
                        size_t want_len)
{
        uint8_t buf[256];

        TEST_CASE("bytes: %s", name);
        memset(buf, 0x5a, sizeof buf);
        int n = xfer_packet_encode(buf, sizeof buf, p);
        CHECK_ERR(n, (int) want_len);
        if (n >= 0)
                CHECK_MEM(buf, (size_t) n, want, want_len);
}

static void test_bytes(void)
{
        static const uint8_t retry[] = { 0, 'X', 1, 2, 1, 2, 3, 4, 2, 0xaa, 0xbb };
        check_bytes("RETRY",
                    &(struct xfer_packet) { .type = NL_XFER_RETRY, .client_id = 0x01020304,
                                            .cookie = U8("\xaa\xbb"), .cookie_len = 2 },
                    retry, sizeof retry);

        static const uint8_t data[] = { 0, 'X', 1, 4, 0x11, 0x12, 0x13, 0x14, 0x21, 0x22, 0x23,
                                        0x24, 0x31, 0x32, 0x33, 0x34, 'p', 'q' };
        check_bytes("DATA",
                    &(struct xfer_packet) { .type = NL_XFER_DATA, .transfer_id = 0x11121314,
                                            .seq = 0x21222324, .timestamp = 0x31323334,
                                            .payload = U8("pq"), .payload_len = 2 },
                    data, sizeof data);

        static const uint8_t ack[] = { 0, 'X', 1, 5,    1, 2, 3, 4,    0, 0, 0, 10, 5, 6, 7, 8,
                                       0, 1, 0, 0,       2,
                                       0, 0, 0, 12,      0, 0, 0, 14,
                                       0, 0, 1, 0,       0xff, 0xff, 0xff, 0xff };
        check_bytes("ACK",
                    &(struct xfer_packet) { .type = NL_XFER_ACK, .transfer_id = 0x01020304,
                                            .cum = 10, .echo = 0x05060708, .rwnd = 65536,
                                            .n_ranges = 2,
                                            .ranges = { { 12, 14 }, { 256, UINT32_MAX } } },
                    ack, sizeof ack);

        static const uint8_t end[] = { 0, 'X', 1, 6, 0, 0, 0, 3, 9, 'c', 'h' };
        check_bytes("END",
                    &(struct xfer_packet) { .type = NL_XFER_END, .transfer_id = 3,
                                            .status = NL_STATUS_CHANGED, .body = U8("ch"),
                                            .body_len = 2 },
                    end, sizeof end);

        static const uint8_t done[] = { 0, 'X', 1, 7, 0xde, 0xad, 0xbe, 0xef };
        check_bytes("DONE",
                    &(struct xfer_packet) { .type = NL_XFER_DONE, .transfer_id = 0xdeadbeef },
                    done, sizeof done);

        static const uint8_t error[] = { 0, 'X', 1, 8, 0, 0, 0, 5, 0, 0, 0, 0, 3, 'b', 'u', 's',
                                         'y' };
        check_bytes("ERROR",
                    &(struct xfer_packet) { .type = NL_XFER_ERROR, .client_id = 5,
                                            .status = NL_STATUS_BUSY, .body = U8("busy"),
                                            .body_len = 4 },
                    error, sizeof error);

        /* ACCEPT: the fixed fields, then FILE_INFO exactly as file_info_encode() writes it. */
        uint8_t accept[NL_XFER_ACCEPT_SIZE] = { 0, 'X', 1, 3, 0, 0, 0, 1, 0xa0, 0xa1, 0xa2, 0xa3,
                                                0x04, 0xb0, 0, 1, 0, 0, 0x71, 0x72, 0x73, 0x74 };
        TEST_CASE("bytes: FILE_INFO for ACCEPT");
        CHECK_ERR(file_info_encode(accept + 22, NL_INFO_SIZE, &info_sample), (int) NL_INFO_SIZE);
        check_bytes("ACCEPT",
                    &(struct xfer_packet) { .type = NL_XFER_ACCEPT, .client_id = 1,
                                            .transfer_id = 0xa0a1a2a3, .block_size = 1200,
                                            .window = 65536, .timestamp = 0x71727374,
                                            .info = info_sample },
                    accept, sizeof accept);

        /* REQUEST: fields, then zeros to 1200. */
        static uint8_t request[NL_XFER_REQUEST_MIN];
        static const uint8_t request_head[] = { 0, 'X', 1, 1, 0x12, 0x34, 0x56, 0x78, 0x04, 0xb0,
                                                0, 0, 1, 0, 2, 0xc0, 0xc1, 0, 17 };
        memcpy(request, request_head, sizeof request_head);
        memcpy(request + sizeof request_head, get_body, sizeof get_body);
        TEST_CASE("bytes: REQUEST");
        uint8_t buf[NL_XFER_REQUEST_MIN + 8];
        memset(buf, 0x5a, sizeof buf);
        int n = xfer_packet_encode(buf, sizeof buf,
                                   &(struct xfer_packet) { .type = NL_XFER_REQUEST,
                                                           .client_id = 0x12345678,
                                                           .block_size = 1200, .window = 256,
                                                           .cookie = cookie32, .cookie_len = 2,
                                                           .body = get_body,
                                                           .body_len = sizeof get_body });
        CHECK_ERR(n, (int) NL_XFER_REQUEST_MIN);
        CHECK_MEM(buf, NL_XFER_REQUEST_MIN, request, sizeof request);
        CHECK_U64(buf[NL_XFER_REQUEST_MIN], 0x5a);

        /* The DATA header for file data read straight into place. */
        TEST_CASE("bytes: xfer_data_header_put");
        uint8_t header[NL_XFER_DATA_HEADER + 2];
        memset(header, 0x5a, sizeof header);
        xfer_data_header_put(header, 0x11121314, 0x21222324, 0x31323334);
        CHECK_MEM(header, NL_XFER_DATA_HEADER, data, NL_XFER_DATA_HEADER);
        CHECK_U64(header[NL_XFER_DATA_HEADER], 0x5a);
        header[16] = 'p';
        header[17] = 'q';
        struct xfer_packet out;
        CHECK_ERR(decode_exact(header, sizeof header, &out), 0);
        CHECK_U64(out.type, NL_XFER_DATA);
        CHECK_U64(out.transfer_id, 0x11121314);
        CHECK_U64(out.seq, 0x21222324);
        CHECK_U64(out.timestamp, 0x31323334);
        CHECK_MEM(out.payload, out.payload_len, "pq", 2);
}

/* ---- truncation at every length, and one byte more ---- */

/* What a prefix of k bytes of a valid packet decodes to. */
static void expect_prefix(const struct sample *s, size_t k, int *ret_r, const char **ret_problem)
{
        const struct xfer_packet *p = &s->p;
        size_t fields;

        *ret_r = -EBADMSG;
        if (k < 2) {
                *ret_problem = P_NOT_XFER;
                return;
        }
        if (k < 4) {
                *ret_problem = P_TRUNC_HDR;
                return;
        }
        switch (p->type) {
        case NL_XFER_REQUEST:
                fields = 17 + p->cookie_len + p->body_len;
                *ret_problem = k < fields ? P_REQ_TRUNC : P_REQ_PAD;
                return;
        case NL_XFER_RETRY:
                *ret_problem = P_RETRY_TRUNC;
                return;
        case NL_XFER_ACCEPT:
                *ret_problem = P_ACC_TRUNC;
                return;
        case NL_XFER_DATA:
                *ret_problem = k < 16 ? P_DATA_TRUNC : k == 16 ? P_DATA_EMPTY : NULL;
                break;
        case NL_XFER_ACK:
                *ret_problem = P_ACK_TRUNC;
                return;
        case NL_XFER_END:
                *ret_problem = k < 9 ? P_END_TRUNC : NULL;
                break;
        case NL_XFER_DONE:
                *ret_problem = P_DONE_TRUNC;
                return;
        case NL_XFER_ERROR:
                *ret_problem = k < 13 ? P_ERR_TRUNC : NULL;
                break;
        default:
                *ret_problem = "(sample of unknown type)";
                return;
        }
        /* DATA, END and ERROR end in a tail of any length: a shorter one decodes. */
        if (!*ret_problem)
                *ret_r = 0;
}

static void test_truncation(void)
{
        struct xfer_packet out;
        int want_r;
        const char *want_problem;

        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                const struct sample *s = &samples[i];
                size_t n, n_failed = 0;

                TEST_CASE("truncation: encode %s", s->name);
                n = encode_sample(s);
                if (n == 0)
                        continue;

                for (size_t k = 0; k < n; k++) {
                        expect_prefix(s, k, &want_r, &want_problem);
                        TEST_CASE("truncation: %s cut to %zu bytes", s->name, k);
                        int r = decode_exact(dgram, k, &out);
                        bool ok = CHECK_ERR(r, want_r);
                        ok = CHECK_STR(out.problem, want_problem) && ok;
                        if (r < 0) {
                                ok = CHECK_U64(out.type, k < 4 ? 0 : s->p.type) && ok;
                        } else {
                                size_t tail = s->p.type == NL_XFER_DATA ? out.payload_len
                                                                        : out.body_len;
                                size_t fixed = s->p.type == NL_XFER_DATA ? 16
                                               : s->p.type == NL_XFER_END ? 9 : 13;
                                ok = CHECK_U64(tail, k - fixed) && ok;
                        }
                        /* A 65480-byte sample would print 65480 failures. */
                        if (!ok && ++n_failed >= 5)
                                break;
                }

                /* One more byte: a zero byte lengthens a REQUEST's padding or a
                 * tail, and is trailing junk after a fixed-size packet. */
                static uint8_t longer[NL_XFER_DATAGRAM_MAX + 1];
                memcpy(longer, dgram, n);
                for (int b = 0; b < 2; b++) {
                        longer[n] = (uint8_t) (b ? 0x01 : 0x00);
                        const char *want = NULL;
                        int r = -EBADMSG;

                        switch (s->p.type) {
                        case NL_XFER_REQUEST:
                                want = b ? P_REQ_PAD_BYTE : NULL;
                                break;
                        case NL_XFER_RETRY:
                                want = P_RETRY_TRAIL;
                                break;
                        case NL_XFER_ACCEPT:
                                want = P_ACC_TRAIL;
                                break;
                        case NL_XFER_ACK:
                                want = P_ACK_TRAIL;
                                break;
                        case NL_XFER_DONE:
                                want = P_DONE_TRAIL;
                                break;
                        case NL_XFER_DATA:
                                want = s->p.payload_len == NL_XFER_BLOCK_MAX ? P_DATA_LONG : NULL;
                                break;
                        case NL_XFER_END:
                                if (s->p.status != NL_STATUS_OK &&
                                    s->p.body_len == NL_ERROR_TEXT_MAX) {
                                        want = P_END_TEXT;
                                        r = -E2BIG;
                                }
                                break;
                        case NL_XFER_ERROR:
                                if (s->p.body_len == NL_ERROR_TEXT_MAX) {
                                        want = P_ERR_TEXT;
                                        r = -E2BIG;
                                }
                                break;
                        }
                        if (!want)
                                r = 0;
                        if (s->p.type == NL_XFER_REQUEST && n + 1 > NL_XFER_REQUEST_MAX) {
                                want = P_REQ_LONG;
                                r = -E2BIG;
                        }

                        TEST_CASE("%s plus a 0x%02x byte", s->name, longer[n]);
                        CHECK_ERR(decode_exact(longer, n + 1, &out), r);
                        CHECK_STR(out.problem, want);
                        CHECK_U64(out.type, s->p.type);
                }
        }
}

/* ---- single fields overwritten ---- */

struct mutation {
        const char *name;
        size_t sample;          /* index in samples[] */
        size_t offset;
        unsigned width;         /* 1, 2 or 4 bytes, big-endian */
        uint32_t value;
        int r;
        const char *problem;    /* NULL: decodes */
};

/* Indexes into samples[]. */
enum {
        S_REQUEST = 0,          /* client 1, block 512, window 1, no cookie, 17-byte body */
        S_RETRY = 5,            /* cookie 1 */
        S_ACCEPT = 7,
        S_DATA = 9,
        S_ACK_ONE = 12,         /* cum 0, range [1, 2) */
        S_END_CHANGED = 18,
        S_DONE = 21,
        S_ERROR = 23,           /* client 5, transfer 0 */
        S_ERROR_CLIENT0 = 24,   /* client 0, transfer 6 */
};

static const struct mutation mutations[] = {
        /* The header. */
        { "magic 0x01", S_DONE, 0, 1, 0x01, -EBADMSG, P_NOT_XFER },
        { "magic 'N'", S_DONE, 1, 1, 'N', -EBADMSG, P_NOT_XFER },
        { "magic 'x'", S_DONE, 1, 1, 'x', -EBADMSG, P_NOT_XFER },
        { "version 0", S_DONE, 2, 1, 0, -EPROTONOSUPPORT, P_VERSION },
        { "version 2", S_DONE, 2, 1, 2, -EPROTONOSUPPORT, P_VERSION },
        { "version 255", S_REQUEST, 2, 1, 255, -EPROTONOSUPPORT, P_VERSION },
        { "type 0", S_DONE, 3, 1, 0, -EBADMSG, P_TYPE },
        { "type 9", S_DONE, 3, 1, 9, -EBADMSG, P_TYPE },
        { "type 255", S_DONE, 3, 1, 255, -EBADMSG, P_TYPE },
        { "REQUEST read as DONE", S_REQUEST, 3, 1, NL_XFER_DONE, -EBADMSG, P_DONE_TRAIL },
        { "DONE read as REQUEST", S_DONE, 3, 1, NL_XFER_REQUEST, -EBADMSG, P_REQ_TRUNC },

        /* REQUEST: 4 client_id, 8 block, 10 window, 14 cookie_len, 15 body_len, 17 body. */
        { "REQUEST client_id 0", S_REQUEST, 4, 4, 0, -EBADMSG, P_REQ_CLIENT },
        { "REQUEST block 0", S_REQUEST, 8, 2, 0, -EBADMSG, P_REQ_BLOCK },
        { "REQUEST block 511", S_REQUEST, 8, 2, 511, -EBADMSG, P_REQ_BLOCK },
        { "REQUEST block 65464", S_REQUEST, 8, 2, 65464, 0, NULL },
        { "REQUEST block 65465", S_REQUEST, 8, 2, 65465, -EBADMSG, P_REQ_BLOCK },
        { "REQUEST block 65535", S_REQUEST, 8, 2, 65535, -EBADMSG, P_REQ_BLOCK },
        { "REQUEST window 0", S_REQUEST, 10, 4, 0, -EBADMSG, P_REQ_WINDOW },
        { "REQUEST window 65536", S_REQUEST, 10, 4, 65536, 0, NULL },
        { "REQUEST window 65537", S_REQUEST, 10, 4, 65537, -EBADMSG, P_REQ_WINDOW },
        { "REQUEST window 2^32-1", S_REQUEST, 10, 4, UINT32_MAX, -EBADMSG, P_REQ_WINDOW },
        { "REQUEST cookie 33", S_REQUEST, 14, 1, 33, -EBADMSG, P_REQ_COOKIE },
        { "REQUEST cookie 255", S_REQUEST, 14, 1, 255, -EBADMSG, P_REQ_COOKIE },
        { "REQUEST body to the last byte", S_REQUEST, 15, 2, 1200 - 17, 0, NULL },
        { "REQUEST body past the end", S_REQUEST, 15, 2, 1200 - 16, -EBADMSG, P_REQ_TRUNC },
        { "REQUEST body 8193", S_REQUEST, 15, 2, 8193, -EBADMSG, P_REQ_BODY },
        { "REQUEST body 65535", S_REQUEST, 15, 2, 65535, -EBADMSG, P_REQ_BODY },
        { "REQUEST body's last byte", S_REQUEST, 17 + 16, 1, 0xff, 0, NULL },
        { "REQUEST first padding byte", S_REQUEST, 17 + 17, 1, 0x80, -EBADMSG, P_REQ_PAD_BYTE },
        { "REQUEST last padding byte", S_REQUEST, 1199, 1, 0x01, -EBADMSG, P_REQ_PAD_BYTE },

        /* RETRY: 4 client_id, 8 cookie_len, 9 cookie. */
        { "RETRY client_id 0", S_RETRY, 4, 4, 0, -EBADMSG, P_RETRY_CLIENT },
        { "RETRY cookie 0, one byte left", S_RETRY, 8, 1, 0, -EBADMSG, P_RETRY_TRAIL },
        { "RETRY cookie 2, one byte there", S_RETRY, 8, 1, 2, -EBADMSG, P_RETRY_TRUNC },
        { "RETRY cookie 33", S_RETRY, 8, 1, 33, -EBADMSG, P_RETRY_COOKIE },
        { "RETRY cookie 255", S_RETRY, 8, 1, 255, -EBADMSG, P_RETRY_COOKIE },

        /* ACCEPT: 4 client_id, 8 transfer_id, 12 block, 14 window, 18 timestamp, 22 info. */
        { "ACCEPT client_id 0", S_ACCEPT, 4, 4, 0, -EBADMSG, P_ACC_CLIENT },
        { "ACCEPT transfer_id 0", S_ACCEPT, 8, 4, 0, -EBADMSG, P_ACC_TID },
        { "ACCEPT block 511", S_ACCEPT, 12, 2, 511, -EBADMSG, P_ACC_BLOCK },
        { "ACCEPT block 65465", S_ACCEPT, 12, 2, 65465, -EBADMSG, P_ACC_BLOCK },
        { "ACCEPT window 0", S_ACCEPT, 14, 4, 0, -EBADMSG, P_ACC_WINDOW },
        { "ACCEPT window 65537", S_ACCEPT, 14, 4, 65537, -EBADMSG, P_ACC_WINDOW },
        { "ACCEPT info kind directory", S_ACCEPT, 22, 1, FILE_KIND_DIRECTORY, 0, NULL },
        { "ACCEPT info kind symlink", S_ACCEPT, 22, 1, FILE_KIND_SYMLINK, -EBADMSG, P_ACC_INFO },
        { "ACCEPT info kind 0", S_ACCEPT, 22, 1, 0, -EBADMSG, P_ACC_INFO },
        { "ACCEPT info unknown flag", S_ACCEPT, 23, 1, 0x02, -EBADMSG, P_ACC_INFO },
        { "ACCEPT info nsec 1e9", S_ACCEPT, 22 + 34, 4, 1000000000, -EBADMSG, P_ACC_INFO },
        { "ACCEPT info length past size", S_ACCEPT, 22 + 18 + 4, 4, 901, -EBADMSG, P_ACC_INFO },
        { "ACCEPT info length to the end", S_ACCEPT, 22 + 18 + 4, 4, 900, 0, NULL },

        /* DATA: 4 transfer_id. */
        { "DATA transfer_id 0", S_DATA, 4, 4, 0, -EBADMSG, P_DATA_TID },
        { "DATA seq 2^32-1", S_DATA, 8, 4, UINT32_MAX, 0, NULL },

        /* ACK [1, 2) above cum 0: 4 transfer_id, 8 cum, 20 n_ranges, 21 start, 25 end. */
        { "ACK transfer_id 0", S_ACK_ONE, 4, 4, 0, -EBADMSG, P_ACK_TID },
        { "ACK 0 ranges, 8 bytes left", S_ACK_ONE, 20, 1, 0, -EBADMSG, P_ACK_TRAIL },
        { "ACK 2 ranges, 1 there", S_ACK_ONE, 20, 1, 2, -EBADMSG, P_ACK_TRUNC },
        { "ACK 33 ranges", S_ACK_ONE, 20, 1, 33, -EBADMSG, P_ACK_MANY },
        { "ACK 255 ranges", S_ACK_ONE, 20, 1, 255, -EBADMSG, P_ACK_MANY },
        { "ACK range starts at cum", S_ACK_ONE, 8, 4, 1, -EBADMSG, P_ACK_CUM },
        { "ACK range starts below cum", S_ACK_ONE, 8, 4, 100, -EBADMSG, P_ACK_CUM },
        { "ACK range start 0", S_ACK_ONE, 21, 4, 0, -EBADMSG, P_ACK_CUM },
        { "ACK range empty", S_ACK_ONE, 25, 4, 1, -EBADMSG, P_ACK_EMPTY },
        { "ACK range reversed", S_ACK_ONE, 25, 4, 0, -EBADMSG, P_ACK_EMPTY },
        { "ACK range to 2^32-1", S_ACK_ONE, 25, 4, UINT32_MAX, 0, NULL },

        /* END: 4 transfer_id, 8 status. */
        { "END transfer_id 0", S_END_CHANGED, 4, 4, 0, -EBADMSG, P_END_TID },
        { "END status OK: body not decoded", S_END_CHANGED, 8, 1, NL_STATUS_OK, 0, NULL },
        { "END status 255", S_END_CHANGED, 8, 1, 255, 0, NULL },

        { "DONE transfer_id 0", S_DONE, 4, 4, 0, -EBADMSG, P_DONE_TID },

        /* ERROR: 4 client_id, 8 transfer_id, 12 status. */
        { "ERROR client_id 0, transfer_id 0", S_ERROR, 4, 4, 0, -EBADMSG, P_ERR_IDS },
        { "ERROR client_id 0, transfer_id 6", S_ERROR_CLIENT0, 8, 4, 6, 0, NULL },
        { "ERROR transfer_id 0, client_id 0", S_ERROR_CLIENT0, 8, 4, 0, -EBADMSG, P_ERR_IDS },
        { "ERROR status OK", S_ERROR, 12, 1, NL_STATUS_OK, -EBADMSG, P_ERR_OK },
};

static void put_be(uint8_t *buf, size_t offset, unsigned width, uint32_t v)
{
        for (unsigned i = 0; i < width; i++)
                buf[offset + i] = (uint8_t) (v >> (8 * (width - 1 - i)));
}

static void test_mutations(void)
{
        struct xfer_packet out;

        for (size_t i = 0; i < ELEMENTSOF(mutations); i++) {
                const struct mutation *m = &mutations[i];
                const struct sample *s = &samples[m->sample];

                TEST_CASE("mutation: %s (%s, offset %zu = %u)", m->name, s->name, m->offset,
                          m->value);
                size_t n = encode_sample(s);
                if (n == 0 || !CHECK(m->offset + m->width <= n))
                        continue;
                put_be(dgram, m->offset, m->width, m->value);
                CHECK_ERR(decode_exact(dgram, n, &out), m->r);
                CHECK_STR(out.problem, m->problem);
                if (m->r < 0)
                        check_refused(&out, m->offset == 3 ? (uint8_t) m->value
                                           : m->offset < 3 ? 0 : s->p.type,
                                      m->problem);
        }
}

/* The table's indexes name the samples they expect. */
static void test_sample_indexes(void)
{
        static const struct {
                size_t index;
                uint8_t type;
                const char *name;
        } want[] = {
                { S_REQUEST, NL_XFER_REQUEST, "REQUEST minimal" },
                { S_RETRY, NL_XFER_RETRY, "RETRY cookie 1" },
                { S_ACCEPT, NL_XFER_ACCEPT, "ACCEPT smallest block and window" },
                { S_DATA, NL_XFER_DATA, "DATA 1 byte" },
                { S_ACK_ONE, NL_XFER_ACK, "ACK one range" },
                { S_END_CHANGED, NL_XFER_END, "END CHANGED" },
                { S_DONE, NL_XFER_DONE, "DONE" },
                { S_ERROR, NL_XFER_ERROR, "ERROR BUSY before a transfer" },
                { S_ERROR_CLIENT0, NL_XFER_ERROR, "ERROR CANCELLED, client_id 0" },
        };

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                TEST_CASE("sample index %zu", want[i].index);
                if (CHECK(want[i].index < ELEMENTSOF(samples))) {
                        CHECK_STR(samples[want[i].index].name, want[i].name);
                        CHECK_U64(samples[want[i].index].p.type, want[i].type);
                }
        }
}

/* ---- raw datagrams ---- */

static void test_raw(void)
{
        static const struct {
                const char *name;
                const uint8_t *bytes;
                size_t n;
                int r;
                uint8_t type;
                const char *problem;
        } cases[] = {
                { "empty", B(""), -EBADMSG, 0, P_NOT_XFER },
                { "NUL", B("\0"), -EBADMSG, 0, P_NOT_XFER },
                { "X", B("X"), -EBADMSG, 0, P_NOT_XFER },
                { "magic only", B("\0X"), -EBADMSG, 0, P_TRUNC_HDR },
                { "magic and version", B("\0X\1"), -EBADMSG, 0, P_TRUNC_HDR },
                { "magic and version 2", B("\0X\2"), -EPROTONOSUPPORT, 0, P_VERSION },
                { "version 2, any type", B("\0X\2\x05"), -EPROTONOSUPPORT, 0, P_VERSION },
                { "header only, unknown type", B("\0X\1\x09"), -EBADMSG, 9, P_TYPE },
                { "netlab frame", B("\0NL\1\1\0\0\0\0\0\0\0"), -EBADMSG, 0, P_NOT_XFER },
                { "guess line", B("play\n"), -EBADMSG, 0, P_NOT_XFER },
                { "header only REQUEST", B("\0X\1\1"), -EBADMSG, NL_XFER_REQUEST, P_REQ_TRUNC },
                { "header only DONE", B("\0X\1\7"), -EBADMSG, NL_XFER_DONE, P_DONE_TRUNC },
                { "RETRY without a cookie", B("\0X\1\2\0\0\0\1\0"), -EBADMSG, NL_XFER_RETRY,
                  P_RETRY_EMPTY },
                { "DATA without payload", B("\0X\1\4\0\0\0\1\0\0\0\0\0\0\0\0"), -EBADMSG,
                  NL_XFER_DATA, P_DATA_EMPTY },
                { "END without a body", B("\0X\1\6\0\0\0\1\0"), 0, NL_XFER_END, NULL },
                { "ERROR with status 0 and no ids", B("\0X\1\x08\0\0\0\0\0\0\0\0\0"), -EBADMSG,
                  NL_XFER_ERROR, P_ERR_IDS },
                { "ERROR with status 0", B("\0X\1\x08\0\0\0\1\0\0\0\0\0"), -EBADMSG,
                  NL_XFER_ERROR, P_ERR_OK },
        };
        struct xfer_packet out;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("raw: %s", cases[i].name);
                memset(&out, 0x5a, sizeof out);
                CHECK_ERR(decode_exact(cases[i].bytes, cases[i].n, &out), cases[i].r);
                CHECK_STR(out.problem, cases[i].problem);
                CHECK_U64(out.type, cases[i].type);
                if (cases[i].r < 0)
                        check_refused(&out, cases[i].type, cases[i].problem);
        }

        TEST_CASE("decode: NULL buffer");
        CHECK_ERR(xfer_packet_decode(NULL, 0, &out), -EBADMSG);
        CHECK_STR(out.problem, P_NOT_XFER);

        static const struct {
                const char *name;
                const uint8_t *bytes;
                size_t n;
                bool is;
        } is_cases[] = {
                { "empty", B(""), false },
                { "NUL", B("\0"), false },
                { "magic", B("\0X"), true },
                { "magic, version 9", B("\0X\x09"), true },
                { "lower-case x", B("\0x"), false },
                { "netlab frame", B("\0NL"), false },
                { "text", B("X\0"), false },
                { "guess line", B("play\n"), false },
        };
        for (size_t i = 0; i < ELEMENTSOF(is_cases); i++) {
                TEST_CASE("xfer_is_packet: %s", is_cases[i].name);
                _cleanup_free_ uint8_t *copy = test_dup_exact(is_cases[i].bytes, is_cases[i].n);
                CHECK_INT(xfer_is_packet(copy, is_cases[i].n), is_cases[i].is);
        }
        TEST_CASE("xfer_is_packet: NULL");
        CHECK_INT(xfer_is_packet(NULL, 0), false);
}

/* ---- sizes: REQUEST, texts, payloads, ranges ---- */

static void test_request_sizes(void)
{
        static uint8_t buf[NL_XFER_REQUEST_MAX + 2];
        struct xfer_packet out;

        size_t n = encode_sample(&samples[S_REQUEST]);
        if (n != NL_XFER_REQUEST_MIN)
                return;
        memset(buf, 0, sizeof buf);
        memcpy(buf, dgram, n);

        static const struct {
                size_t n;
                int r;
                const char *problem;
        } cases[] = {
                { 34, -EBADMSG, P_REQ_PAD },  /* the fields, no padding */
                { 35, -EBADMSG, P_REQ_PAD },
                { NL_XFER_REQUEST_MIN - 1, -EBADMSG, P_REQ_PAD },
                { NL_XFER_REQUEST_MIN, 0, NULL },
                { NL_XFER_REQUEST_MIN + 1, 0, NULL },
                { NL_XFER_REQUEST_MAX - 1, 0, NULL },
                { NL_XFER_REQUEST_MAX, 0, NULL },
                { NL_XFER_REQUEST_MAX + 1, -E2BIG, P_REQ_LONG },
                { NL_XFER_REQUEST_MAX + 2, -E2BIG, P_REQ_LONG },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("REQUEST of %zu bytes", cases[i].n);
                CHECK_ERR(decode_exact(buf, cases[i].n, &out), cases[i].r);
                CHECK_STR(out.problem, cases[i].problem);
                CHECK_U64(out.type, NL_XFER_REQUEST);
                if (cases[i].r == 0)
                        check_fields(&out, &samples[S_REQUEST].p);
        }

        /* Too long is decided unread, whatever the bytes are. */
        TEST_CASE("REQUEST of 9217 bytes of junk");
        memset(buf, 0xff, sizeof buf);
        buf[0] = 0;
        buf[1] = 'X';
        buf[2] = 1;
        buf[3] = NL_XFER_REQUEST;
        CHECK_ERR(decode_exact(buf, NL_XFER_REQUEST_MAX + 1, &out), -E2BIG);
        CHECK_STR(out.problem, P_REQ_LONG);
        TEST_CASE("REQUEST of 9216 bytes of junk");
        CHECK_ERR(decode_exact(buf, NL_XFER_REQUEST_MAX, &out), -EBADMSG);
        CHECK_STR(out.problem, P_REQ_COOKIE);

        /* The largest REQUEST the encoder makes, padded to 9216 by hand. */
        TEST_CASE("REQUEST body 8192 padded to 9216");
        n = encode_sample(&samples[4]);
        if (CHECK_U64(n, 17 + 32 + NL_FILE_REQUEST_MAX)) {
                memset(buf, 0, sizeof buf);
                memcpy(buf, dgram, n);
                CHECK_ERR(decode_exact(buf, NL_XFER_REQUEST_MAX, &out), 0);
                check_fields(&out, &samples[4].p);
                CHECK_ERR(decode_exact(buf, NL_XFER_REQUEST_MAX + 1, &out), -E2BIG);
                CHECK_STR(out.problem, P_REQ_LONG);
        }
}

/* Texts and payloads at their limit and one past it, both directions. */
static void test_tails(void)
{
        static const struct {
                const char *name;
                struct xfer_packet p;
                int r;                  /* of decoding the bytes */
                const char *problem;
        } cases[] = {
                { "ERROR text 1024",
                  { .type = NL_XFER_ERROR, .client_id = 1, .status = NL_STATUS_BUSY, .body = text,
                    .body_len = NL_ERROR_TEXT_MAX },
                  0, NULL },
                { "ERROR text 1025",
                  { .type = NL_XFER_ERROR, .client_id = 1, .status = NL_STATUS_BUSY, .body = text,
                    .body_len = NL_ERROR_TEXT_MAX + 1 },
                  -E2BIG, P_ERR_TEXT },
                { "END text 1024",
                  { .type = NL_XFER_END, .transfer_id = 1, .status = NL_STATUS_CHANGED,
                    .body = text, .body_len = NL_ERROR_TEXT_MAX },
                  0, NULL },
                { "END text 1025",
                  { .type = NL_XFER_END, .transfer_id = 1, .status = NL_STATUS_CHANGED,
                    .body = text, .body_len = NL_ERROR_TEXT_MAX + 1 },
                  -E2BIG, P_END_TEXT },
                { "END OK body 1025",
                  { .type = NL_XFER_END, .transfer_id = 1, .status = NL_STATUS_OK, .body = text,
                    .body_len = NL_ERROR_TEXT_MAX + 1 },
                  0, NULL },
                { "DATA 65464",
                  { .type = NL_XFER_DATA, .transfer_id = 1, .payload = big,
                    .payload_len = NL_XFER_BLOCK_MAX },
                  0, NULL },
                { "DATA 65465",
                  { .type = NL_XFER_DATA, .transfer_id = 1, .payload = big,
                    .payload_len = NL_XFER_BLOCK_MAX + 1 },
                  -EBADMSG, P_DATA_LONG },
        };
        static uint8_t buf[NL_XFER_DATAGRAM_MAX + 1];
        struct xfer_packet out;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct xfer_packet *p = &cases[i].p;
                size_t fixed = p->type == NL_XFER_ERROR ? 13 : p->type == NL_XFER_END ? 9 : 16;
                size_t tail = p->type == NL_XFER_DATA ? p->payload_len : p->body_len;
                int n;

                /* Built by hand: the encoder refuses the ones over the limit. */
                TEST_CASE("tail: %s, bytes", cases[i].name);
                struct xfer_packet head = *p;
                head.body_len = 0;
                head.payload_len = p->type == NL_XFER_DATA ? 1 : 0;
                n = xfer_packet_encode(buf, sizeof buf, &head);
                if (!CHECK_ERR(n, (int) (fixed + head.payload_len)))
                        continue;
                memcpy(buf + fixed, p->type == NL_XFER_DATA ? p->payload : p->body, tail);

                TEST_CASE("tail: %s, decode", cases[i].name);
                CHECK_ERR(decode_exact(buf, fixed + tail, &out), cases[i].r);
                CHECK_STR(out.problem, cases[i].problem);
                if (cases[i].r == 0)
                        check_fields(&out, p);

                TEST_CASE("tail: %s, encode", cases[i].name);
                n = xfer_packet_encode(buf, sizeof buf, p);
                CHECK_ERR(n, cases[i].r == 0 ? (int) (fixed + tail) : -EINVAL);
        }
}

/* ACK ranges: every rule, each with its own problem. */
static void test_ack_ranges(void)
{
        static const struct {
                const char *name;
                uint32_t cum;
                unsigned n;
                struct xfer_range ranges[4];
                const char *problem;
        } cases[] = {
                { "none", 5, 0, {}, NULL },
                { "one", 5, 1, { { 6, 7 } }, NULL },
                { "two apart", 5, 2, { { 7, 9 }, { 10, 11 } }, NULL },
                { "four", 0, 4, { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, UINT32_MAX } }, NULL },
                { "start at cum", 5, 1, { { 5, 7 } }, P_ACK_CUM },
                { "start below cum", 5, 1, { { 4, 7 } }, P_ACK_CUM },
                { "second at cum", 5, 2, { { 7, 8 }, { 5, 6 } }, P_ACK_CUM },
                { "empty", 5, 1, { { 7, 7 } }, P_ACK_EMPTY },
                { "reversed", 5, 1, { { 8, 7 } }, P_ACK_EMPTY },
                { "second empty", 5, 2, { { 7, 8 }, { 10, 10 } }, P_ACK_EMPTY },
                { "adjacent", 5, 2, { { 7, 9 }, { 9, 11 } }, P_ACK_ADJACENT },
                { "overlap by one", 5, 2, { { 7, 9 }, { 8, 11 } }, P_ACK_OVERLAP },
                { "same start", 5, 2, { { 7, 9 }, { 7, 11 } }, P_ACK_OVERLAP },
                { "duplicate", 5, 2, { { 7, 9 }, { 7, 9 } }, P_ACK_OVERLAP },
                { "inside", 5, 2, { { 7, 20 }, { 10, 11 } }, P_ACK_OVERLAP },
                { "descending", 5, 2, { { 10, 11 }, { 7, 9 } }, P_ACK_ORDER },
                { "descending, overlapping", 5, 2, { { 10, 12 }, { 8, 11 } }, P_ACK_ORDER },
                { "third adjacent", 0, 3, { { 1, 2 }, { 3, 4 }, { 4, 5 } }, P_ACK_ADJACENT },
                { "fourth descends", 0, 4, { { 1, 2 }, { 3, 4 }, { 6, 7 }, { 5, 6 } },
                  P_ACK_ORDER },
        };
        uint8_t buf[NL_XFER_ACK_MAX];
        struct xfer_packet out;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct xfer_packet p = {
                        .type = NL_XFER_ACK, .transfer_id = 1, .cum = cases[i].cum,
                        .n_ranges = cases[i].n,
                };
                struct wire_writer w;

                memcpy(p.ranges, cases[i].ranges, sizeof cases[i].ranges);

                TEST_CASE("ACK ranges: %s, decode", cases[i].name);
                wire_writer_init(&w, buf, sizeof buf);
                CHECK(wire_put_bytes(&w, "\0X\1\5\0\0\0\1", 8) == 0);
                CHECK(wire_put_u32be(&w, cases[i].cum) == 0);
                CHECK(wire_put_bytes(&w, "\0\0\0\0\0\0\0\0", 8) == 0);
                CHECK(wire_put_u8(&w, (uint8_t) cases[i].n) == 0);
                for (unsigned k = 0; k < cases[i].n; k++)
                        CHECK(wire_put_u32be(&w, cases[i].ranges[k].start) == 0 &&
                              wire_put_u32be(&w, cases[i].ranges[k].end) == 0);
                CHECK_ERR(decode_exact(buf, w.pos, &out), cases[i].problem ? -EBADMSG : 0);
                CHECK_STR(out.problem, cases[i].problem);
                if (!cases[i].problem)
                        check_fields(&out, &p);

                TEST_CASE("ACK ranges: %s, encode", cases[i].name);
                CHECK_ERR(xfer_packet_encode(buf, sizeof buf, &p),
                          cases[i].problem ? -EINVAL : (int) (21 + 8 * cases[i].n));
        }

        /* 33 ranges, all present and well-formed: too many all the same. */
        TEST_CASE("ACK with 33 good ranges");
        static uint8_t many[21 + 8 * 33];
        struct wire_writer w;
        wire_writer_init(&w, many, sizeof many);
        CHECK(wire_put_bytes(&w, "\0X\1\5\0\0\0\1\0\0\0\0\0\0\0\0\0\0\0\0", 20) == 0);
        CHECK(wire_put_u8(&w, 33) == 0);
        for (uint32_t k = 0; k < 33; k++)
                CHECK(wire_put_u32be(&w, 2 + 2 * k) == 0 && wire_put_u32be(&w, 3 + 2 * k) == 0);
        CHECK_U64(w.pos, sizeof many);
        CHECK_ERR(decode_exact(many, sizeof many, &out), -EBADMSG);
        CHECK_STR(out.problem, P_ACK_MANY);

        TEST_CASE("ACK with 32 of those ranges");
        many[20] = 32;
        CHECK_ERR(decode_exact(many, sizeof many - 8, &out), 0);
        CHECK_U64(out.n_ranges, 32);
        CHECK_U64(out.ranges[31].start, 64);
        CHECK_U64(out.ranges[31].end, 65);
}

/* ---- the encoder refuses what the decoder refuses ---- */

static void check_encode_refused(const char *name, const struct xfer_packet *p)
{
        TEST_CASE("encode: refuses %s", name);
        memset(dgram, 0x5a, sizeof dgram);
        CHECK_ERR(xfer_packet_encode(dgram, sizeof dgram, p), -EINVAL);
        CHECK_U64(dgram[0], 0x5a);
        /* A refusal beats a too-small buffer. */
        CHECK_ERR(xfer_packet_encode(dgram, 0, p), -EINVAL);
}

/* A valid packet of the base's kind with one field broken by `change`. */
#define REFUSE(name, base, change)                                                                \
        do {                                                                                      \
                struct xfer_packet _p = (base);                                                   \
                change;                                                                           \
                check_encode_refused(name, &_p);                                                  \
        } while (0)

static void test_encode_refusals(void)
{
        const struct xfer_packet req = {
                .type = NL_XFER_REQUEST, .client_id = 1, .block_size = 1200, .window = 8,
                .body = get_body, .body_len = sizeof get_body,
        };
        const struct xfer_packet retry = {
                .type = NL_XFER_RETRY, .client_id = 1, .cookie = cookie32, .cookie_len = 1,
        };
        const struct xfer_packet acc = {
                .type = NL_XFER_ACCEPT, .client_id = 1, .transfer_id = 2, .block_size = 1200,
                .window = 8, .info = info_sample,
        };
        const struct xfer_packet data = {
                .type = NL_XFER_DATA, .transfer_id = 1, .payload = U8("p"), .payload_len = 1,
        };
        const struct xfer_packet ack = {
                .type = NL_XFER_ACK, .transfer_id = 1, .cum = 3, .n_ranges = 1,
                .ranges = { { 5, 6 } },
        };
        const struct xfer_packet end = {
                .type = NL_XFER_END, .transfer_id = 1, .status = NL_STATUS_CHANGED,
                .body = U8("changed"), .body_len = 7,
        };
        const struct xfer_packet done = { .type = NL_XFER_DONE, .transfer_id = 1 };
        const struct xfer_packet error = {
                .type = NL_XFER_ERROR, .client_id = 1, .transfer_id = 2,
                .status = NL_STATUS_BUSY, .body = U8("busy"), .body_len = 4,
        };

        /* The bases themselves are fine. */
        const struct xfer_packet *bases[] = {
                &req, &retry, &acc, &data, &ack, &end, &done, &error,
        };
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                TEST_CASE("encode: base packet of type %u", bases[i]->type);
                CHECK(xfer_packet_encode(dgram, sizeof dgram, bases[i]) > 0);
        }

        REFUSE("type 0", done, _p.type = 0);
        REFUSE("type 9", done, _p.type = 9);
        REFUSE("type 255", error, _p.type = 255);

        REFUSE("REQUEST client_id 0", req, _p.client_id = 0);
        REFUSE("REQUEST block 511", req, _p.block_size = 511);
        REFUSE("REQUEST block 65465", req, _p.block_size = 65465);
        REFUSE("REQUEST window 0", req, _p.window = 0);
        REFUSE("REQUEST window 65537", req, _p.window = 65537);
        REFUSE("REQUEST cookie 33", req, (_p.cookie = cookie32, _p.cookie_len = 33));
        REFUSE("REQUEST cookie without bytes", req, _p.cookie_len = 1);
        REFUSE("REQUEST body 8193", req, (_p.body = big, _p.body_len = NL_FILE_REQUEST_MAX + 1));
        REFUSE("REQUEST body without bytes", req, _p.body = NULL);

        REFUSE("RETRY client_id 0", retry, _p.client_id = 0);
        REFUSE("RETRY cookie 0", retry, _p.cookie_len = 0);
        REFUSE("RETRY cookie 33", retry, _p.cookie_len = 33);
        REFUSE("RETRY cookie without bytes", retry, _p.cookie = NULL);

        REFUSE("ACCEPT client_id 0", acc, _p.client_id = 0);
        REFUSE("ACCEPT transfer_id 0", acc, _p.transfer_id = 0);
        REFUSE("ACCEPT block 511", acc, _p.block_size = 511);
        REFUSE("ACCEPT block 65465", acc, _p.block_size = 65465);
        REFUSE("ACCEPT window 0", acc, _p.window = 0);
        REFUSE("ACCEPT window 65537", acc, _p.window = 65537);
        REFUSE("ACCEPT info kind symlink", acc, _p.info.kind = FILE_KIND_SYMLINK);
        REFUSE("ACCEPT info unknown flag", acc, _p.info.flags = 0x02);
        REFUSE("ACCEPT info nsec 1e9", acc, _p.info.mtime_nsec = 1000000000);
        REFUSE("ACCEPT info length past size", acc, _p.info.length = 901);
        REFUSE("ACCEPT info offset past size", acc, _p.info.offset = 1001);
        REFUSE("ACCEPT info all zero", acc, _p.info = (struct file_info) {});

        REFUSE("DATA transfer_id 0", data, _p.transfer_id = 0);
        REFUSE("DATA empty", data, _p.payload_len = 0);
        REFUSE("DATA 65465", data, (_p.payload = big, _p.payload_len = NL_XFER_BLOCK_MAX + 1));
        REFUSE("DATA without bytes", data, _p.payload = NULL);

        REFUSE("ACK transfer_id 0", ack, _p.transfer_id = 0);
        REFUSE("ACK 33 ranges", ack, _p.n_ranges = 33);
        REFUSE("ACK 2^31 ranges", ack, _p.n_ranges = 1u << 31);
        REFUSE("ACK range at cum", ack, _p.cum = 5);
        REFUSE("ACK range empty", ack, _p.ranges[0].end = 5);
        REFUSE("ACK ranges adjacent",
               ack, (_p.n_ranges = 2, _p.ranges[1] = (struct xfer_range) { 6, 7 }));
        REFUSE("ACK ranges overlap",
               ack, (_p.n_ranges = 2, _p.ranges[0].end = 8,
                     _p.ranges[1] = (struct xfer_range) { 7, 9 }));
        REFUSE("ACK ranges descend",
               ack, (_p.n_ranges = 2, _p.ranges[1] = (struct xfer_range) { 4, 5 }));

        REFUSE("END transfer_id 0", end, _p.transfer_id = 0);
        REFUSE("END text 1025", end, (_p.body = text, _p.body_len = NL_ERROR_TEXT_MAX + 1));
        REFUSE("END OK body over a datagram",
               end, (_p.status = NL_STATUS_OK, _p.body = big,
                     _p.body_len = NL_UDP_PAYLOAD_MAX - 9 + 1));
        REFUSE("END body without bytes", end, _p.body = NULL);

        REFUSE("DONE transfer_id 0", done, _p.transfer_id = 0);

        REFUSE("ERROR no ids", error, (_p.client_id = 0, _p.transfer_id = 0));
        REFUSE("ERROR status OK", error, _p.status = NL_STATUS_OK);
        REFUSE("ERROR text 1025", error, (_p.body = text, _p.body_len = NL_ERROR_TEXT_MAX + 1));
        REFUSE("ERROR text without bytes", error, _p.body = NULL);

        /* The largest END OK body still fits a datagram. */
        TEST_CASE("encode: END OK body filling a UDP datagram");
        struct xfer_packet p = end;
        p.status = NL_STATUS_OK;
        p.body = big;
        p.body_len = NL_UDP_PAYLOAD_MAX - 9;
        CHECK_ERR(xfer_packet_encode(dgram, sizeof dgram, &p), (int) NL_UDP_PAYLOAD_MAX);
}

int main(void)
{
        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (uint8_t) (i * 7 + i / 251);
        memset(text, 't', sizeof text);

        test_sample_indexes();
        test_round_trips();
        test_bytes();
        test_truncation();
        test_mutations();
        test_raw();
        test_request_sizes();
        test_tails();
        test_ack_ranges();
        test_encode_refusals();
        return test_finish();
}

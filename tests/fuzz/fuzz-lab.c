/* fuzz-lab.c: the lab's broken-download preamble (common/proto-lab.c), what
 * netlabd reads from any TCP client of a lab-download listener: 2 bytes,
 * then for commands '1' and '2' a 10-byte decimal offset.
 *
 * Input: the bytes the client sent.  Checked:
 *   - only 0, -EAGAIN or -EBADMSG, a problem on every refusal;
 *   - a success names a command '0'..'2', consumes 2 or 12 bytes of what was
 *     there, and the offset is the decimal number the bytes spell (checked
 *     here independently: digits, then a NUL or the end of the 10 bytes);
 *   - split at every byte: each prefix gives "need more" until the first
 *     that decides, and that decision is the one the whole input gives (so
 *     segmentation cannot change the answer);
 *   - round trip: lab_download_encode() of the parsed request parses back to
 *     it, and an encode of the input's first bytes read as a number either
 *     refuses (over 10 digits) or parses back. */
#include <errno.h>

#include "fuzz.h"
#include "proto.h"

static int parse_copy(const uint8_t *buf, size_t n, struct lab_download_request *ret)
{
        uint8_t *copy = fuzz_dup(buf, n);
        int r = lab_download_parse(copy, n, ret);

        free(copy);
        return r;
}

static void check_result(const uint8_t *buf, size_t n, int r, const struct lab_download_request *req)
{
        fuzz_check(FUZZ_RC_IN(r, 0, -EAGAIN, -EBADMSG), "r=%d", r);
        if (r == -EBADMSG)
                fuzz_check(req->problem != NULL, "refusal without a problem");
        if (r == -EAGAIN)
                fuzz_check(n < LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE,
                           "need more with %zu bytes", n);
        if (r != 0)
                return;

        fuzz_check(req->command == '0' || req->command == '1' || req->command == '2',
                   "command 0x%02x", (unsigned) (uint8_t) req->command);
        fuzz_check(buf[0] == (uint8_t) req->command && buf[1] == 0, "command bytes");
        if (req->command == '0') {
                fuzz_check(req->consumed == LAB_DOWNLOAD_COMMAND_SIZE && req->offset == 0,
                           "'0' consumed %zu offset %llu", req->consumed,
                           (unsigned long long) req->offset);
                return;
        }
        fuzz_check(req->consumed == LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE &&
                           req->consumed <= n,
                   "consumed %zu of %zu", req->consumed, n);

        /* The spec, independently: 1..10 digits, then a NUL unless all ten. */
        const uint8_t *o = buf + LAB_DOWNLOAD_COMMAND_SIZE;
        uint64_t v = 0;
        size_t d = 0;

        while (d < LAB_DOWNLOAD_OFFSET_SIZE && o[d] >= '0' && o[d] <= '9')
                v = v * 10 + (uint64_t) (o[d++] - '0');
        fuzz_check(d >= 1, "accepted an empty offset");
        fuzz_check(d == LAB_DOWNLOAD_OFFSET_SIZE || o[d] == 0, "offset ended by 0x%02x", o[d]);
        fuzz_check(v == req->offset, "offset %llu, the bytes say %llu",
                   (unsigned long long) req->offset, (unsigned long long) v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lab_download_request full, req;
        int r_full, r;

        r_full = parse_copy(data, size, &full);
        check_result(data, size, r_full, &full);

        /* Every split point.  Inputs are short (-max_len=64 in run.sh), and
         * anything after byte 12 is never read. */
        for (size_t k = 0; k <= size; k++) {
                r = parse_copy(data, k, &req);
                check_result(data, k, r, &req);
                if (r == -EAGAIN) {
                        fuzz_check(r_full != 0 || full.consumed > k,
                                   "prefix %zu needs more though %zu bytes decide", k, full.consumed);
                        continue;
                }
                fuzz_check(r == r_full, "prefix %zu gives %d, the whole input %d", k, r, r_full);
                fuzz_check(req.command == full.command && req.offset == full.offset &&
                                   req.consumed == full.consumed &&
                                   (req.problem == full.problem ||
                                    (req.problem && full.problem && !strcmp(req.problem, full.problem))),
                           "prefix %zu decides differently", k);
                break;
        }

        if (r_full == 0) {
                uint8_t out[LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE];

                r = lab_download_encode(out, sizeof out, full.command, full.offset);
                fuzz_check(r == (int) full.consumed, "encode %d, consumed %zu", r, full.consumed);
                r = parse_copy(out, (size_t) r, &req);
                fuzz_check(r == 0 && req.command == full.command && req.offset == full.offset &&
                                   req.consumed == full.consumed,
                           "re-encoded request parses as %d", r);
        }

        /* The encoder's own boundaries: the first 8 bytes as an offset. */
        if (size >= 9) {
                uint8_t out[LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE];
                char command = (char) ('0' + data[0] % 3);
                uint64_t offset = 0;

                for (size_t i = 1; i < 9; i++)
                        offset = offset << 8 | data[i];
                /* Mostly small values: shift right by a fuzzed amount. */
                offset >>= data[0] / 3 % 64;
                r = lab_download_encode(out, sizeof out, command, offset);
                if (command != '0' && offset > 9999999999ull) {
                        fuzz_check(r == -EINVAL, "encoded an 11-digit offset: %d", r);
                } else {
                        fuzz_check(r > 0, "encode refused %llu: %d", (unsigned long long) offset, r);
                        r = parse_copy(out, (size_t) r, &req);
                        fuzz_check(r == 0 && req.command == command &&
                                           req.offset == (command == '0' ? 0 : offset),
                                   "encoded %c %llu parses as %d", command,
                                   (unsigned long long) offset, r);
                }
                r = lab_download_encode(out, 1, command, 0);
                fuzz_check(r == -ENOBUFS, "encode into 1 byte: %d", r);
        }
        return 0;
}

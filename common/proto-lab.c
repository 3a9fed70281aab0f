/* proto-lab.c: the lab sheet's broken-download preamble (BRIEF.md, "Lab wire
 * formats").  Pure: no I/O.  The lab client writes 2 bytes (a digit and the
 * NUL of its sprintf), then for commands 1 and 2 a 10-byte buffer holding the
 * sprintf'd offset: digits, a NUL, then whatever the buffer held before.  The
 * lab server reads both with sscanf("%d"); we accept what that client sends
 * and refuse, rather than guess at, anything else. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "util.h"

int lab_download_parse(const uint8_t *buf, size_t n, struct lab_download_request *ret)
{
        struct lab_download_request req = {};

        /* Check each byte as soon as it arrives, so garbage is refused
         * without waiting for the rest. */
        if (n >= 1 && buf[0] != '0' && buf[0] != '1' && buf[0] != '2')
                goto bad_command;
        if (n >= 2 && buf[1] != '\0')
                goto bad_command;
        if (n < LAB_DOWNLOAD_COMMAND_SIZE)
                return -EAGAIN;

        req.command = (char) buf[0];
        req.consumed = LAB_DOWNLOAD_COMMAND_SIZE;
        if (req.command == '0') {
                *ret = req;
                return 0;
        }

        /* The offset: digits up to a NUL or the end of the 10 bytes. */
        const uint8_t *o = buf + LAB_DOWNLOAD_COMMAND_SIZE;
        size_t have = n - LAB_DOWNLOAD_COMMAND_SIZE;
        size_t digits = 0;

        if (have > LAB_DOWNLOAD_OFFSET_SIZE)
                have = LAB_DOWNLOAD_OFFSET_SIZE;
        while (digits < have && o[digits] >= '0' && o[digits] <= '9')
                digits++;
        if (digits < have) {
                if (o[digits] == '-' && digits == 0)
                        req.problem = "negative offset";
                else if (o[digits] != '\0')
                        req.problem = "offset is not a decimal number";
                else if (digits == 0)
                        req.problem = "empty offset";
                if (req.problem) {
                        *ret = req;
                        return -EBADMSG;
                }
                /* A NUL ends the number; the bytes after it are unspecified
                 * but still belong to the 10-byte field. */
        } else if (have < LAB_DOWNLOAD_OFFSET_SIZE) {
                return -EAGAIN;
        }
        if (have < LAB_DOWNLOAD_OFFSET_SIZE)
                return -EAGAIN;

        /* At most 10 digits: always fits in 64 bits. */
        if (num_parse_u64_n((const char *) o, digits, 0, UINT64_MAX, &req.offset) < 0) {
                req.problem = "offset is not a decimal number";
                *ret = req;
                return -EBADMSG;
        }
        req.consumed = LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE;
        *ret = req;
        return 0;

bad_command:
        req.problem = "the command must be an ASCII 0, 1 or 2 followed by a NUL";
        *ret = req;
        return -EBADMSG;
}

int lab_download_encode(uint8_t *dst, size_t size, char command, uint64_t offset)
{
        char digits[24];
        int k;

        if (command != '0' && command != '1' && command != '2')
                return -EINVAL;
        if (command == '0') {
                if (size < LAB_DOWNLOAD_COMMAND_SIZE)
                        return -ENOBUFS;
                dst[0] = '0';
                dst[1] = '\0';
                return LAB_DOWNLOAD_COMMAND_SIZE;
        }
        k = xsnprintf(digits, sizeof digits, "%llu", (unsigned long long) offset);
        if (k < 0 || (size_t) k > LAB_DOWNLOAD_OFFSET_SIZE)
                return -EINVAL;
        if (size < LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE)
                return -ENOBUFS;
        dst[0] = (uint8_t) command;
        dst[1] = '\0';
        memset(dst + LAB_DOWNLOAD_COMMAND_SIZE, 0, LAB_DOWNLOAD_OFFSET_SIZE);
        memcpy(dst + LAB_DOWNLOAD_COMMAND_SIZE, digits, (size_t) k);
        return LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE;
}

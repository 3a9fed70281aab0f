/* text.c: deciding whether peer bytes are text, and making them safe to log.
 *
 * Trusts nothing about its input; never allocates. */
#include <string.h>

#include "util.h"

/* Length of the UTF-8 sequence starting at buf[0], or 0 if it is not a valid,
 * shortest-form scalar value (RFC 3629 section 4). */
static size_t utf8_sequence(const uint8_t *buf, size_t n)
{
        uint8_t b0 = buf[0];
        size_t len;
        uint32_t cp;

        if (b0 < 0x80)
                return 1;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
                len = 2;
                cp = b0 & 0x1F;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                len = 3;
                cp = b0 & 0x0F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                len = 4;
                cp = b0 & 0x07;
        } else
                return 0;

        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((buf[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (buf[i] & 0x3F);
        }

        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
                return 0; /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF)
                return 0; /* UTF-16 surrogate */
        if (cp > 0x10FFFF)
                return 0;
        if (cp >= 0x80 && cp <= 0x9F)
                return 0; /* C1 control */
        return len;
}

int text_check(const uint8_t *buf, size_t n, size_t *ret_bad_offset)
{
        size_t i = 0;

        while (i < n) {
                uint8_t b = buf[i];

                if (b < 0x80) {
                        if ((b < 0x20 && b != '\t') || b == 0x7F)
                                goto bad;
                        i++;
                        continue;
                }

                size_t len = utf8_sequence(buf + i, n - i);
                if (len == 0)
                        goto bad;
                i += len;
        }
        return 0;

bad:
        if (ret_bad_offset)
                *ret_bad_offset = i;
        return -EBADMSG;
}

size_t text_escape(char *dst, size_t dst_size, const uint8_t *buf, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        if (dst_size < 4) {
                if (dst_size > 0)
                        dst[0] = '\0';
                return 0;
        }

        /* Only reserve room for "..." when the whole escaped text cannot fit. */
        size_t total = 0;
        for (size_t i = 0; i < n && total < dst_size; i++) {
                uint8_t b = buf[i];
                total += (b == '\n' || b == '\t' || b == '\r' || b == '\\' || b == '"') ? 2 :
                         (b >= 0x20 && b < 0x7F) ? 1 : 4;
        }
        bool fits = total < dst_size;

        for (size_t i = 0; i < n; i++) {
                char tmp[4];
                size_t k = 0;
                uint8_t b = buf[i];

                switch (b) {
                case '\n': tmp[k++] = '\\'; tmp[k++] = 'n'; break;
                case '\t': tmp[k++] = '\\'; tmp[k++] = 't'; break;
                case '\r': tmp[k++] = '\\'; tmp[k++] = 'r'; break;
                case '\\': tmp[k++] = '\\'; tmp[k++] = '\\'; break;
                case '"':  tmp[k++] = '\\'; tmp[k++] = '"'; break;
                default:
                        if (b >= 0x20 && b < 0x7F)
                                tmp[k++] = (char) b;
                        else {
                                tmp[k++] = '\\';
                                tmp[k++] = 'x';
                                tmp[k++] = hex[b >> 4];
                                tmp[k++] = hex[b & 0xF];
                        }
                }

                /* Keep room for "..." and the NUL, unless all of it fits. */
                if (!fits && o + k + 4 > dst_size) {
                        memcpy(dst + o, "...", 3);
                        o += 3;
                        break;
                }
                memcpy(dst + o, tmp, k);
                o += k;
        }

        dst[o] = '\0';
        return o;
}

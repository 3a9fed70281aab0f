/* wire.c: bounded cursor reader/writer (see wire.h). */
#include <errno.h>
#include <string.h>

#include "wire.h"

void wire_reader_init(struct wire_reader *r, const void *data, size_t size)
{
        r->data = data;
        r->size = data ? size : 0;
        r->pos = 0;
}

size_t wire_reader_remaining(const struct wire_reader *r)
{
        return r->size - r->pos;
}

int wire_get_view(struct wire_reader *r, size_t n, const uint8_t **ret)
{
        if (wire_reader_remaining(r) < n)
                return -EBADMSG;
        *ret = r->data + r->pos;
        r->pos += n;
        return 0;
}

int wire_get_bytes(struct wire_reader *r, void *dst, size_t n)
{
        const uint8_t *p;

        if (wire_get_view(r, n, &p) < 0)
                return -EBADMSG;
        if (n > 0)
                memcpy(dst, p, n);
        return 0;
}

int wire_get_u8(struct wire_reader *r, uint8_t *ret)
{
        const uint8_t *p;

        if (wire_get_view(r, 1, &p) < 0)
                return -EBADMSG;
        *ret = p[0];
        return 0;
}

int wire_get_u16be(struct wire_reader *r, uint16_t *ret)
{
        const uint8_t *p;

        if (wire_get_view(r, 2, &p) < 0)
                return -EBADMSG;
        *ret = (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
        return 0;
}

int wire_get_u32be(struct wire_reader *r, uint32_t *ret)
{
        const uint8_t *p;

        if (wire_get_view(r, 4, &p) < 0)
                return -EBADMSG;
        *ret = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        return 0;
}

int wire_get_u64be(struct wire_reader *r, uint64_t *ret)
{
        uint32_t hi, lo;
        size_t saved = r->pos;

        if (wire_get_u32be(r, &hi) < 0)
                return -EBADMSG;
        if (wire_get_u32be(r, &lo) < 0) {
                r->pos = saved;
                return -EBADMSG;
        }
        *ret = (uint64_t) hi << 32 | lo;
        return 0;
}

void wire_writer_init(struct wire_writer *w, void *data, size_t size)
{
        w->data = data;
        w->size = data ? size : 0;
        w->pos = 0;
}

int wire_put_bytes(struct wire_writer *w, const void *src, size_t n)
{
        if (w->size - w->pos < n)
                return -ENOBUFS;
        if (n > 0)
                memcpy(w->data + w->pos, src, n);
        w->pos += n;
        return 0;
}

int wire_put_u8(struct wire_writer *w, uint8_t v)
{
        return wire_put_bytes(w, &v, 1);
}

int wire_put_u16be(struct wire_writer *w, uint16_t v)
{
        uint8_t b[2] = { (uint8_t) (v >> 8), (uint8_t) v };

        return wire_put_bytes(w, b, sizeof b);
}

int wire_put_u32be(struct wire_writer *w, uint32_t v)
{
        uint8_t b[4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };

        return wire_put_bytes(w, b, sizeof b);
}

int wire_put_u64be(struct wire_writer *w, uint64_t v)
{
        uint8_t b[8];

        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (56 - 8 * i));
        return wire_put_bytes(w, b, sizeof b);
}

/* wire.h: the one bounded cursor for reading and writing wire bytes.
 *
 * Every getter checks the remaining length first and does not advance on
 * failure; every putter refuses to write past the end.  Byte order is named in
 * the function.  No other file does pointer arithmetic on wire buffers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct wire_reader {
        const uint8_t *data;
        size_t size;
        size_t pos;
};

struct wire_writer {
        uint8_t *data;
        size_t size;
        size_t pos;
};

void wire_reader_init(struct wire_reader *r, const void *data, size_t size);
size_t wire_reader_remaining(const struct wire_reader *r);

/* Getters. Return: 0 on success; -EBADMSG if fewer bytes remain than needed. */
int wire_get_u8(struct wire_reader *r, uint8_t *ret);
int wire_get_u16be(struct wire_reader *r, uint16_t *ret);
int wire_get_u32be(struct wire_reader *r, uint32_t *ret);
int wire_get_u64be(struct wire_reader *r, uint64_t *ret);
/* Copy n bytes out. */
int wire_get_bytes(struct wire_reader *r, void *dst, size_t n);
/* Point *ret at the next n bytes inside the reader's buffer (borrowed). */
int wire_get_view(struct wire_reader *r, size_t n, const uint8_t **ret);

void wire_writer_init(struct wire_writer *w, void *data, size_t size);

/* Putters. Return: 0 on success; -ENOBUFS if the buffer is too small (nothing
 * is written then). */
int wire_put_u8(struct wire_writer *w, uint8_t v);
int wire_put_u16be(struct wire_writer *w, uint16_t v);
int wire_put_u32be(struct wire_writer *w, uint32_t v);
int wire_put_u64be(struct wire_writer *w, uint64_t v);
int wire_put_bytes(struct wire_writer *w, const void *src, size_t n);

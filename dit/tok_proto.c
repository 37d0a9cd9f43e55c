#include "tok_proto.h"

#include "error.h"

#include <string.h>

static const char *wire_name(int wire)
{
    switch (wire) {
    case PB_VARINT: return "varint";
    case PB_I64: return "64-bit";
    case PB_LEN: return "length-delimited";
    case 3: return "group start";
    case 4: return "group end";
    case PB_I32: return "32-bit";
    default: return "invalid";
    }
}

pb_reader pb_reader_make(const uint8_t *data, size_t size, const uint8_t *file, const char *source,
                         const char *message)
{
    return (pb_reader){data, data + size, file, source, message};
}

static size_t offset_of(const pb_reader *r, const uint8_t *p) { return (size_t)(p - r->file); }

static int read_varint(pb_reader *r, uint64_t *v, const char *what)
{
    const uint8_t *start = r->p;
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return err_set(REEL_E_FORMAT, "%s: truncated varint (%s) at byte %zu in %s", r->source,
                           what, offset_of(r, start), r->message);
        uint8_t b = *r->p++;
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && b > 1)
            break;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return REEL_OK;
        }
    }
    return err_set(REEL_E_FORMAT, "%s: varint (%s) longer than 64 bits at byte %zu in %s",
                   r->source, what, offset_of(r, start), r->message);
}

static int read_fixed(pb_reader *r, int bytes, uint64_t *v, size_t key_offset)
{
    if (r->end - r->p < bytes)
        return err_set(REEL_E_FORMAT, "%s: truncated %d-byte field at byte %zu in %s", r->source,
                       bytes, key_offset, r->message);
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    *v = x;
    return REEL_OK;
}

int pb_next(pb_reader *r, pb_field *f)
{
    if (r->p == r->end)
        return 0;
    memset(f, 0, sizeof *f);
    f->offset = offset_of(r, r->p);
    uint64_t key;
    TRY(read_varint(r, &key, "field key"));
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 0x1FFFFFFF)
        return err_set(REEL_E_FORMAT, "%s: invalid field number %llu at byte %zu in %s", r->source,
                       (unsigned long long)(key >> 3), f->offset, r->message);
    switch (f->wire) {
    case PB_VARINT: return read_varint(r, &f->value, "field value") < 0 ? REEL_E_FORMAT : 1;
    case PB_I64: return read_fixed(r, 8, &f->value, f->offset) < 0 ? REEL_E_FORMAT : 1;
    case PB_I32: return read_fixed(r, 4, &f->value, f->offset) < 0 ? REEL_E_FORMAT : 1;
    case PB_LEN: {
        uint64_t len;
        TRY(read_varint(r, &len, "length"));
        if (len > (uint64_t)(r->end - r->p))
            return err_set(REEL_E_FORMAT,
                           "%s: field %u at byte %zu in %s claims %llu bytes, %zu are left",
                           r->source, f->num, f->offset, r->message, (unsigned long long)len,
                           (size_t)(r->end - r->p));
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    default:
        return err_set(REEL_E_FORMAT, "%s: field %u at byte %zu in %s has %s wire type %d",
                       r->source, f->num, f->offset, r->message, wire_name(f->wire), f->wire);
    }
}

int pb_expect(const pb_reader *r, const pb_field *f, int wire, const char *name)
{
    if (f->wire == wire)
        return REEL_OK;
    return err_set(REEL_E_FORMAT, "%s: %s (field %u at byte %zu) has %s wire type, expected %s",
                   r->source, name, f->num, f->offset, wire_name(f->wire), wire_name(wire));
}

float pb_float(const pb_field *f)
{
    uint32_t u = (uint32_t)f->value;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

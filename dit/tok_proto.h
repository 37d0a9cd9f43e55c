/* A reader for the protobuf wire format, enough to walk a SentencePiece ModelProto: fields come
 * one at a time with their number, wire type and payload; nothing is assumed about the schema.
 * Every length is checked against the bytes left, so truncated or hostile files stop with
 * REEL_E_FORMAT naming the file, the message being read and the byte offset. */
#ifndef REEL_TOK_PROTO_H
#define REEL_TOK_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum pb_wire { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_reader {
    const uint8_t *p, *end;
    const uint8_t *file; /* start of the whole file, for offsets in messages */
    const char *source;  /* file path */
    const char *message; /* protobuf message being read, e.g. "ModelProto.pieces" */
} pb_reader;

typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t value;      /* PB_VARINT, PB_I32, PB_I64 */
    const uint8_t *data; /* PB_LEN */
    size_t len;
    size_t offset; /* of the field's key, from the start of the file */
} pb_field;

pb_reader pb_reader_make(const uint8_t *data, size_t size, const uint8_t *file, const char *source,
                         const char *message);
/* Reads the next field: 1 with *f filled, 0 at the end of the message, or a negative status. */
int pb_next(pb_reader *r, pb_field *f);
/* REEL_E_FORMAT unless f has the wire type the schema gives field `name`. */
int pb_expect(const pb_reader *r, const pb_field *f, int wire, const char *name);
float pb_float(const pb_field *f);

#endif

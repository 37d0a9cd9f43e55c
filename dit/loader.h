/* Pieces shared by the weight-file parsers (safetensors.c, zip.c, pickle.c, pth.c, weights.c):
 * read-only file mappings, little-endian reads that never assume alignment, a printable copy of
 * untrusted text for one-line messages, and the list of tensors a parser found.
 * Parsers work on (bytes, size) so that tests and fuzzers can feed them memory directly; every
 * offset they report is relative to the start of the file. */
#ifndef REEL_LOADER_H
#define REEL_LOADER_H

#include "tensor.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ld_map {
    char *path;          /* owned copy, for messages */
    const uint8_t *data; /* PROT_READ mapping of the whole file */
    uint64_t size;
} ld_map;

/* Maps a regular, non-empty file read-only. REEL_E_IO when it cannot be opened or mapped,
 * REEL_E_FORMAT when it is empty or not a regular file. */
int ld_map_file(const char *path, ld_map *out);
void ld_unmap(ld_map *m);

/* Reads a whole small file (JSON) into a NUL-terminated buffer of at most max_bytes. */
int ld_read_text(const char *path, size_t max_bytes, char **out, size_t *len);

static inline uint16_t ld_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t ld_u64(const uint8_t *p) { return ld_u32(p) | ((uint64_t)ld_u32(p + 4) << 32); }

/* Copies at most n bytes of s into buf as printable ASCII (other bytes as \xNN, the copy cut
 * with "..." when it does not fit), so a name taken from a file can go into a one-line message. */
const char *ld_printable(const char *s, size_t n, char *buf, size_t cap);

/* One tensor as a parser found it: element (0,...,0) lies at byte `offset` of the file, strides
 * count elements. The name is owned by the list. */
typedef struct ld_tensor {
    char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS];
    uint64_t offset;
    uint64_t nbytes; /* bytes from offset to one past the last element the view can reach */
} ld_tensor;

typedef struct ld_list {
    ld_tensor *v;
    int n, cap;
} ld_list;

/* Appends a tensor with a copy of name[0..name_len); contiguous strides when stride is NULL.
 * REEL_E_NOMEM, or REEL_E_FORMAT (naming `path`) when the name holds a NUL byte. */
int ld_list_push(ld_list *l, const char *path, const char *name, size_t name_len, enum dtype dt,
                 int ndim, const int64_t *shape, const int64_t *stride, uint64_t offset,
                 uint64_t nbytes);
void ld_list_free(ld_list *l);

/* a*b and a+b on non-negative counts, false on overflow past INT64_MAX */
static inline int ld_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int ld_add_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#ifdef __cplusplus
}
#endif
#endif

/* safetensors files and their sharded form (*.safetensors.index.json).
 *
 * A safetensors file is: u64 little-endian N, N bytes of JSON header, then the data section.
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the data section) plus an optional "__metadata__" object of strings.
 * The parser is strict, as the reference implementation is: the header must fit in the file and
 * in ST_MAX_HEADER bytes, start with '{', be a JSON object (trailing spaces allowed), and the
 * tensors must tile the data section exactly (no overlap, no hole, nothing after the last one). */
#ifndef REEL_SAFETENSORS_H
#define REEL_SAFETENSORS_H

#include "loader.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* the limit the reference reader uses */

/* Parses the header of the file mapped at data[0..size) and appends its tensors (in header
 * order) to out. Errors name `path` and the tensor or field at fault. */
int st_parse(const char *path, const uint8_t *data, uint64_t size, ld_list *out);

/* The weight map of a sharded checkpoint: which shard file holds which tensor. */
typedef struct st_index {
    int n;            /* tensors */
    char **names;     /* tensor names, in index order */
    int *shard;       /* names[i] lives in shards[shard[i]] */
    int nshards;
    char **shards;    /* shard file names, relative to the index's folder, first-use order */
} st_index;

/* Parses index JSON text[0..len) ({"metadata": {...}, "weight_map": {name: file}}). Shard names
 * must be plain file names (no folder part), tensor names unique. */
int st_index_parse(const char *path, const char *text, size_t len, st_index *out);
void st_index_free(st_index *ix);

#ifdef __cplusplus
}
#endif
#endif

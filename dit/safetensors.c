#include "safetensors.h"

#include "error.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

/* JSON numbers are doubles: integers are exact up to 2^53, far beyond any real file. */
#define ST_MAX_INT 9007199254740992.0

static const struct {
    const char *name;
    enum dtype dt; /* DT_COUNT: a dtype of the format that reel has no type for */
} st_dtypes[] = {
    {"F64", DT_F64},      {"F32", DT_F32},          {"F16", DT_F16},          {"BF16", DT_BF16},
    {"F8_E4M3", DT_F8_E4M3}, {"F8_E5M2", DT_F8_E5M2}, {"I64", DT_I64},        {"I32", DT_I32},
    {"I16", DT_I16},      {"I8", DT_I8},            {"U8", DT_U8},            {"BOOL", DT_BOOL},
    {"U16", DT_COUNT},    {"U32", DT_COUNT},        {"U64", DT_COUNT},        {"F8_E8M0", DT_COUNT},
    {"F6_E2M3", DT_COUNT}, {"F6_E3M2", DT_COUNT},   {"F4", DT_COUNT},         {"C64", DT_COUNT},
};

static int st_get_uint(const cJSON *item, double *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!isfinite(d) || d < 0 || d > ST_MAX_INT || d != floor(d))
        return 0;
    *out = d;
    return 1;
}

typedef struct st_range {
    uint64_t begin, end;
    int index; /* position in the list, for messages */
} st_range;

static int st_range_cmp(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int st_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One entry of the header: {"dtype": .., "shape": [..], "data_offsets": [b, e]}, nothing else. */
static int st_parse_entry(const char *path, const cJSON *item, uint64_t data_size, ld_list *out,
                          st_range *range)
{
    char q[160];
    const char *name = ld_printable(item->string, strlen(item->string), q, sizeof q);
    if (!cJSON_IsObject(item))
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *f = item->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dtype
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offs
                                                                  : NULL;
        char fq[64];
        if (!slot)
            return err_set(REEL_E_FORMAT, "%s: tensor '%s': unknown field '%s'", path, name,
                           ld_printable(f->string, strlen(f->string), fq, sizeof fq));
        if (*slot)
            return err_set(REEL_E_FORMAT, "%s: tensor '%s': field '%s' given twice", path, name,
                           f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offs)
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': missing '%s'", path, name,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dtype))
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': dtype is not a string", path, name);
    enum dtype dt = DT_COUNT;
    int known = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(dtype->valuestring, st_dtypes[i].name)) {
            dt = st_dtypes[i].dt;
            known = 1;
        }
    char dq[48];
    if (!known)
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       ld_printable(dtype->valuestring, strlen(dtype->valuestring), dq, sizeof dq));
    if (dt == DT_COUNT)
        return err_set(REEL_E_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported by reel",
                       path, name, dtype->valuestring);

    if (!cJSON_IsArray(shape))
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': shape is not an array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > TENSOR_MAX_DIMS)
        return err_set(REEL_E_UNSUPPORTED, "%s: tensor '%s': %d dimensions (reel handles up to %d)",
                       path, name, ndim, TENSOR_MAX_DIMS);
    int64_t dims[TENSOR_MAX_DIMS];
    int64_t numel = 1;
    int d = 0;
    for (const cJSON *e = shape->child; e; e = e->next, d++) {
        double v;
        if (!st_get_uint(e, &v))
            return err_set(REEL_E_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                           path, name, d);
        dims[d] = (int64_t)v;
        if (!ld_mul_ok(numel, dims[d], &numel))
            return err_set(REEL_E_FORMAT, "%s: tensor '%s': element count overflows", path, name);
    }
    int64_t nbytes;
    if (!ld_mul_ok(numel, (int64_t)dtype_size(dt), &nbytes))
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': byte size overflows", path, name);

    double b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !st_get_uint(offs->child, &b) ||
        !st_get_uint(offs->child->next, &e))
        return err_set(REEL_E_FORMAT,
                       "%s: tensor '%s': data_offsets is not a pair of non-negative integers", path,
                       name);
    uint64_t begin = (uint64_t)b, end = (uint64_t)e;
    if (begin > end)
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run backwards",
                       path, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return err_set(REEL_E_FORMAT,
                       "%s: tensor '%s': data_offsets end %llu is past the data section (%llu bytes)",
                       path, name, (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != (uint64_t)nbytes)
        return err_set(REEL_E_FORMAT,
                       "%s: tensor '%s': shape and dtype %s give %lld bytes but data_offsets span %llu",
                       path, name, dtype->valuestring, (long long)nbytes,
                       (unsigned long long)(end - begin));
    range->begin = begin;
    range->end = end;
    return ld_list_push(out, path, item->string, strlen(item->string), dt, ndim, dims, NULL, begin,
                        (uint64_t)nbytes);
}

static int st_check_metadata(const char *path, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return err_set(REEL_E_FORMAT, "%s: __metadata__ is not a JSON object", path);
    for (const cJSON *m = meta->child; m; m = m->next)
        if (!cJSON_IsString(m)) {
            char q[96];
            return err_set(REEL_E_FORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                           ld_printable(m->string, strlen(m->string), q, sizeof q));
        }
    return REEL_OK;
}

/* Names must be unique, and the tensors must tile [0, data_size) exactly. */
static int st_check_layout(const char *path, ld_list *l, int first, st_range *r, int n,
                           uint64_t data_size)
{
    char q[160];
    char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++)
        names[i] = l->v[first + i].name;
    qsort(names, (size_t)n, sizeof *names, st_name_cmp);
    int st = REEL_OK;
    for (int i = 1; i < n && st == REEL_OK; i++)
        if (!strcmp(names[i - 1], names[i]))
            st = err_set(REEL_E_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                         ld_printable(names[i], strlen(names[i]), q, sizeof q));
    free(names);
    TRY(st);

    qsort(r, (size_t)n, sizeof *r, st_range_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *name = l->v[first + r[i].index].name;
        if (r[i].begin < at)
            return err_set(REEL_E_FORMAT, "%s: tensor '%s' at [%llu, %llu) overlaps the tensor before it",
                           path, ld_printable(name, strlen(name), q, sizeof q),
                           (unsigned long long)r[i].begin, (unsigned long long)r[i].end);
        if (r[i].begin > at)
            return err_set(REEL_E_FORMAT, "%s: %llu unused bytes before tensor '%s' at offset %llu",
                           path, (unsigned long long)(r[i].begin - at),
                           ld_printable(name, strlen(name), q, sizeof q),
                           (unsigned long long)r[i].begin);
        at = r[i].end;
    }
    if (at != data_size)
        return err_set(REEL_E_FORMAT, "%s: %llu bytes after the last tensor are not described by the header",
                       path, (unsigned long long)(data_size - at));
    return REEL_OK;
}

int st_parse(const char *path, const uint8_t *data, uint64_t size, ld_list *out)
{
    if (size < 8)
        return err_set(REEL_E_FORMAT, "%s: %llu bytes, too short for a safetensors header", path,
                       (unsigned long long)size);
    uint64_t hlen = ld_u64(data);
    if (hlen > ST_MAX_HEADER)
        return err_set(REEL_E_FORMAT, "%s: header length %llu exceeds the %u bytes allowed", path,
                       (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > size - 8)
        return err_set(REEL_E_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                       path, (unsigned long long)hlen, (unsigned long long)size);
    if (hlen < 2 || data[8] != '{')
        return err_set(REEL_E_FORMAT, "%s: header does not start with '{' (not a safetensors file?)",
                       path);
    const char *text = (const char *)data + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + hlen ? (long)(at - text) : -1;
        return err_set(REEL_E_FORMAT, "%s: header is not valid JSON (near byte %ld of %llu)", path,
                       off, (unsigned long long)hlen);
    }
    int st = REEL_OK;
    /* The reference writer pads the header with spaces to an 8-byte boundary. */
    for (const char *p = end; p < text + hlen; p++)
        if (*p != ' ') {
            st = err_set(REEL_E_FORMAT, "%s: unexpected byte 0x%02x after the header JSON at byte %ld",
                         path, (unsigned char)*p, (long)(p - text));
            break;
        }
    if (st == REEL_OK && !cJSON_IsObject(root))
        st = err_set(REEL_E_FORMAT, "%s: header is not a JSON object", path);

    uint64_t data_size = size - 8 - hlen;
    int first = out->n, count = 0, meta_seen = 0;
    st_range *ranges = NULL;
    if (st == REEL_OK) {
        count = cJSON_GetArraySize(root);
        ranges = malloc((size_t)(count ? count : 1) * sizeof *ranges);
        if (!ranges)
            st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    int n = 0;
    for (const cJSON *item = st == REEL_OK ? root->child : NULL; item && st == REEL_OK;
         item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            if (meta_seen++)
                st = err_set(REEL_E_FORMAT, "%s: __metadata__ appears twice", path);
            else
                st = st_check_metadata(path, item);
            continue;
        }
        ranges[n].index = n;
        st = st_parse_entry(path, item, data_size, out, &ranges[n]);
        if (st == REEL_OK)
            n++;
    }
    if (st == REEL_OK)
        st = st_check_layout(path, out, first, ranges, n, data_size);
    if (st == REEL_OK) /* offsets so far are relative to the data section */
        for (int i = first; i < out->n; i++)
            out->v[i].offset += 8 + hlen;
    free(ranges);
    cJSON_Delete(root);
    if (st != REEL_OK) {
        while (out->n > first)
            free(out->v[--out->n].name);
    }
    return st;
}

/* ---- *.safetensors.index.json ------------------------------------------------------------ */

void st_index_free(st_index *ix)
{
    for (int i = 0; i < ix->n; i++)
        free(ix->names[i]);
    for (int i = 0; i < ix->nshards; i++)
        free(ix->shards[i]);
    free(ix->names);
    free(ix->shard);
    free(ix->shards);
    memset(ix, 0, sizeof *ix);
}

/* Shard names seen so far, hashed: an index may list a million tensors. */
typedef struct st_shard_set {
    int *slot; /* shard index + 1, 0 = empty */
    size_t mask;
} st_shard_set;

static size_t st_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int st_index_shard(const char *path, st_index *ix, st_shard_set *set, const char *file)
{
    size_t i = st_hash(file) & set->mask;
    for (; set->slot[i]; i = (i + 1) & set->mask)
        if (!strcmp(ix->shards[set->slot[i] - 1], file))
            return set->slot[i] - 1;
    char q[160];
    if (!*file || strchr(file, '/') || strchr(file, '\\') || !strcmp(file, ".") || !strcmp(file, ".."))
        return err_set(REEL_E_FORMAT, "%s: shard name '%s' is not a plain file name", path,
                       ld_printable(file, strlen(file), q, sizeof q));
    char *copy = strdup(file);
    if (!copy)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    ix->shards[ix->nshards] = copy;
    set->slot[i] = ++ix->nshards;
    return ix->nshards - 1;
}

int st_index_parse(const char *path, const char *text, size_t len, st_index *out)
{
    memset(out, 0, sizeof *out);
    if (memchr(text, 0, len))
        return err_set(REEL_E_FORMAT, "%s: contains a NUL byte (not a JSON text file)", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
        return err_set(REEL_E_FORMAT, "%s: not valid JSON (near byte %ld)", path, off);
    }
    int st = REEL_OK;
    for (const char *p = end; p < text + len && st == REEL_OK; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            st = err_set(REEL_E_FORMAT, "%s: unexpected text after the JSON object at byte %ld", path,
                         (long)(p - text));
    const cJSON *map = NULL;
    if (st == REEL_OK && !cJSON_IsObject(root))
        st = err_set(REEL_E_FORMAT, "%s: not a JSON object", path);
    if (st == REEL_OK) {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
        map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
        if (meta && !cJSON_IsObject(meta) && !cJSON_IsNull(meta))
            st = err_set(REEL_E_FORMAT, "%s: \"metadata\" is not an object", path);
        else if (!map)
            st = err_set(REEL_E_FORMAT, "%s: no \"weight_map\" (not a sharded checkpoint index)", path);
        else if (!cJSON_IsObject(map))
            st = err_set(REEL_E_FORMAT, "%s: \"weight_map\" is not an object", path);
        else if (!map->child)
            st = err_set(REEL_E_FORMAT, "%s: \"weight_map\" is empty", path);
    }
    int n = st == REEL_OK ? cJSON_GetArraySize(map) : 0;
    st_shard_set set = {NULL, 0};
    if (st == REEL_OK) {
        size_t cap = 16;
        while (cap < 2 * (size_t)n)
            cap *= 2;
        set.slot = calloc(cap, sizeof *set.slot);
        set.mask = cap - 1;
        out->names = calloc((size_t)n, sizeof *out->names);
        out->shard = calloc((size_t)n, sizeof *out->shard);
        out->shards = calloc((size_t)n, sizeof *out->shards);
        if (!set.slot || !out->names || !out->shard || !out->shards)
            st = err_set(REEL_E_NOMEM, "%s: out of memory for %d entries", path, n);
    }
    char q[160];
    for (const cJSON *e = st == REEL_OK ? map->child : NULL; e && st == REEL_OK; e = e->next) {
        if (!cJSON_IsString(e)) {
            st = err_set(REEL_E_FORMAT, "%s: weight_map entry '%s' is not a file name string", path,
                         ld_printable(e->string, strlen(e->string), q, sizeof q));
            break;
        }
        int s = st_index_shard(path, out, &set, e->valuestring);
        if (s < 0) {
            st = s;
            break;
        }
        out->names[out->n] = strdup(e->string);
        if (!out->names[out->n]) {
            st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
            break;
        }
        out->shard[out->n++] = s;
    }
    if (st == REEL_OK) {
        char **sorted = malloc((size_t)n * sizeof *sorted);
        if (!sorted)
            st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
        else {
            memcpy(sorted, out->names, (size_t)n * sizeof *sorted);
            qsort(sorted, (size_t)n, sizeof *sorted, st_name_cmp);
            for (int i = 1; i < n && st == REEL_OK; i++)
                if (!strcmp(sorted[i - 1], sorted[i]))
                    st = err_set(REEL_E_FORMAT, "%s: tensor '%s' appears twice in weight_map", path,
                                 ld_printable(sorted[i], strlen(sorted[i]), q, sizeof q));
            free(sorted);
        }
    }
    free(set.slot);
    cJSON_Delete(root);
    if (st != REEL_OK)
        st_index_free(out);
    return st;
}

#include "weights.h"

#include "error.h"
#include "loader.h"
#include "numeric.h"
#include "pth.h"
#include "safetensors.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WS_MAX_INDEX_BYTES (64u << 20)

struct weights {
    char *path, *dir;
    ld_map *maps;
    int nmaps;
    weight_entry *e;
    int n, cap;
    uint64_t total;
};

/* ---- names ------------------------------------------------------------------------------- */

int weights_name_cmp(const char *a, const char *b)
{
    const char *a0 = a, *b0 = b;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = memcmp(a, b, la);
            if (c)
                return c;
            a += la;
            b += lb;
        } else {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    if (*a || *b)
        return *a ? 1 : -1;
    return strcmp(a0, b0); /* equal up to leading zeros: any fixed order will do */
}

static int ws_entry_cmp(const void *x, const void *y)
{
    return weights_name_cmp(((const weight_entry *)x)->name, ((const weight_entry *)y)->name);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_torch_name(const char *s)
{
    return has_suffix(s, ".pth") || has_suffix(s, ".pt") || has_suffix(s, ".ckpt") ||
           has_suffix(s, ".bin");
}

/* ---- building ---------------------------------------------------------------------------- */

/* Maps a file and keeps the mapping; *index receives its slot in ws->maps. */
static int ws_map(weights *ws, const char *path, int *index)
{
    ld_map *m = realloc(ws->maps, (size_t)(ws->nmaps + 1) * sizeof *m);
    if (!m)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    ws->maps = m;
    TRY(ld_map_file(path, &ws->maps[ws->nmaps]));
    *index = ws->nmaps++;
    return REEL_OK;
}

/* Moves the parsed tensors of file `map` into the set (names change owner). */
static int ws_take(weights *ws, int map, ld_list *l)
{
    const ld_map *m = &ws->maps[map];
    if (ws->n + l->n > ws->cap) {
        int cap = ws->cap ? ws->cap : 64;
        while (cap < ws->n + l->n)
            cap *= 2;
        weight_entry *e = realloc(ws->e, (size_t)cap * sizeof *e);
        if (!e)
            return err_set(REEL_E_NOMEM, "%s: out of memory for %d tensors", m->path, cap);
        ws->e = e;
        ws->cap = cap;
    }
    for (int i = 0; i < l->n; i++) {
        const ld_tensor *t = &l->v[i];
        weight_entry *w = &ws->e[ws->n++];
        memset(w, 0, sizeof *w);
        w->name = t->name;
        w->file = m->path;
        w->t.data = (void *)(m->data + t->offset);
        w->t.dtype = t->dtype;
        w->t.dev = DEV_CPU;
        w->t.ndim = t->ndim;
        memcpy(w->t.shape, t->shape, sizeof t->shape);
        memcpy(w->t.stride, t->stride, sizeof t->stride);
        ws->total += (uint64_t)tensor_numel(&w->t) * dtype_size(t->dtype);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
    return REEL_OK;
}

static int ws_open_file(weights *ws, const char *path)
{
    int mi = -1;
    TRY(ws_map(ws, path, &mi));
    const ld_map *m = &ws->maps[mi];
    ld_list l = {0};
    int st;
    if (pth_is_zip(m->data, m->size) || is_torch_name(path))
        st = pth_parse(m->path, m->data, m->size, &l);
    else
        st = st_parse(m->path, m->data, m->size, &l);
    if (st == REEL_OK)
        st = ws_take(ws, mi, &l);
    ld_list_free(&l);
    return st;
}

typedef struct ws_listed {
    const char *name;
    int shard;
    int found; /* seen in its shard */
} ws_listed;

static int ws_listed_cmp(const void *a, const void *b)
{
    return strcmp(((const ws_listed *)a)->name, ((const ws_listed *)b)->name);
}

/* Each shard must hold exactly the tensors the index assigns to it. */
static int ws_check_shard(const char *index_path, ws_listed *listed, int n, int shard,
                          const char *shard_path, const ld_list *l)
{
    char q[160];
    for (int i = 0; i < l->n; i++) {
        ws_listed key = {l->v[i].name, 0, 0};
        ws_listed *hit = bsearch(&key, listed, (size_t)n, sizeof *listed, ws_listed_cmp);
        ld_printable(l->v[i].name, strlen(l->v[i].name), q, sizeof q);
        if (!hit)
            return err_set(REEL_E_FORMAT, "%s: tensor '%s' of shard %s is not in the index", index_path,
                           q, shard_path);
        if (hit->shard != shard)
            return err_set(REEL_E_FORMAT, "%s: tensor '%s' is in shard %s but the index puts it elsewhere",
                           index_path, q, shard_path);
        hit->found = 1;
    }
    return REEL_OK;
}

static int ws_open_index(weights *ws, const char *path)
{
    char *text;
    size_t len;
    TRY(ld_read_text(path, WS_MAX_INDEX_BYTES, &text, &len));
    st_index ix;
    int st = st_index_parse(path, text, len, &ix);
    free(text);
    TRY(st);
    ws_listed *listed = malloc((size_t)ix.n * sizeof *listed);
    if (!listed) {
        st_index_free(&ix);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < ix.n; i++) {
        listed[i].name = ix.names[i];
        listed[i].shard = ix.shard[i];
        listed[i].found = 0;
    }
    qsort(listed, (size_t)ix.n, sizeof *listed, ws_listed_cmp);
    for (int s = 0; s < ix.nshards && st == REEL_OK; s++) {
        size_t need = strlen(ws->dir) + strlen(ix.shards[s]) + 2;
        char *shard_path = malloc(need);
        if (!shard_path) {
            st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
            break;
        }
        snprintf(shard_path, need, "%s/%s", ws->dir, ix.shards[s]);
        int mi = -1;
        ld_list l = {0};
        st = ws_map(ws, shard_path, &mi);
        if (st == REEL_OK)
            st = st_parse(ws->maps[mi].path, ws->maps[mi].data, ws->maps[mi].size, &l);
        if (st != REEL_OK)
            err_wrap(st, "%s: shard named by the index", path);
        if (st == REEL_OK)
            st = ws_check_shard(path, listed, ix.n, s, shard_path, &l);
        if (st == REEL_OK)
            st = ws_take(ws, mi, &l);
        ld_list_free(&l);
        free(shard_path);
    }
    for (int i = 0; i < ix.n && st == REEL_OK; i++) /* a listed tensor that no shard holds */
        if (!listed[i].found) {
            char q[160];
            st = err_set(REEL_E_FORMAT, "%s: tensor '%s' is missing from its shard %s", path,
                         ld_printable(listed[i].name, strlen(listed[i].name), q, sizeof q),
                         ix.shards[listed[i].shard]);
        }
    free(listed);
    st_index_free(&ix);
    return st;
}

/* ---- folders ----------------------------------------------------------------------------- */

typedef struct ws_names {
    char **v;
    int n;
} ws_names;

static int ws_names_add(ws_names *l, const char *s)
{
    char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
    if (!v)
        return REEL_E_NOMEM;
    l->v = v;
    if (!(v[l->n] = strdup(s)))
        return REEL_E_NOMEM;
    l->n++;
    return REEL_OK;
}

static void ws_names_free(ws_names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int ws_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Picks the one checkpoint of a folder; *chosen is a malloc'd full path. */
static int ws_pick_in_dir(const char *dir, char **chosen)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set(REEL_E_IO, "%s: cannot list folder: %s", dir, strerror(errno));
    ws_names kinds[3] = {{0}}; /* index, safetensors, torch */
    static const char *kind_name[3] = {"*.safetensors.index.json", "*.safetensors",
                                       "PyTorch checkpoints"};
    int st = REEL_OK;
    struct dirent *de;
    while ((de = readdir(d)) && st == REEL_OK) {
        const char *n = de->d_name;
        if (n[0] == '.')
            continue;
        int k = has_suffix(n, ".safetensors.index.json") ? 0
                : has_suffix(n, ".safetensors")          ? 1
                : is_torch_name(n)                       ? 2
                                                         : -1;
        if (k >= 0 && ws_names_add(&kinds[k], n) != REEL_OK)
            st = err_set(REEL_E_NOMEM, "%s: out of memory", dir);
    }
    closedir(d);
    for (int k = 0; k < 3 && st == REEL_OK; k++) {
        ws_names *l = &kinds[k];
        if (l->n == 0)
            continue;
        qsort(l->v, (size_t)l->n, sizeof *l->v, ws_str_cmp);
        if (l->n > 1) {
            char list[512];
            size_t used = 0;
            for (int i = 0; i < l->n && used < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", l->v[i]);
            st = err_set(REEL_E_INVALID, "%s: holds %d %s (%s); name the one to open", dir, l->n,
                         kind_name[k], list);
            break;
        }
        size_t need = strlen(dir) + strlen(l->v[0]) + 2;
        *chosen = malloc(need);
        if (!*chosen)
            st = err_set(REEL_E_NOMEM, "%s: out of memory", dir);
        else
            snprintf(*chosen, need, "%s/%s", dir, l->v[0]);
        break;
    }
    if (st == REEL_OK && !*chosen)
        st = err_set(REEL_E_NOT_FOUND,
                     "%s: no weights in this folder (looked for *.safetensors.index.json, *.safetensors, .pth/.pt/.ckpt/.bin)",
                     dir);
    for (int k = 0; k < 3; k++)
        ws_names_free(&kinds[k]);
    return st;
}

/* ---- open/close -------------------------------------------------------------------------- */

static char *ws_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int weights_open(const char *path, weights **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return err_set(errno == ENOENT ? REEL_E_NOT_FOUND : REEL_E_IO, "%s: %s", path, strerror(errno));
    weights *ws = calloc(1, sizeof *ws);
    if (!ws)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    char *file = NULL;
    int st = REEL_OK;
    ws->path = strdup(path);
    if (S_ISDIR(sb.st_mode)) {
        ws->dir = strdup(path);
        if (ws->path && ws->dir)
            st = ws_pick_in_dir(path, &file);
    } else {
        ws->dir = ws_dirname(path);
        file = strdup(path);
    }
    if (st == REEL_OK && (!ws->path || !ws->dir || !file))
        st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
    if (st == REEL_OK)
        st = has_suffix(file, ".json") ? ws_open_index(ws, file) : ws_open_file(ws, file);
    free(file);
    if (st == REEL_OK && ws->n > 0) {
        qsort(ws->e, (size_t)ws->n, sizeof *ws->e, ws_entry_cmp);
        for (int i = 1; i < ws->n && st == REEL_OK; i++)
            if (!strcmp(ws->e[i - 1].name, ws->e[i].name)) {
                char q[160];
                st = err_set(REEL_E_FORMAT, "%s: tensor '%s' appears twice", ws->e[i].file,
                             ld_printable(ws->e[i].name, strlen(ws->e[i].name), q, sizeof q));
            }
    }
    if (st != REEL_OK) {
        weights_close(ws);
        return st;
    }
    *out = ws;
    return REEL_OK;
}

void weights_close(weights *ws)
{
    if (!ws)
        return;
    for (int i = 0; i < ws->n; i++)
        free((char *)ws->e[i].name);
    for (int i = 0; i < ws->nmaps; i++)
        ld_unmap(&ws->maps[i]);
    free(ws->e);
    free(ws->maps);
    free(ws->path);
    free(ws->dir);
    free(ws);
}

int weights_count(const weights *ws) { return ws->n; }

const weight_entry *weights_at(const weights *ws, int i)
{
    return i >= 0 && i < ws->n ? &ws->e[i] : NULL;
}

const weight_entry *weights_find(const weights *ws, const char *name)
{
    int lo = 0, hi = ws->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = weights_name_cmp(ws->e[mid].name, name);
        if (c == 0)
            return &ws->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *weights_path(const weights *ws) { return ws->path; }
const char *weights_dir(const weights *ws) { return ws->dir; }
int weights_file_count(const weights *ws) { return ws->nmaps; }
const char *weights_file(const weights *ws, int i)
{
    return i >= 0 && i < ws->nmaps ? ws->maps[i].path : NULL;
}
uint64_t weights_total_bytes(const weights *ws) { return ws->total; }

/* ---- reading ----------------------------------------------------------------------------- */

/* Element i of a row at p with stride s (in elements); the mapping gives no alignment promise
 * (a safetensors header may have any length), hence memcpy. */
static void ws_convert_row(const uint8_t *p, int64_t s, enum dtype dt, int64_t n, float *dst)
{
    switch (dt) {
    case DT_F32:
        for (int64_t i = 0; i < n; i++)
            memcpy(&dst[i], p + i * s * 4, 4);
        break;
    case DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + i * s * 8, 8);
            dst[i] = (float)v;
        }
        break;
    case DT_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = f16_to_f32(ld_u16(p + i * s * 2));
        break;
    case DT_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(ld_u16(p + i * s * 2));
        break;
    case DT_F8_E4M3:
        for (int64_t i = 0; i < n; i++)
            dst[i] = f8e4m3_to_f32(p[i * s]);
        break;
    case DT_F8_E5M2:
        for (int64_t i = 0; i < n; i++)
            dst[i] = f8e5m2_to_f32(p[i * s]);
        break;
    default:
        break;
    }
}

int weights_read_f32(const weight_entry *e, float *dst)
{
    const tensor *t = &e->t;
    if (!dtype_is_float(t->dtype))
        return err_set(REEL_E_UNSUPPORTED, "%s: tensor '%s' is %s, not a float dtype", e->file,
                       e->name, dtype_name(t->dtype));
    int64_t numel = tensor_numel(t);
    if (numel == 0)
        return REEL_OK;
    if (t->ndim == 0) {
        ws_convert_row(t->data, 1, t->dtype, 1, dst);
        return REEL_OK;
    }
    /* walk the outer dims with an odometer, convert the innermost dim as one strided row */
    int last = t->ndim - 1;
    int64_t idx[TENSOR_MAX_DIMS] = {0}, rows = numel / t->shape[last];
    size_t es = dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int d = 0; d < last; d++)
            off += idx[d] * t->stride[d];
        ws_convert_row((const uint8_t *)t->data + off * (int64_t)es, t->stride[last], t->dtype,
                       t->shape[last], dst + r * t->shape[last]);
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return REEL_OK;
}

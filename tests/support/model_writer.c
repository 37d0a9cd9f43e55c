#include "model_writer.h"

#include "dit/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable byte buffer -------------------------------------------------------------- */

typedef struct tw_buf {
    uint8_t *b;
    size_t n, cap;
    int oom;
} tw_buf;

static void tw_put(tw_buf *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *b = realloc(w->b, cap);
        if (!b) {
            w->oom = 1;
            return;
        }
        w->b = b;
        w->cap = cap;
    }
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void tw_u8(tw_buf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    tw_put(w, &b, 1);
}
static void tw_u16(tw_buf *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    tw_put(w, b, 2);
}
static void tw_u32(tw_buf *w, uint32_t v)
{
    tw_u16(w, v & 0xffffu);
    tw_u16(w, v >> 16);
}
static void tw_u64(tw_buf *w, uint64_t v)
{
    tw_u32(w, (uint32_t)v);
    tw_u32(w, (uint32_t)(v >> 32));
}
static void tw_str(tw_buf *w, const char *s) { tw_put(w, s, strlen(s)); }

static int tw_save(const char *path, const tw_buf *w)
{
    if (w->oom)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    FILE *f = fopen(path, "wb");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t wrote = fwrite(w->b, 1, w->n, f);
    int bad = fclose(f) != 0 || wrote != w->n;
    return bad ? err_set(REEL_E_IO, "%s: write failed", path) : REEL_OK;
}

static size_t tw_nbytes(const tw_tensor *t)
{
    size_t n = dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* ---- safetensors ------------------------------------------------------------------------- */

static const char *tw_st_dtype(enum dtype dt)
{
    static const char *names[DT_COUNT] = {
        [DT_F32] = "F32",         [DT_F16] = "F16",         [DT_BF16] = "BF16",
        [DT_F8_E4M3] = "F8_E4M3", [DT_F8_E5M2] = "F8_E5M2", [DT_F64] = "F64",
        [DT_I64] = "I64",         [DT_I32] = "I32",         [DT_I16] = "I16",
        [DT_I8] = "I8",           [DT_U8] = "U8",           [DT_BOOL] = "BOOL",
    };
    return (unsigned)dt < DT_COUNT ? names[dt] : "?";
}

static void tw_json_string(tw_buf *w, const char *s)
{
    tw_u8(w, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            tw_u8(w, '\\');
            tw_u8(w, c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            tw_str(w, esc);
        } else {
            tw_u8(w, c);
        }
    }
    tw_u8(w, '"');
}

int tw_write_safetensors(const char *path, const tw_tensor *t, int n, const char *metadata_json)
{
    tw_buf h = {0};
    tw_u8(&h, '{');
    int first = 1;
    if (metadata_json) {
        tw_str(&h, "\"__metadata__\":");
        tw_str(&h, metadata_json);
        first = 0;
    }
    uint64_t off = 0;
    char num[64];
    for (int i = 0; i < n; i++) {
        if (!first)
            tw_u8(&h, ',');
        first = 0;
        tw_json_string(&h, t[i].name);
        tw_str(&h, ":{\"dtype\":\"");
        tw_str(&h, tw_st_dtype(t[i].dtype));
        tw_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            tw_str(&h, num);
        }
        uint64_t end = off + tw_nbytes(&t[i]);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)end);
        tw_str(&h, num);
        off = end;
    }
    tw_u8(&h, '}');
    while (h.n % 8) /* the reference writer aligns the data section to 8 bytes with spaces */
        tw_u8(&h, ' ');
    tw_buf w = {0};
    tw_u64(&w, h.n);
    tw_put(&w, h.b, h.n);
    for (int i = 0; i < n; i++)
        tw_put(&w, t[i].data, tw_nbytes(&t[i]));
    int st = h.oom ? err_set(REEL_E_NOMEM, "%s: out of memory", path) : tw_save(path, &w);
    free(h.b);
    free(w.b);
    return st;
}

int tw_write_sharded(const char *dir, const char *base, const tw_tensor *t, int n, int shards)
{
    if (shards < 1 || shards > n)
        return err_set(REEL_E_INVALID, "tw_write_sharded: %d shards for %d tensors", shards, n);
    char path[1024], file[256];
    tw_buf ix = {0};
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += tw_nbytes(&t[i]);
    char num[64];
    snprintf(num, sizeof num, "{\"metadata\":{\"total_size\":%llu},\"weight_map\":{",
             (unsigned long long)total);
    tw_str(&ix, num);
    int st = REEL_OK;
    for (int s = 0; s < shards && st == REEL_OK; s++) {
        int lo = (int)((int64_t)n * s / shards), hi = (int)((int64_t)n * (s + 1) / shards);
        snprintf(file, sizeof file, "%s-%05d-of-%05d.safetensors", base, s + 1, shards);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        st = tw_write_safetensors(path, t + lo, hi - lo, NULL);
        for (int i = lo; i < hi; i++) {
            if (i)
                tw_u8(&ix, ',');
            tw_json_string(&ix, t[i].name);
            tw_u8(&ix, ':');
            tw_json_string(&ix, file);
        }
    }
    tw_str(&ix, "}}\n");
    snprintf(path, sizeof path, "%s/%s.safetensors.index.json", dir, base);
    if (st == REEL_OK)
        st = tw_save(path, &ix);
    free(ix.b);
    return st;
}

/* ---- pickle, protocol 2, as CPython's pickler writes a torch state dict ------------------- */

typedef struct tw_pickler {
    tw_buf w;
    int next_memo;
    int m_od, m_rebuild, m_storage_str, m_cpu, m_type[DT_COUNT];
} tw_pickler;

static void tw_memo_put(tw_pickler *p)
{
    if (p->next_memo < 256) {
        tw_u8(&p->w, 'q');
        tw_u8(&p->w, (unsigned)p->next_memo);
    } else {
        tw_u8(&p->w, 'r');
        tw_u32(&p->w, (uint32_t)p->next_memo);
    }
    p->next_memo++;
}

static void tw_memo_get(tw_pickler *p, int idx)
{
    if (idx < 256) {
        tw_u8(&p->w, 'h');
        tw_u8(&p->w, (unsigned)idx);
    } else {
        tw_u8(&p->w, 'j');
        tw_u32(&p->w, (uint32_t)idx);
    }
}

/* BINUNICODE, memoized; *memo caches the slot of a string pickled once and reused by identity
 * (CPython memoizes by object: literals like 'storage' and 'cpu' are one object each). */
static void tw_pk_string(tw_pickler *p, const char *s, int *memo)
{
    if (memo && *memo >= 0) {
        tw_memo_get(p, *memo);
        return;
    }
    tw_u8(&p->w, 'X');
    tw_u32(&p->w, (uint32_t)strlen(s));
    tw_str(&p->w, s);
    if (memo)
        *memo = p->next_memo;
    tw_memo_put(p);
}

static void tw_pk_global(tw_pickler *p, const char *mod, const char *name, int *memo)
{
    if (*memo >= 0) {
        tw_memo_get(p, *memo);
        return;
    }
    tw_u8(&p->w, 'c');
    tw_str(&p->w, mod);
    tw_u8(&p->w, '\n');
    tw_str(&p->w, name);
    tw_u8(&p->w, '\n');
    *memo = p->next_memo;
    tw_memo_put(p);
}

static void tw_pk_int(tw_pickler *p, int64_t v)
{
    if (v >= 0 && v <= 0xff) {
        tw_u8(&p->w, 'K');
        tw_u8(&p->w, (unsigned)v);
    } else if (v >= 0 && v <= 0xffff) {
        tw_u8(&p->w, 'M');
        tw_u16(&p->w, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        tw_u8(&p->w, 'J');
        tw_u32(&p->w, (uint32_t)(int32_t)v);
    } else { /* LONG1: shortest little-endian two's complement */
        uint8_t b[8];
        int n = 0;
        uint64_t u = (uint64_t)v;
        for (n = 0; n < 8; n++)
            b[n] = (uint8_t)(u >> (8 * n));
        n = 8;
        while (n > 1 && ((b[n - 1] == 0 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xff && (b[n - 2] & 0x80))))
            n--;
        tw_u8(&p->w, 0x8a);
        tw_u8(&p->w, (unsigned)n);
        tw_put(&p->w, b, (size_t)n);
    }
}

static void tw_pk_int_tuple(tw_pickler *p, const int64_t *v, int n)
{
    if (n == 0) { /* the empty tuple is a singleton: not memoized */
        tw_u8(&p->w, ')');
        return;
    }
    if (n > 3)
        tw_u8(&p->w, '(');
    for (int i = 0; i < n; i++)
        tw_pk_int(p, v[i]);
    tw_u8(&p->w, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
    tw_memo_put(p);
}

static void tw_pk_ordered_dict(tw_pickler *p)
{
    tw_pk_global(p, "collections", "OrderedDict", &p->m_od);
    tw_u8(&p->w, ')');
    tw_u8(&p->w, 'R');
    tw_memo_put(p);
}

static const char *tw_storage_type(enum dtype dt)
{
    static const char *names[DT_COUNT] = {
        [DT_F32] = "FloatStorage",          [DT_F16] = "HalfStorage",
        [DT_BF16] = "BFloat16Storage",      [DT_F8_E4M3] = "Float8_e4m3fnStorage",
        [DT_F8_E5M2] = "Float8_e5m2Storage", [DT_F64] = "DoubleStorage",
        [DT_I64] = "LongStorage",           [DT_I32] = "IntStorage",
        [DT_I16] = "ShortStorage",          [DT_I8] = "CharStorage",
        [DT_U8] = "ByteStorage",            [DT_BOOL] = "BoolStorage",
    };
    return names[dt];
}

static void tw_pk_tensor(tw_pickler *p, const tw_tensor *t, int key)
{
    tw_pk_global(p, "torch._utils", "_rebuild_tensor_v2", &p->m_rebuild);
    tw_u8(&p->w, '(');
    /* persistent id ('storage', torch.<T>Storage, key, 'cpu', numel) */
    int64_t numel = 1, stride[5];
    for (int d = t->ndim - 1; d >= 0; d--) {
        stride[d] = numel;
        numel *= t->shape[d];
    }
    tw_u8(&p->w, '(');
    tw_pk_string(p, "storage", &p->m_storage_str);
    tw_pk_global(p, "torch", tw_storage_type(t->dtype), &p->m_type[t->dtype]);
    char k[16];
    snprintf(k, sizeof k, "%d", key);
    tw_pk_string(p, k, NULL);
    tw_pk_string(p, "cpu", &p->m_cpu);
    tw_pk_int(p, numel);
    tw_u8(&p->w, 't');
    tw_memo_put(p);
    tw_u8(&p->w, 'Q');
    tw_pk_int(p, 0); /* storage offset */
    tw_pk_int_tuple(p, t->shape, t->ndim);
    tw_pk_int_tuple(p, stride, t->ndim);
    tw_u8(&p->w, 0x89); /* requires_grad False */
    tw_pk_ordered_dict(p); /* backward hooks */
    tw_u8(&p->w, 't');
    tw_memo_put(p);
    tw_u8(&p->w, 'R');
    tw_memo_put(p);
}

int tw_pickle_state_dict(const tw_tensor *t, int n, const char *nest, uint8_t **out, size_t *len)
{
    tw_pickler p;
    memset(&p, 0, sizeof p);
    p.m_od = p.m_rebuild = p.m_storage_str = p.m_cpu = -1;
    for (int i = 0; i < DT_COUNT; i++)
        p.m_type[i] = -1;
    tw_u8(&p.w, 0x80);
    tw_u8(&p.w, 2);
    if (nest) {
        tw_u8(&p.w, '}');
        tw_memo_put(&p);
        tw_pk_string(&p, nest, NULL);
    }
    tw_pk_ordered_dict(&p);
    /* items in batches of 1000, as CPython's _batch_setitems */
    for (int lo = 0; lo < n; lo += 1000) {
        int hi = lo + 1000 < n ? lo + 1000 : n;
        if (hi - lo > 1)
            tw_u8(&p.w, '(');
        for (int i = lo; i < hi; i++) {
            tw_pk_string(&p, t[i].name, NULL);
            tw_pk_tensor(&p, &t[i], i);
        }
        tw_u8(&p.w, hi - lo > 1 ? 'u' : 's');
    }
    /* state: {'_metadata': OrderedDict([('', {'version': 1})])}, then BUILD */
    tw_u8(&p.w, '}');
    tw_memo_put(&p);
    tw_pk_string(&p, "_metadata", NULL);
    tw_pk_ordered_dict(&p);
    tw_pk_string(&p, "", NULL);
    tw_u8(&p.w, '}');
    tw_memo_put(&p);
    tw_pk_string(&p, "version", NULL);
    tw_pk_int(&p, 1);
    tw_u8(&p.w, 's');
    tw_u8(&p.w, 's');
    tw_u8(&p.w, 's');
    tw_u8(&p.w, 'b');
    if (nest)
        tw_u8(&p.w, 's');
    tw_u8(&p.w, '.');
    if (p.w.oom) {
        free(p.w.b);
        return err_set(REEL_E_NOMEM, "tw_pickle_state_dict: out of memory");
    }
    *out = p.w.b;
    *len = p.w.n;
    return REEL_OK;
}

/* ---- zip, as PyTorch's miniz writer lays it out ------------------------------------------- */

static uint32_t tw_crc32(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

typedef struct tw_record {
    char *name;
    const uint8_t *data;
    size_t size;
} tw_record;

static int tw_record_cmp(const void *a, const void *b)
{
    return strcmp(((const tw_record *)a)->name, ((const tw_record *)b)->name);
}

/* Local header (sizes deferred to a data descriptor, flags 0x0808), name, "FB" padding extra
 * so the payload starts on a 64-byte boundary, payload, descriptor; then the central directory,
 * a zip64 end record and locator, and the end record: what torch 1.13 writes. */
static int tw_write_zip(const char *path, const tw_record *r, int n)
{
    tw_buf w = {0};
    uint64_t *offsets = malloc((size_t)n * sizeof *offsets);
    uint32_t *crcs = malloc((size_t)n * sizeof *crcs);
    if (!offsets || !crcs) {
        free(offsets);
        free(crcs);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        if (r[i].size >= 0xffffffffu) {
            free(offsets);
            free(crcs);
            return err_set(REEL_E_INVALID, "%s: record of 4 GiB or more (zip64 entries not written here)", path);
        }
        size_t nlen = strlen(r[i].name);
        offsets[i] = w.n;
        crcs[i] = tw_crc32(r[i].data, r[i].size);
        size_t start = w.n + 30 + nlen + 4;
        size_t pad = (64 - start % 64) % 64;
        tw_u32(&w, 0x04034b50u);
        tw_u16(&w, 0);      /* version needed */
        tw_u16(&w, 0x0808); /* data descriptor follows, UTF-8 names */
        tw_u16(&w, 0);      /* stored */
        tw_u16(&w, 0);      /* time */
        tw_u16(&w, 0);      /* date */
        tw_u32(&w, 0);      /* crc, sizes: in the descriptor */
        tw_u32(&w, 0);
        tw_u32(&w, 0);
        tw_u16(&w, (unsigned)nlen);
        tw_u16(&w, (unsigned)(pad + 4));
        tw_str(&w, r[i].name);
        tw_str(&w, "FB");
        tw_u16(&w, (unsigned)pad);
        for (size_t k = 0; k < pad; k++)
            tw_u8(&w, 'Z');
        tw_put(&w, r[i].data, r[i].size);
        tw_u32(&w, 0x08074b50u);
        tw_u32(&w, crcs[i]);
        tw_u32(&w, (uint32_t)r[i].size);
        tw_u32(&w, (uint32_t)r[i].size);
    }
    uint64_t cd = w.n;
    for (int i = 0; i < n; i++) {
        tw_u32(&w, 0x02014b50u);
        tw_u16(&w, 0);
        tw_u16(&w, 0);
        tw_u16(&w, 0x0808);
        tw_u16(&w, 0);
        tw_u16(&w, 0);
        tw_u16(&w, 0);
        tw_u32(&w, crcs[i]);
        tw_u32(&w, (uint32_t)r[i].size);
        tw_u32(&w, (uint32_t)r[i].size);
        tw_u16(&w, (unsigned)strlen(r[i].name));
        tw_u16(&w, 0); /* extra */
        tw_u16(&w, 0); /* comment */
        tw_u16(&w, 0); /* disk */
        tw_u16(&w, 0); /* internal attributes */
        tw_u32(&w, 0); /* external attributes */
        tw_u32(&w, (uint32_t)offsets[i]);
        tw_str(&w, r[i].name);
    }
    uint64_t cd_size = w.n - cd, z64 = w.n;
    tw_u32(&w, 0x06064b50u);
    tw_u64(&w, 44);
    tw_u16(&w, 0x031e);
    tw_u16(&w, 0x002d);
    tw_u32(&w, 0);
    tw_u32(&w, 0);
    tw_u64(&w, (uint64_t)n);
    tw_u64(&w, (uint64_t)n);
    tw_u64(&w, cd_size);
    tw_u64(&w, cd);
    tw_u32(&w, 0x07064b50u);
    tw_u32(&w, 0);
    tw_u64(&w, z64);
    tw_u32(&w, 1);
    tw_u32(&w, 0x06054b50u);
    tw_u16(&w, 0);
    tw_u16(&w, 0);
    tw_u16(&w, (unsigned)n);
    tw_u16(&w, (unsigned)n);
    tw_u32(&w, (uint32_t)cd_size);
    tw_u32(&w, (uint32_t)cd);
    tw_u16(&w, 0);
    int st = tw_save(path, &w);
    free(w.b);
    free(offsets);
    free(crcs);
    return st;
}

/* torch's archive folder: the file name without folder and extension */
static void tw_archive_root(const char *path, char *root, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot > b ? (size_t)(dot - b) : strlen(b);
    if (n >= cap)
        n = cap - 1;
    memcpy(root, b, n);
    root[n] = 0;
}

/* data.pkl, byteorder, data/<key> in string order, version, .data/serialization_id */
static int tw_write_checkpoint(const char *path, const uint8_t *pkl, size_t pkl_len, int nstorage,
                               const uint8_t *const *sdata, const size_t *ssize)
{
    char root[256];
    tw_archive_root(path, root, sizeof root);
    int n = nstorage + 4;
    tw_record *r = calloc((size_t)n, sizeof *r);
    char *names = malloc((size_t)n * 300);
    if (!r || !names) {
        free(r);
        free(names);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++)
        r[i].name = names + (size_t)i * 300;
    static const char byteorder[] = "little", version[] = "3\n",
                      serial[] = "1234567890123456789012345678901234567890";
    snprintf(r[0].name, 300, "%s/data.pkl", root);
    r[0].data = pkl;
    r[0].size = pkl_len;
    snprintf(r[1].name, 300, "%s/byteorder", root);
    r[1].data = (const uint8_t *)byteorder;
    r[1].size = 6;
    for (int i = 0; i < nstorage; i++) {
        snprintf(r[2 + i].name, 300, "%s/data/%d", root, i);
        r[2 + i].data = sdata[i];
        r[2 + i].size = ssize[i];
    }
    qsort(r + 2, (size_t)nstorage, sizeof *r, tw_record_cmp);
    snprintf(r[2 + nstorage].name, 300, "%s/version", root);
    r[2 + nstorage].data = (const uint8_t *)version;
    r[2 + nstorage].size = 2;
    snprintf(r[3 + nstorage].name, 300, "%s/.data/serialization_id", root);
    r[3 + nstorage].data = (const uint8_t *)serial;
    r[3 + nstorage].size = sizeof serial - 1;
    int st = tw_write_zip(path, r, n);
    free(r);
    free(names);
    return st;
}

int tw_write_pth(const char *path, const tw_tensor *t, int n, const char *nest)
{
    uint8_t *pkl;
    size_t len;
    TRY(tw_pickle_state_dict(t, n, nest, &pkl, &len));
    const uint8_t **sdata = malloc((size_t)(n ? n : 1) * sizeof *sdata);
    size_t *ssize = malloc((size_t)(n ? n : 1) * sizeof *ssize);
    int st;
    if (!sdata || !ssize) {
        st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
    } else {
        for (int i = 0; i < n; i++) {
            sdata[i] = t[i].data;
            ssize[i] = tw_nbytes(&t[i]);
        }
        st = tw_write_checkpoint(path, pkl, len, n, sdata, ssize);
    }
    free(sdata);
    free(ssize);
    free(pkl);
    return st;
}

int tw_write_pth_raw(const char *path, const uint8_t *pickle, size_t pickle_len, int nstorage,
                     const uint64_t *storage_bytes)
{
    uint64_t most = 0;
    for (int i = 0; i < nstorage; i++)
        if (storage_bytes[i] > most)
            most = storage_bytes[i];
    uint8_t *zeros = calloc((size_t)most + 1, 1);
    const uint8_t **sdata = malloc((size_t)(nstorage + 1) * sizeof *sdata);
    size_t *ssize = malloc((size_t)(nstorage + 1) * sizeof *ssize);
    int st;
    if (!zeros || !sdata || !ssize) {
        st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
    } else {
        for (int i = 0; i < nstorage; i++) {
            sdata[i] = zeros;
            ssize[i] = (size_t)storage_bytes[i];
        }
        st = tw_write_checkpoint(path, pickle, pickle_len, nstorage, sdata, ssize);
    }
    free(zeros);
    free(sdata);
    free(ssize);
    return st;
}

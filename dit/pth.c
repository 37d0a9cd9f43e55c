#include "pth.h"

#include "error.h"
#include "pickle.h"
#include "zip.h"

#include <stdio.h>
#include <stdlib.h>

#define PTH_MAX_PICKLE (256u << 20)
#define PTH_MAX_VISITS (1 << 22) /* shared sub-dicts can make a small graph expand a lot */

typedef struct pth_ctx {
    const char *path;
    const zip_archive *zip;
    const char *root; /* archive folder, not NUL-terminated */
    uint32_t root_len;
    const pk_doc *doc;
    ld_list *out;
    char name[PTH_MAX_NAME];
    long visits;
} pth_ctx;

int pth_is_zip(const uint8_t *data, uint64_t size)
{
    return size >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

static const zip_entry *pth_record(const pth_ctx *c, const char *rel, size_t rel_len)
{
    char buf[PTH_MAX_NAME + 512];
    if (c->root_len + 1 + rel_len >= sizeof buf)
        return NULL;
    memcpy(buf, c->root, c->root_len);
    buf[c->root_len] = '/';
    memcpy(buf + c->root_len + 1, rel, rel_len);
    return zip_find(c->zip, buf, (uint32_t)(c->root_len + 1 + rel_len));
}

static int pth_add_tensor(pth_ctx *c, const pk_value *t, size_t name_len)
{
    const pk_value *s = &c->doc->v[t->u.tensor.storage];
    char q[160], kq[64];
    ld_printable(c->name, name_len, q, sizeof q);
    ld_printable(s->u.storage.key, s->u.storage.key_len, kq, sizeof kq);
    char rel[300];
    if (s->u.storage.key_len > 256)
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': storage key '%s' is too long", c->path, q, kq);
    int rl = snprintf(rel, sizeof rel, "data/%.*s", (int)s->u.storage.key_len, s->u.storage.key);
    const zip_entry *e = pth_record(c, rel, (size_t)rl);
    if (!e)
        return err_set(REEL_E_FORMAT, "%s: tensor '%s': no record data/%s for its storage", c->path,
                       q, kq);
    int64_t esize = (int64_t)dtype_size(s->u.storage.dtype), bytes;
    if (!ld_mul_ok(s->u.storage.numel, esize, &bytes) || (uint64_t)bytes != e->size)
        return err_set(REEL_E_FORMAT,
                       "%s: tensor '%s': storage data/%s declares %lld %s elements but holds %llu bytes",
                       c->path, q, kq, (long long)s->u.storage.numel, dtype_name(s->u.storage.dtype),
                       (unsigned long long)e->size);
    /* the furthest element the view reaches must lie inside the storage */
    int64_t offset = t->u.tensor.offset, last = offset, numel = 1;
    int ok = 1;
    for (int i = 0; i < t->u.tensor.ndim && ok; i++) {
        int64_t step;
        ok = ld_mul_ok(numel, t->u.tensor.shape[i], &numel) &&
             (t->u.tensor.shape[i] == 0 ||
              (ld_mul_ok(t->u.tensor.shape[i] - 1, t->u.tensor.stride[i], &step) &&
               ld_add_ok(last, step, &last)));
    }
    if (!ok || (numel > 0 && last >= s->u.storage.numel) || (numel == 0 && offset > s->u.storage.numel))
        return err_set(REEL_E_FORMAT,
                       "%s: tensor '%s': view (offset %lld, shape and strides as stored) reaches past its storage of %lld elements",
                       c->path, q, (long long)offset, (long long)s->u.storage.numel);
    uint64_t span = numel > 0 ? (uint64_t)(last - offset + 1) * (uint64_t)esize : 0;
    return ld_list_push(c->out, c->path, c->name, name_len, s->u.storage.dtype, t->u.tensor.ndim,
                        t->u.tensor.shape, t->u.tensor.stride,
                        e->data_offset + (uint64_t)offset * (uint64_t)esize, span);
}

/* Appends ".key" (or "key" at the top) to c->name[0..len); returns the new length or < 0,
 * or 0 for a key kind that cannot name a tensor (skipped). */
static long pth_join(pth_ctx *c, size_t len, const pk_value *key)
{
    char num[24];
    const char *k;
    size_t kl;
    if (key->kind == PK_STR) {
        k = key->u.str.s;
        kl = key->u.str.len;
    } else if (key->kind == PK_INT) { /* optimizer states are keyed by parameter number */
        kl = (size_t)snprintf(num, sizeof num, "%lld", (long long)key->u.i);
        k = num;
    } else {
        return 0;
    }
    size_t sep = len ? 1 : 0;
    if (len + sep + kl >= PTH_MAX_NAME) {
        char q[96];
        return err_set(REEL_E_FORMAT, "%s: tensor name '%s...' is longer than %d bytes", c->path,
                       ld_printable(c->name, len, q, sizeof q), PTH_MAX_NAME);
    }
    if (sep)
        c->name[len] = '.';
    memcpy(c->name + len + sep, k, kl);
    return (long)(len + sep + kl);
}

static int pth_walk(pth_ctx *c, int dict, size_t len, int depth)
{
    if (depth > PTH_MAX_DEPTH) {
        char q[96];
        return err_set(REEL_E_FORMAT, "%s: dicts nested deeper than %d levels at '%s' (a reference loop?)",
                       c->path, PTH_MAX_DEPTH, ld_printable(c->name, len, q, sizeof q));
    }
    const pk_value *d = &c->doc->v[dict];
    for (int i = 0; i + 1 < d->u.seq.n; i += 2) {
        if (++c->visits > PTH_MAX_VISITS)
            return err_set(REEL_E_UNSUPPORTED, "%s: more than %d dict entries to walk (shared sub-dicts?)",
                           c->path, PTH_MAX_VISITS);
        const pk_value *val = &c->doc->v[d->u.seq.items[i + 1]];
        if (val->kind != PK_TENSOR && val->kind != PK_DICT)
            continue;
        long nl = pth_join(c, len, &c->doc->v[d->u.seq.items[i]]);
        if (nl < 0)
            return (int)nl;
        if (nl == 0)
            continue;
        if (val->kind == PK_TENSOR)
            TRY(pth_add_tensor(c, val, (size_t)nl));
        else
            TRY(pth_walk(c, d->u.seq.items[i + 1], (size_t)nl, depth + 1));
    }
    return REEL_OK;
}

int pth_parse(const char *path, const uint8_t *data, uint64_t size, ld_list *out)
{
    if (!pth_is_zip(data, size)) {
        if (size >= 2 && data[0] == 0x80 && data[1] <= 5)
            return err_set(REEL_E_UNSUPPORTED,
                           "%s: legacy torch.save format (torch < 1.6, not a zip archive); re-save it with a newer torch",
                           path);
        return err_set(REEL_E_FORMAT, "%s: not a PyTorch checkpoint (no zip signature)", path);
    }
    zip_archive zip;
    TRY(zip_read(path, data, size, &zip));
    pth_ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.zip = &zip;
    c.out = out;
    int first = out->n;
    int st = REEL_OK;
    const char *slash = zip.n ? memchr(zip.entries[0].name, '/', zip.entries[0].name_len) : NULL;
    char q[128];
    if (!zip.n)
        st = err_set(REEL_E_FORMAT, "%s: empty zip archive", path);
    else if (!slash || slash == zip.entries[0].name)
        st = err_set(REEL_E_FORMAT, "%s: first zip entry '%s' is not inside a folder (not a torch.save archive)",
                     path, ld_printable(zip.entries[0].name, zip.entries[0].name_len, q, sizeof q));
    const zip_entry *pkl = NULL, *bo = NULL;
    if (st == REEL_OK) {
        c.root = zip.entries[0].name;
        c.root_len = (uint32_t)(slash - c.root);
        ld_printable(c.root, c.root_len, q, sizeof q);
        pkl = pth_record(&c, "data.pkl", 8);
        bo = pth_record(&c, "byteorder", 9);
        if (!pkl)
            st = err_set(REEL_E_FORMAT, "%s: no %s/data.pkl in the archive (not a torch.save checkpoint)",
                         path, q);
        else if (pkl->size > PTH_MAX_PICKLE)
            st = err_set(REEL_E_UNSUPPORTED, "%s: %s/data.pkl is %llu bytes (at most %u)", path, q,
                         (unsigned long long)pkl->size, PTH_MAX_PICKLE);
    }
    if (st == REEL_OK && bo) { /* written since torch 2.0; older files are little-endian */
        const char *b = (const char *)data + bo->data_offset;
        if (bo->size == 3 && !memcmp(b, "big", 3))
            st = err_set(REEL_E_UNSUPPORTED, "%s: big-endian checkpoint", path);
        else if (bo->size != 6 || memcmp(b, "little", 6))
            st = err_set(REEL_E_FORMAT, "%s: %s/byteorder is neither 'little' nor 'big'", path, q);
    }
    pk_doc doc;
    memset(&doc, 0, sizeof doc);
    if (st == REEL_OK) {
        char where[1200];
        snprintf(where, sizeof where, "%s: %s/data.pkl", path, q);
        st = pk_load(where, data + pkl->data_offset, (size_t)pkl->size, &doc);
    }
    if (st == REEL_OK) {
        c.doc = &doc;
        const pk_value *root = &doc.v[doc.root];
        if (root->kind != PK_DICT)
            st = err_set(REEL_E_UNSUPPORTED, "%s: the checkpoint holds a %s, not a dict of tensors", path,
                         root->kind == PK_TENSOR ? "single tensor" : "non-dict object");
        else
            st = pth_walk(&c, doc.root, 0, 0);
    }
    pk_free(&doc);
    zip_free(&zip);
    if (st != REEL_OK)
        while (out->n > first)
            free(out->v[--out->n].name);
    return st;
}

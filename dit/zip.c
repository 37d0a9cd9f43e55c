#include "zip.h"

#include "error.h"
#include "loader.h"

#include <stdlib.h>
#include <string.h>

/* Record sizes and signatures of the zip format (APPNOTE.TXT 4.3). */
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_EOCD_LEN 22
#define ZIP64_LOC_SIG 0x07064b50u
#define ZIP64_LOC_LEN 20
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_EOCD_LEN 56
#define ZIP_CDH_SIG 0x02014b50u
#define ZIP_CDH_LEN 46
#define ZIP_LFH_SIG 0x04034b50u
#define ZIP_LFH_LEN 30
#define ZIP_SAT16 0xffffu
#define ZIP_SAT32 0xffffffffu

typedef struct zip_dir {
    uint64_t count, cd_size, cd_offset;
    uint64_t end; /* where the directory must end: the first end record */
} zip_dir;

/* The end of central directory record sits in the last 22 + 65535 bytes; a candidate counts only
 * when its comment length reaches exactly the end of the file, so a signature that happens to
 * occur inside a comment or a payload is not taken for it. */
static int zip_find_eocd(const char *path, const uint8_t *d, uint64_t size, uint64_t *pos)
{
    if (size < ZIP_EOCD_LEN)
        return err_set(REEL_E_FORMAT, "%s: %llu bytes, too short for a zip archive", path,
                       (unsigned long long)size);
    uint64_t lowest = size > ZIP_EOCD_LEN + 65535u ? size - ZIP_EOCD_LEN - 65535u : 0;
    for (uint64_t p = size - ZIP_EOCD_LEN + 1; p-- > lowest;)
        if (ld_u32(d + p) == ZIP_EOCD_SIG && p + ZIP_EOCD_LEN + ld_u16(d + p + 20) == size) {
            *pos = p;
            return REEL_OK;
        }
    return err_set(REEL_E_FORMAT, "%s: no zip end-of-central-directory record (not a zip archive, or truncated)",
                   path);
}

static int zip_read_end(const char *path, const uint8_t *d, uint64_t size, zip_dir *dir)
{
    uint64_t e = 0;
    TRY(zip_find_eocd(path, d, size, &e));
    const uint8_t *r = d + e;
    uint32_t disk = ld_u16(r + 4), cd_disk = ld_u16(r + 6);
    uint64_t n_disk = ld_u16(r + 8), n = ld_u16(r + 10), cd_size = ld_u32(r + 12),
             cd_off = ld_u32(r + 16);
    dir->end = e;
    if (e >= ZIP64_LOC_LEN && ld_u32(d + e - ZIP64_LOC_LEN) == ZIP64_LOC_SIG) {
        const uint8_t *loc = d + e - ZIP64_LOC_LEN;
        uint64_t z = ld_u64(loc + 8);
        if (ld_u32(loc + 4) != 0 || ld_u32(loc + 16) != 1)
            return err_set(REEL_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
        if (z > e - ZIP64_LOC_LEN || e - ZIP64_LOC_LEN - z < ZIP64_EOCD_LEN)
            return err_set(REEL_E_FORMAT, "%s: zip64 end record offset %llu is outside the archive",
                           path, (unsigned long long)z);
        const uint8_t *r64 = d + z;
        if (ld_u32(r64) != ZIP64_EOCD_SIG)
            return err_set(REEL_E_FORMAT, "%s: no zip64 end record at offset %llu", path,
                           (unsigned long long)z);
        uint64_t rec = ld_u64(r64 + 4);
        if (rec < ZIP64_EOCD_LEN - 12 || rec > e - ZIP64_LOC_LEN - z - 12)
            return err_set(REEL_E_FORMAT, "%s: zip64 end record claims %llu bytes", path,
                           (unsigned long long)rec);
        uint64_t n64_disk = ld_u64(r64 + 24), n64 = ld_u64(r64 + 32), size64 = ld_u64(r64 + 40),
                 off64 = ld_u64(r64 + 48);
        /* 32-bit fields that are not saturated must agree with their zip64 copies */
        if ((n != ZIP_SAT16 && n != n64) || (n_disk != ZIP_SAT16 && n_disk != n64_disk) ||
            (cd_size != ZIP_SAT32 && cd_size != size64) || (cd_off != ZIP_SAT32 && cd_off != off64))
            return err_set(REEL_E_FORMAT, "%s: zip end record and zip64 end record disagree", path);
        if (ld_u32(r64 + 16) != 0 || ld_u32(r64 + 20) != 0)
            return err_set(REEL_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
        n = n64;
        n_disk = n64_disk;
        cd_size = size64;
        cd_off = off64;
        dir->end = z;
    } else if (n == ZIP_SAT16 || cd_size == ZIP_SAT32 || cd_off == ZIP_SAT32) {
        return err_set(REEL_E_FORMAT, "%s: zip end record needs a zip64 record that is missing", path);
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n)
        return err_set(REEL_E_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
    if (cd_off > dir->end || cd_size != dir->end - cd_off)
        return err_set(REEL_E_FORMAT,
                       "%s: central directory [%llu, +%llu) does not end where the end record starts (%llu)",
                       path, (unsigned long long)cd_off, (unsigned long long)cd_size,
                       (unsigned long long)dir->end);
    if (n > cd_size / ZIP_CDH_LEN)
        return err_set(REEL_E_FORMAT, "%s: %llu entries cannot fit in a %llu-byte central directory",
                       path, (unsigned long long)n, (unsigned long long)cd_size);
    if (n > ZIP_MAX_ENTRIES)
        return err_set(REEL_E_UNSUPPORTED, "%s: %llu zip entries (at most %d)", path,
                       (unsigned long long)n, ZIP_MAX_ENTRIES);
    dir->count = n;
    dir->cd_size = cd_size;
    dir->cd_offset = cd_off;
    return REEL_OK;
}

/* Replaces saturated 32-bit fields by the 64-bit values of the zip64 extra field (id 1), which
 * lists only the saturated ones, in the order: size, compressed size, header offset, disk. */
static int zip_apply_zip64(const char *path, const char *name, const uint8_t *x, uint32_t xlen,
                           uint64_t *usize, uint64_t *csize, uint64_t *offset, uint32_t *disk)
{
    uint64_t *fields[3] = {usize, csize, offset};
    int need = (*usize == ZIP_SAT32) + (*csize == ZIP_SAT32) + (*offset == ZIP_SAT32);
    int need_disk = *disk == ZIP_SAT16;
    if (!need && !need_disk)
        return REEL_OK;
    for (uint32_t p = 0; p + 4 <= xlen;) {
        uint32_t id = ld_u16(x + p), len = ld_u16(x + p + 2);
        if (len > xlen - p - 4)
            break;
        if (id == 1) {
            const uint8_t *f = x + p + 4;
            if (len < (uint32_t)need * 8 + (need_disk ? 4u : 0u))
                return err_set(REEL_E_FORMAT, "%s: entry '%s': zip64 extra field too short", path,
                               name);
            for (int i = 0; i < 3; i++)
                if (*fields[i] == ZIP_SAT32) {
                    *fields[i] = ld_u64(f);
                    f += 8;
                }
            if (need_disk)
                *disk = ld_u32(f);
            return REEL_OK;
        }
        p += 4 + len;
    }
    return err_set(REEL_E_FORMAT, "%s: entry '%s': sizes need a zip64 extra field that is missing",
                   path, name);
}

typedef struct zip_span {
    uint64_t header, end; /* local header offset, one past the payload */
    int index;
} zip_span;

static int zip_span_cmp(const void *a, const void *b)
{
    const zip_span *x = a, *y = b;
    return x->header < y->header ? -1 : x->header > y->header;
}

static int zip_name_cmp2(const char *a, uint32_t an, const char *b, uint32_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

static int zip_entry_cmp(const void *a, const void *b)
{
    const zip_entry *x = a, *y = b;
    return zip_name_cmp2(x->name, x->name_len, y->name, y->name_len);
}

/* One central directory entry and the local header it points to. */
static int zip_read_entry(const char *path, const uint8_t *d, const zip_dir *dir, uint64_t *pos,
                          zip_entry *out, zip_span *span)
{
    uint64_t cd_end = dir->cd_offset + dir->cd_size;
    if (cd_end - *pos < ZIP_CDH_LEN || ld_u32(d + *pos) != ZIP_CDH_SIG)
        return err_set(REEL_E_FORMAT, "%s: bad central directory entry at offset %llu", path,
                       (unsigned long long)*pos);
    const uint8_t *c = d + *pos;
    uint32_t flags = ld_u16(c + 8), method = ld_u16(c + 10);
    uint64_t csize = ld_u32(c + 20), usize = ld_u32(c + 24), lho = ld_u32(c + 42);
    uint32_t nlen = ld_u16(c + 28), xlen = ld_u16(c + 30), clen = ld_u16(c + 32), disk = ld_u16(c + 34);
    if (cd_end - *pos - ZIP_CDH_LEN < (uint64_t)nlen + xlen + clen)
        return err_set(REEL_E_FORMAT, "%s: central directory entry at offset %llu runs past the directory",
                       path, (unsigned long long)*pos);
    const char *name = (const char *)c + ZIP_CDH_LEN;
    char q[128];
    ld_printable(name, nlen, q, sizeof q);
    if (nlen == 0 || memchr(name, 0, nlen))
        return err_set(REEL_E_FORMAT, "%s: zip entry name '%s' is empty or holds a NUL byte", path, q);
    TRY(zip_apply_zip64(path, q, c + ZIP_CDH_LEN + nlen, xlen, &usize, &csize, &lho, &disk));
    if (flags & 1u)
        return err_set(REEL_E_UNSUPPORTED, "%s: zip entry '%s' is encrypted", path, q);
    if (method != 0)
        return err_set(REEL_E_UNSUPPORTED,
                       "%s: zip entry '%s' is compressed (method %u); reel reads stored entries only, as torch.save writes them",
                       path, q, method);
    if (disk != 0)
        return err_set(REEL_E_UNSUPPORTED, "%s: zip entry '%s' is on disk %u", path, q, disk);
    if (csize != usize)
        return err_set(REEL_E_FORMAT, "%s: stored zip entry '%s' has compressed size %llu but size %llu",
                       path, q, (unsigned long long)csize, (unsigned long long)usize);

    /* the local header must lie before the directory and agree with it */
    if (lho > dir->cd_offset || dir->cd_offset - lho < ZIP_LFH_LEN)
        return err_set(REEL_E_FORMAT, "%s: zip entry '%s': local header offset %llu is outside the archive data",
                       path, q, (unsigned long long)lho);
    const uint8_t *l = d + lho;
    uint32_t lnlen = ld_u16(l + 26), lxlen = ld_u16(l + 28);
    if (ld_u32(l) != ZIP_LFH_SIG)
        return err_set(REEL_E_FORMAT, "%s: zip entry '%s': no local header at offset %llu", path, q,
                       (unsigned long long)lho);
    uint64_t data = lho + ZIP_LFH_LEN + lnlen + lxlen;
    if (data > dir->cd_offset || usize > dir->cd_offset - data)
        return err_set(REEL_E_FORMAT, "%s: zip entry '%s': payload [%llu, +%llu) runs into the central directory",
                       path, q, (unsigned long long)data, (unsigned long long)usize);
    if (lnlen != nlen || memcmp(l + ZIP_LFH_LEN, name, nlen) != 0)
        return err_set(REEL_E_FORMAT, "%s: zip entry '%s': local header names another file", path, q);
    if (ld_u16(l + 8) != method || (ld_u16(l + 6) & 8u) != (flags & 8u))
        return err_set(REEL_E_FORMAT, "%s: zip entry '%s': local header disagrees with the central directory",
                       path, q);
    if (!(flags & 8u)) { /* no data descriptor: the local header carries the sizes */
        uint64_t lc = ld_u32(l + 18), lu = ld_u32(l + 22);
        if ((lc != ZIP_SAT32 && lc != csize) || (lu != ZIP_SAT32 && lu != usize))
            return err_set(REEL_E_FORMAT, "%s: zip entry '%s': local header sizes disagree with the central directory",
                           path, q);
    }
    out->name = name;
    out->name_len = nlen;
    out->data_offset = data;
    out->size = usize;
    span->header = lho;
    span->end = data + usize;
    *pos += ZIP_CDH_LEN + (uint64_t)nlen + xlen + clen;
    return REEL_OK;
}

int zip_read(const char *path, const uint8_t *d, uint64_t size, zip_archive *out)
{
    memset(out, 0, sizeof *out);
    zip_dir dir = {0, 0, 0, 0};
    TRY(zip_read_end(path, d, size, &dir));
    int n = (int)dir.count;
    zip_span *spans = malloc((size_t)(n ? n : 1) * sizeof *spans);
    out->entries = malloc((size_t)(n ? n : 1) * sizeof *out->entries);
    out->sorted = malloc((size_t)(n ? n : 1) * sizeof *out->sorted);
    int st = REEL_OK;
    if (!spans || !out->entries || !out->sorted)
        st = err_set(REEL_E_NOMEM, "%s: out of memory for %d zip entries", path, n);
    uint64_t pos = dir.cd_offset;
    for (int i = 0; i < n && st == REEL_OK; i++) {
        st = zip_read_entry(path, d, &dir, &pos, &out->entries[i], &spans[i]);
        spans[i].index = i;
    }
    if (st == REEL_OK && pos != dir.cd_offset + dir.cd_size)
        st = err_set(REEL_E_FORMAT, "%s: central directory holds %llu bytes after its %d entries", path,
                     (unsigned long long)(dir.cd_offset + dir.cd_size - pos), n);
    if (st == REEL_OK) { /* entries may not share bytes: each must end before the next begins */
        qsort(spans, (size_t)n, sizeof *spans, zip_span_cmp);
        for (int i = 1; i < n && st == REEL_OK; i++)
            if (spans[i].header < spans[i - 1].end) {
                const zip_entry *e = &out->entries[spans[i].index];
                char q[128];
                st = err_set(REEL_E_FORMAT, "%s: zip entry '%s' overlaps the entry before it", path,
                             ld_printable(e->name, e->name_len, q, sizeof q));
            }
    }
    if (st == REEL_OK) {
        memcpy(out->sorted, out->entries, (size_t)n * sizeof *out->sorted);
        qsort(out->sorted, (size_t)n, sizeof *out->sorted, zip_entry_cmp);
        for (int i = 1; i < n && st == REEL_OK; i++) {
            const zip_entry *a = &out->sorted[i - 1], *b = &out->sorted[i];
            if (!zip_name_cmp2(a->name, a->name_len, b->name, b->name_len)) {
                char q[128];
                st = err_set(REEL_E_FORMAT, "%s: zip entry '%s' appears twice", path,
                             ld_printable(b->name, b->name_len, q, sizeof q));
            }
        }
    }
    out->n = n;
    free(spans);
    if (st != REEL_OK)
        zip_free(out);
    return st;
}

void zip_free(zip_archive *z)
{
    free(z->entries);
    free(z->sorted);
    memset(z, 0, sizeof *z);
}

const zip_entry *zip_find(const zip_archive *z, const char *name, uint32_t name_len)
{
    int lo = 0, hi = z->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const zip_entry *e = &z->sorted[mid];
        int c = zip_name_cmp2(e->name, e->name_len, name, name_len);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

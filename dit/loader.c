#include "loader.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int ld_map_file(const char *path, ld_map *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(REEL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(REEL_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(REEL_E_FORMAT, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return err_set(REEL_E_FORMAT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED)
        return err_set(REEL_E_IO, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size,
                       strerror(e));
    out->path = strdup(path);
    if (!out->path) {
        munmap(p, (size_t)st.st_size);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    out->data = p;
    out->size = (uint64_t)st.st_size;
    return REEL_OK;
}

void ld_unmap(ld_map *m)
{
    if (m->data)
        munmap((void *)m->data, (size_t)m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

int ld_read_text(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err_set(REEL_E_IO, "%s: read error", path);
    }
    if (n > max_bytes) {
        free(buf);
        return err_set(REEL_E_FORMAT, "%s: larger than the %zu bytes allowed for this file", path,
                       max_bytes);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return REEL_OK;
}

const char *ld_printable(const char *s, size_t n, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int w = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);
        if (o + (size_t)w + 4 > cap) { /* room for "..." and the NUL */
            if (o + 4 <= cap) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (w == 1) {
            buf[o++] = (char)c;
        } else if (w == 2) {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (cap)
        buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

int ld_list_push(ld_list *l, const char *path, const char *name, size_t name_len, enum dtype dt,
                 int ndim, const int64_t *shape, const int64_t *stride, uint64_t offset,
                 uint64_t nbytes)
{
    if (memchr(name, 0, name_len)) {
        char q[96];
        return err_set(REEL_E_FORMAT, "%s: tensor name '%s' contains a NUL byte", path,
                       ld_printable(name, name_len, q, sizeof q));
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        ld_tensor *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return err_set(REEL_E_NOMEM, "%s: out of memory for %d tensors", path, cap);
        l->v = v;
        l->cap = cap;
    }
    ld_tensor *t = &l->v[l->n];
    memset(t, 0, sizeof *t);
    t->name = malloc(name_len + 1);
    if (!t->name)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    memcpy(t->name, name, name_len);
    t->name[name_len] = 0;
    t->dtype = dt;
    t->ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->stride[i] = stride ? stride[i] : s;
        s *= shape[i];
    }
    t->offset = offset;
    t->nbytes = nbytes;
    l->n++;
    return REEL_OK;
}

void ld_list_free(ld_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

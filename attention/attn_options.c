#include "attn_options.h"

#include "../plugin/reel_status.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *attn_opts_names(const reel_attn_option *known, char *buf, size_t n)
{
    size_t used = 0;
    if (n)
        buf[0] = 0;
    for (int i = 0; known && known[i].name; i++) {
        int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", i ? ", " : "", known[i].name);
        if (w < 0 || (size_t)w >= (n > used ? n - used : 0))
            break;
        used += (size_t)w;
    }
    if (n && !buf[0])
        snprintf(buf, n, "(none)");
    return buf;
}

static const reel_attn_option *find_known(const reel_attn_option *known, const char *key, size_t len)
{
    for (int i = 0; known && known[i].name; i++)
        if (strlen(known[i].name) == len && !strncmp(known[i].name, key, len))
            return &known[i];
    return NULL;
}

int attn_opts_parse(const char *s, const reel_attn_option *known, attn_opts *out, char *err,
                    size_t err_size)
{
    char names[512];
    memset(out, 0, sizeof *out);
    if (!s)
        return REEL_OK;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len == 0) { /* tolerate "a=1,,b=2" and a trailing comma */
            p += end ? 1 : 0;
            if (!end)
                break;
            continue;
        }
        if (!eq || eq == p) {
            snprintf(err, err_size, "option '%.*s' is not key=value (options: %s)", (int)len, p,
                     attn_opts_names(known, names, sizeof names));
            return REEL_E_INVALID;
        }
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        if (!find_known(known, p, klen)) {
            snprintf(err, err_size, "unknown option '%.*s' (options: %s)", (int)klen, p,
                     attn_opts_names(known, names, sizeof names));
            return REEL_E_INVALID;
        }
        for (int i = 0; i < out->n; i++)
            if (strlen(out->kv[i].key) == klen && !strncmp(out->kv[i].key, p, klen)) {
                snprintf(err, err_size, "option '%.*s' given twice", (int)klen, p);
                return REEL_E_INVALID;
            }
        if (out->n == ATTN_OPTS_MAX || klen >= sizeof out->kv[0].key ||
            vlen >= sizeof out->kv[0].value) {
            snprintf(err, err_size, "option '%.*s' is too long (or more than %d options)", (int)len,
                     p, ATTN_OPTS_MAX);
            return REEL_E_INVALID;
        }
        memcpy(out->kv[out->n].key, p, klen);
        memcpy(out->kv[out->n].value, eq + 1, vlen);
        out->n++;
        if (!end)
            break;
        p = end + 1;
    }
    return REEL_OK;
}

const char *attn_opts_value(const attn_opts *o, const reel_attn_option *known, const char *key)
{
    const reel_attn_option *k = find_known(known, key, strlen(key));
    if (!k)
        return NULL;
    for (int i = 0; o && i < o->n; i++)
        if (!strcmp(o->kv[i].key, key))
            return o->kv[i].value;
    return k->default_value;
}

int attn_opts_int(const attn_opts *o, const reel_attn_option *known, const char *key, long lo,
                  long hi, long *v, char *err, size_t err_size)
{
    const char *s = attn_opts_value(o, known, key);
    char *end;
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || x < lo || x > hi) {
        snprintf(err, err_size, "option %s=%s: expected an integer in [%ld, %ld]", key,
                 s ? s : "(missing)", lo, hi);
        return REEL_E_INVALID;
    }
    *v = x;
    return REEL_OK;
}

int attn_opts_double(const attn_opts *o, const reel_attn_option *known, const char *key,
                     double lo, double hi, double *v, char *err, size_t err_size)
{
    const char *s = attn_opts_value(o, known, key);
    char *end;
    errno = 0;
    double x = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(x) || x < lo || x > hi) {
        snprintf(err, err_size, "option %s=%s: expected a number in [%g, %g]", key,
                 s ? s : "(missing)", lo, hi);
        return REEL_E_INVALID;
    }
    *v = x;
    return REEL_OK;
}

/* tok_load: finds the model file (a folder may hold spiece.model or tokenizer.json), reads it
 * whole and hands it to the loader its content calls for: a JSON object for tokenizer.json,
 * anything else is parsed as a SentencePiece protobuf. */
#define _POSIX_C_SOURCE 200809L
#include "tok_internal.h"

#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int read_file(const char *path, char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errno == ENOENT ? REEL_E_NOT_FOUND : REEL_E_IO, "%s: %s", path,
                       strerror(errno));
    int st = REEL_OK;
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = err_set(REEL_E_IO, "%s: cannot size the file: %s", path, strerror(errno));
    } else if (!(buf = malloc((size_t)len + 1))) {
        st = err_set(REEL_E_NOMEM, "%s: %ld bytes", path, len);
    } else if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        st = err_set(REEL_E_IO, "%s: short read", path);
    }
    fclose(f);
    if (st < 0) {
        free(buf);
        return st;
    }
    buf[len] = 0;
    *data = buf;
    *size = (size_t)len;
    return REEL_OK;
}

/* The model file inside a folder, or path itself. *file is malloc'ed. */
static int resolve(const char *path, char **file)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return err_set(errno == ENOENT ? REEL_E_NOT_FOUND : REEL_E_IO, "%s: %s", path,
                       strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        *file = malloc(strlen(path) + 1);
        if (!*file)
            return err_set(REEL_E_NOMEM, "%s", path);
        strcpy(*file, path);
        return REEL_OK;
    }
    static const char *names[] = {"spiece.model", "tokenizer.json"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(path) + strlen(names[i]) + 2;
        char *p = malloc(n);
        if (!p)
            return err_set(REEL_E_NOMEM, "%s", path);
        snprintf(p, n, "%s/%s", path, names[i]);
        if (stat(p, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
            *file = p;
            return REEL_OK;
        }
        free(p);
    }
    return err_set(REEL_E_NOT_FOUND, "%s: the folder holds neither spiece.model nor tokenizer.json",
                   path);
}

static bool looks_like_json(const char *data, size_t size)
{
    size_t i = 0;
    if (size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        i = 3;
    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    return i < size && data[i] == '{';
}

int tok_load(const char *path, tokenizer **out)
{
    if (!path || !out)
        return err_set(REEL_E_INVALID, "tok_load: NULL %s", path ? "out" : "path");
    *out = NULL;
    char *file = NULL, *data = NULL;
    size_t size = 0;
    int st = resolve(path, &file);
    if (st >= 0)
        st = read_file(file, &data, &size);
    if (st >= 0 && size == 0)
        st = err_set(REEL_E_FORMAT, "%s: empty file", file);
    if (st >= 0)
        st = looks_like_json(data, size) ? tok_hfjson_parse(data, size, file, out)
                                         : tok_spm_parse((const uint8_t *)data, size, file, out);
    free(data);
    free(file);
    return st;
}

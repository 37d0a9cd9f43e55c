
#include "out_file.h"

#include "dit/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct out_file {
    char *path;
    char *tmp; /* NULL for standard output */
    int fd;
    int overwrite;
    int finished;
    int failed;
};

static atomic_uint tmp_counter;

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int out_file_check_target(const char *path, int overwrite)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return REEL_OK; /* ENOENT, or ENOTDIR/EACCES that creating the temporary will report */
    if (S_ISDIR(st.st_mode))
        return err_set(REEL_E_INVALID, "%s is a folder, not a file name", path);
    if (!overwrite)
        return err_set(REEL_E_EXISTS, "%s already exists (allow overwriting to replace it)", path);
    return REEL_OK;
}

/* "dir/name" -> "dir/.name.<pid>-<n>.tmp": same folder, so the final rename never crosses
 * file systems; hidden, so a folder listing during the run does not show a half-written file. */
static char *tmp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    size_t n = strlen(path) + 64;
    char *t = malloc(n);
    if (!t)
        return NULL;
    unsigned k = atomic_fetch_add(&tmp_counter, 1u);
    snprintf(t, n, "%.*s.%s.%ld-%u.tmp", (int)dir_len, path, base, (long)getpid(), k);
    return t;
}

static int open_stdout(out_file *f)
{
    if (isatty(STDOUT_FILENO))
        return err_set(REEL_E_INVALID,
                       "'-' writes binary video to standard output, which is a terminal: pipe it "
                       "into a player or encoder (... -o - | mpv -) or redirect it to a file");
    /* what the program printed through stdio must come out before the video, not inside it */
    if (fflush(stdout) != 0)
        return err_set(REEL_E_IO, "standard output: %s", strerror(errno));
    f->fd = STDOUT_FILENO;
    return REEL_OK;
}

int out_file_open(const char *path, int overwrite, out_file **out)
{
    *out = NULL;
    if (!path || !*path)
        return err_set(REEL_E_INVALID, "empty output path");
    out_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = str_dup(path))) {
        free(f);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    f->fd = -1;
    f->overwrite = overwrite;
    int st;
    if (!strcmp(path, "-")) {
        if ((st = open_stdout(f)) < 0) {
            out_file_discard(f);
            return st;
        }
        *out = f;
        return REEL_OK;
    }
    if ((st = out_file_check_target(path, overwrite)) < 0) {
        out_file_discard(f);
        return st;
    }
    if (path[strlen(path) - 1] == '/') {
        out_file_discard(f);
        return err_set(REEL_E_INVALID, "%s names a folder, not a file", path);
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        free(f->tmp);
        if (!(f->tmp = tmp_name(path))) {
            out_file_discard(f);
            return err_set(REEL_E_NOMEM, "%s: out of memory", path);
        }
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0) {
            *out = f;
            return REEL_OK;
        }
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    const char *slash = strrchr(path, '/');
    int dir_len = !slash ? 1 : slash == path ? 1 : (int)(slash - path);
    st = err_set(REEL_E_IO, "%s: cannot create a file in folder '%.*s': %s", path, dir_len,
                 slash ? path : ".", strerror(e));
    free(f->tmp);
    f->tmp = NULL; /* never created: nothing to remove */
    out_file_discard(f);
    return st;
}

static int write_failed(out_file *f, const char *what, int e)
{
    int st = err_set(REEL_E_IO, "%s %s: %s", what, f->path, strerror(e));
    if (!f->failed)
        f->failed = st;
    return st;
}

int out_file_write(out_file *f, const void *buf, size_t n)
{
    if (f->fd < 0)
        return err_set(REEL_E_INVALID, "writing %s after it was closed", f->path);
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return write_failed(f, "writing", errno);
        if (w == 0) /* POSIX allows it for a device that cannot take more: treat as full */
            return write_failed(f, "writing", ENOSPC);
        p += w;
        n -= (size_t)w;
    }
    return REEL_OK;
}

int out_file_seek(out_file *f, int64_t offset, int whence, int64_t *pos)
{
    if (!f->tmp)
        return err_set(REEL_E_UNSUPPORTED, "cannot seek on standard output (%s)", f->path);
    off_t r = lseek(f->fd, (off_t)offset, whence);
    if (r < 0)
        return write_failed(f, "seeking in", errno);
    *pos = (int64_t)r;
    return REEL_OK;
}

int out_file_size(out_file *f, int64_t *size)
{
    struct stat st;
    if (!f->tmp)
        return err_set(REEL_E_UNSUPPORTED, "standard output (%s) has no size", f->path);
    if (fstat(f->fd, &st) != 0)
        return write_failed(f, "reading the size of", errno);
    *size = (int64_t)st.st_size;
    return REEL_OK;
}

int out_file_failed(const out_file *f) { return f->failed; }

int out_file_finish(out_file *f)
{
    if (f->finished)
        return REEL_OK;
    if (f->failed)
        return err_set(f->failed, "%s was not completed: an earlier write failed", f->path);
    f->finished = 1;
    /* fsync is where a delayed allocation failure (full disk, NFS quota) finally shows; pipes
     * and terminals cannot be synced (EINVAL) and need not be. */
    if (fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
        return write_failed(f, "flushing", errno);
    if (!f->tmp) {
        f->fd = -1; /* standard output stays open for the process */
        return REEL_OK;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0)
        return write_failed(f, "closing", errno);
    return REEL_OK;
}

/* Without overwrite, link(2) publishes atomically and fails with EEXIST if the name was taken
 * while we wrote. File systems without hard links (FAT, some FUSE) fall back to a check and a
 * rename, which is as good as they allow. */
static int publish(out_file *f)
{
    if (f->overwrite) {
        if (rename(f->tmp, f->path) != 0)
            return err_set(REEL_E_IO, "renaming %s to %s: %s", f->tmp, f->path, strerror(errno));
        return REEL_OK;
    }
    if (link(f->tmp, f->path) == 0) {
        if (unlink(f->tmp) != 0)
            return err_set(REEL_E_IO, "%s is complete, but its temporary %s could not be removed: %s",
                           f->path, f->tmp, strerror(errno));
        return REEL_OK;
    }
    int e = errno;
    if (e == EEXIST)
        return err_set(REEL_E_EXISTS, "%s appeared while it was being written; the new output was "
                                      "not kept (allow overwriting to replace it)", f->path);
    if (e != EPERM && e != ENOTSUP && e != EXDEV && e != EMLINK && e != ENOSYS)
        return err_set(REEL_E_IO, "publishing %s as %s: %s", f->tmp, f->path, strerror(e));
    TRY(out_file_check_target(f->path, 0));
    if (rename(f->tmp, f->path) != 0)
        return err_set(REEL_E_IO, "renaming %s to %s: %s", f->tmp, f->path, strerror(errno));
    return REEL_OK;
}

int out_file_commit(out_file *f)
{
    int st = out_file_finish(f);
    if (st == REEL_OK && f->tmp) {
        st = publish(f);
        if (st == REEL_OK || access(f->tmp, F_OK) != 0) {
            free(f->tmp);
            f->tmp = NULL; /* moved into place (or gone): nothing left to remove */
        }
    }
    out_file_discard(f);
    return st;
}

void out_file_discard(out_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0 && f->tmp)
        close(f->fd); /* the file is removed next: its close status no longer matters */
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

const char *out_file_path(const out_file *f) { return f->path; }

const char *out_file_tmp_path(const out_file *f) { return f->tmp ? f->tmp : "-"; }

int out_dir_prepare(const char *dir, int *created)
{
    struct stat st;
    *created = 0;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return err_set(REEL_E_IO, "%s exists and is not a folder", dir);
        return REEL_OK;
    }
    if (errno != ENOENT)
        return err_set(REEL_E_IO, "%s: %s", dir, strerror(errno));
    if (mkdir(dir, 0777) != 0)
        return err_set(REEL_E_IO, "cannot create folder %s: %s", dir, strerror(errno));
    *created = 1;
    return REEL_OK;
}

void out_dir_unprepare(const char *dir, int created)
{
    if (created)
        rmdir(dir); /* only succeeds when empty, which is the point: never remove others' files */
}

/* Output safety: no overwrite without the flag (REEL_E_EXISTS, the original untouched, also when
 * the name appears during the write), an abort or a failed run leaves no file, an unwritable
 * folder is REEL_E_IO naming the path, an unknown extension REEL_E_UNSUPPORTED naming it, and a
 * full disk (a file size limit, RLIMIT_FSIZE, makes every write past it fail with EFBIG exactly
 * like ENOSPC would; standard output onto /dev/full gives ENOSPC itself) is reported by every
 * sink with nothing left behind. */

#include "check.h"
#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"
#include "vae_io/out_file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_dir(const char *path) { CHECK(mkdir(path, 0755) == 0, "mkdir %s", path); }

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "creating %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int file_is(const char *path, const char *text)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(text) && !memcmp(buf, text, n);
}

static sink_params params(int w, int h)
{
    sink_params p;
    sink_params_default(&p);
    p.width = w, p.height = h;
    return p;
}

/* The kinds of output every test below goes through; those missing from the build drop out. */
static const char *const kinds[] = {"clip.y4m",
#ifdef REEL_HAVE_FFMPEG
                                    "clip.mp4", "clip.mkv", "clip.mov",
#endif
#ifdef REEL_HAVE_PNG
                                    "still.png", "seq_%04d.png",
#endif
                                    NULL};

static void out_file_basics(void)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", check_path("basic"));
    make_dir(dir);
    snprintf(path, sizeof path, "%s/a.bin", dir);
    out_file *f = NULL;
    CHECK_OK(out_file_open(path, 0, &f));
    if (!f)
        return;
    CHECK_OK(out_file_write(f, "hello ", 6));
    CHECK_OK(out_file_write(f, "world", 5));
    CHECK(access(path, F_OK) != 0, "visible before commit");
    CHECK(check_count_entries(dir) == 1, "the temporary lives beside the target");
    CHECK_OK(out_file_commit(f));
    CHECK(file_is(path, "hello world"), "content after commit");
    CHECK(check_count_entries(dir) == 1, "temporary left after commit");

    /* discard removes the temporary; the existing file stays */
    CHECK(out_file_open(path, 0, &f) == REEL_E_EXISTS, "existing file not refused");
    CHECK(strstr(err_msg(), path) != NULL, "message: %s", err_msg());
    CHECK_OK(out_file_open(path, 1, &f));
    CHECK_OK(out_file_write(f, "new", 3));
    out_file_discard(f);
    CHECK(file_is(path, "hello world") && check_count_entries(dir) == 1, "discard touched the original");

    /* the name appears while the output is written: the newcomer wins, ours is dropped */
    char late[700];
    snprintf(late, sizeof late, "%s/late.bin", dir);
    CHECK_OK(out_file_open(late, 0, &f));
    CHECK_OK(out_file_write(f, "ours", 4));
    write_text(late, "theirs");
    CHECK(out_file_commit(f) == REEL_E_EXISTS, "a file that appeared meanwhile was replaced");
    CHECK(file_is(late, "theirs") && check_count_entries(dir) == 2, "late file damaged or temporary left");

    /* with overwrite the new content replaces the old atomically */
    CHECK_OK(out_file_open(path, 1, &f));
    CHECK_OK(out_file_write(f, "replaced", 8));
    CHECK_OK(out_file_commit(f));
    CHECK(file_is(path, "replaced") && check_count_entries(dir) == 2, "overwrite");

    CHECK(out_file_open(dir, 1, &f) == REEL_E_INVALID, "a folder taken as a file");
}

static void no_overwrite(void)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", check_path("exists"));
    make_dir(dir);
    sink_params p = params(64, 48);
    for (int k = 0; kinds[k]; k++) {
        char first[700];
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k]);
        snprintf(first, sizeof first, "%s/%s", dir, !strcmp(kinds[k], "seq_%04d.png") ? "seq_0000.png" : kinds[k]);
        write_text(first, "precious");
        frame_sink *s = NULL;
        p.overwrite = 0;
        CHECK(sink_open(path, &p, &s) == REEL_E_EXISTS, "%s: existing output not refused", kinds[k]);
        CHECK(strstr(err_msg(), first) != NULL, "%s: message '%s' does not name it", kinds[k], err_msg());
        CHECK(file_is(first, "precious"), "%s: original changed", kinds[k]);
        p.overwrite = 1;
        uint8_t rgb[64 * 48 * 3];
        frames_test_pattern(rgb, 64, 48, 64 * 3, 0);
        CHECK_OK(sink_open(path, &p, &s));
        CHECK_OK(sink_write_rgb(s, rgb, 64 * 3));
        CHECK(file_is(first, "precious"), "%s: original changed before close", kinds[k]);
        CHECK_OK(sink_close(s));
        CHECK(!file_is(first, "precious") && access(first, F_OK) == 0, "%s: not replaced", kinds[k]);
    }
    int want = 0;
    while (kinds[want])
        want++;
    CHECK(check_count_entries(dir) == want, "%d entries in %s, want %d", check_count_entries(dir), dir, want);
}

static void abort_and_empty(void)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", check_path("aborted"));
    make_dir(dir);
    sink_params p = params(64, 48);
    uint8_t rgb[64 * 48 * 3];
    frames_test_pattern(rgb, 64, 48, 64 * 3, 3);
    for (int k = 0; kinds[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k]);
        frame_sink *s = NULL;
        CHECK_OK(sink_open(path, &p, &s));
        for (int f = 0; f < 3 && s && strcmp(kinds[k], "still.png"); f++)
            CHECK_OK(sink_write_rgb(s, rgb, 64 * 3));
        sink_abort(s);
        CHECK(check_count_entries(dir) == 0, "%s: abort left %d files", kinds[k], check_count_entries(dir));
        /* closing a sink that got no frames saves nothing and says so */
        CHECK_OK(sink_open(path, &p, &s));
        CHECK(sink_close(s) == REEL_E_INVALID, "%s: empty output accepted", kinds[k]);
        CHECK(strstr(err_msg(), "no frames") != NULL, "%s: message %s", kinds[k], err_msg());
        CHECK(check_count_entries(dir) == 0, "%s: empty close left %d files", kinds[k], check_count_entries(dir));
    }
}

static void bad_paths(void)
{
    sink_params p = params(64, 48);
    frame_sink *s = NULL;
    char path[700];
    /* a folder that does not exist (fails for root too) */
    for (int k = 0; kinds[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", check_path("missing/deeper"), kinds[k]);
        int st = sink_open(path, &p, &s);
        CHECK(st == REEL_E_IO, "%s in a missing folder: %d %s", kinds[k], st, err_msg());
        CHECK(strstr(err_msg(), check_path("missing")) != NULL, "message does not name the path: %s", err_msg());
    }
    /* a path through a regular file */
    write_text(check_path("plainfile"), "x");
    snprintf(path, sizeof path, "%s/clip.y4m", check_path("plainfile"));
    CHECK(sink_open(path, &p, &s) == REEL_E_IO && strstr(err_msg(), "Not a directory"),
          "through a file: %s", err_msg());
    /* a read-only folder (root ignores permissions, so only checked for other users) */
    if (geteuid() != 0) {
        char ro[600];
        snprintf(ro, sizeof ro, "%s", check_path("readonly"));
        make_dir(ro);
        chmod(ro, 0555);
        for (int k = 0; kinds[k]; k++) {
            snprintf(path, sizeof path, "%s/%s", ro, kinds[k]);
            int st = sink_open(path, &p, &s);
            CHECK(st == REEL_E_IO && strstr(err_msg(), ro) && strstr(err_msg(), "Permission denied"),
                  "%s in a read-only folder: %d %s", kinds[k], st, err_msg());
        }
        chmod(ro, 0755);
    }
#ifndef REEL_HAVE_FFMPEG
    CHECK(sink_open(check_path("clip.mp4"), &p, &s) == REEL_E_UNSUPPORTED &&
              strstr(err_msg(), "built without FFmpeg: .mp4 output unavailable"),
          "mp4 without FFmpeg: %s", err_msg());
#endif
#ifndef REEL_HAVE_PNG
    CHECK(sink_open(check_path("still.png"), &p, &s) == REEL_E_UNSUPPORTED &&
              strstr(err_msg(), "built without libpng"),
          "png without libpng: %s", err_msg());
#endif
    const char *unknown[] = {"clip.avi", "clip", "clip.mp4.bak", "dir.d/clip"};
    const char *named[] = {".avi", "(no extension)", ".bak", "(no extension)"};
    for (int i = 0; i < 4; i++) {
        CHECK(sink_open(check_path(unknown[i]), &p, &s) == REEL_E_UNSUPPORTED, "%s accepted", unknown[i]);
        CHECK(strstr(err_msg(), named[i]) != NULL, "%s: message %s", unknown[i], err_msg());
    }
    CHECK(access(check_path("clip.avi"), F_OK) != 0, "refused path created something");

    /* parameters */
    sink_params q = params(0, 48);
    CHECK(sink_open(check_path("x.y4m"), &q, &s) == REEL_E_INVALID, "width 0 accepted");
    q = params(64, 48);
    q.fps_den = 0;
    CHECK(sink_open(check_path("x.y4m"), &q, &s) == REEL_E_INVALID, "fps x/0 accepted");
    q = params(64, 48);
    q.crf = 60;
    CHECK(sink_open(check_path("x.y4m"), &q, &s) == REEL_E_INVALID, "crf 60 accepted");
    const char *const bad_key[] = {"with space", "v", NULL};
    const char *const no_value[] = {"prompt", NULL, NULL};
    q = params(64, 48);
    q.metadata = bad_key;
    CHECK(sink_open(check_path("x.y4m"), &q, &s) == REEL_E_INVALID && strstr(err_msg(), "with space"),
          "bad metadata key: %s", err_msg());
    q.metadata = no_value;
    CHECK(sink_open(check_path("x.y4m"), &q, &s) == REEL_E_INVALID && strstr(err_msg(), "prompt"),
          "key without value: %s", err_msg());
    CHECK(access(check_path("x.y4m"), F_OK) != 0, "refused parameters created a file");
    uint8_t rgb[64 * 48 * 3] = {0};
    CHECK_OK(sink_open(check_path("stride.y4m"), &p, &s));
    CHECK(sink_write_rgb(s, rgb, 64 * 3 - 1) == REEL_E_INVALID, "short row stride accepted");
    /* a refused argument wrote nothing: the sink goes on */
    CHECK_OK(sink_write_rgb(s, rgb, 64 * 3));
    CHECK(sink_frames_written(s) == 1, "%lld frames counted", (long long)sink_frames_written(s));
    sink_abort(s);
}

/* Writes frames until the sink fails (the size limit hits) or 40 frames, then closes. Three
 * smooth frames first, then noise, which no format compresses: every sink reaches the limit
 * with complete data already written (PNG: earlier frames already finished). */
static int fill(const char *path, int *failed_at)
{
    enum { W = 256, H = 160 };
    sink_params p = params(W, H);
    frame_sink *s = NULL;
    int st = sink_open(path, &p, &s);
    uint8_t *rgb = malloc(W * H * 3);
    *failed_at = -1;
    for (int f = 0; st == REEL_OK && f < 40; f++) {
        if (f < 3)
            frames_test_pattern(rgb, W, H, W * 3, f);
        else
            for (int i = 0; i < W * H * 3; i++)
                rgb[i] = (uint8_t)check_rand_u64();
        st = sink_write_rgb(s, rgb, W * 3);
        if (st < 0)
            *failed_at = f;
    }
    free(rgb);
    if (s)
        st = st == REEL_OK ? sink_close(s) : (sink_abort(s), st);
    return st;
}

static void full_disk(void)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", check_path("full"));
    make_dir(dir);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    for (int k = 0; kinds[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k]);
        int failed_at;
        lim = old;
        /* bytes per file: a PNG sequence fails at its first frame of noise (123 kB), a stream
         * after two to three frames */
        lim.rlim_cur = strstr(kinds[k], "%") ? 100000 : 300000;
        setrlimit(RLIMIT_FSIZE, &lim);
        int st = fill(path, &failed_at);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err_msg());
        setrlimit(RLIMIT_FSIZE, &old);
        /* a single image is under the limit: it must succeed, and is removed for the count */
        if (!strcmp(kinds[k], "still.png")) {
            CHECK(st == REEL_E_INVALID, "still.png: second frame accepted");
            continue;
        }
        printf("full disk, %-13s -> %s (frame %d): %s\n", kinds[k], reel_status_name(st), failed_at, msg);
        CHECK(st == REEL_E_IO, "%s: full disk gave %d: %s", kinds[k], st, msg);
        CHECK(strstr(msg, "File too large") != NULL, "%s: message lacks the reason: %s", kinds[k], msg);
        CHECK(strstr(msg, dir) != NULL, "%s: message lacks the path: %s", kinds[k], msg);
        CHECK(check_count_entries(dir) == 0, "%s: %d files left after a full disk", kinds[k], check_count_entries(dir));
    }
    signal(SIGXFSZ, SIG_DFL);

    /* standard output on a full device */
    int devfull = open("/dev/full", O_WRONLY);
    if (devfull < 0)
        return;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(devfull, STDOUT_FILENO);
    close(devfull);
    sink_params p = params(32, 32);
    frame_sink *s = NULL;
    int st = sink_open("-", &p, &s);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    if (s)
        sink_abort(s);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK(st == REEL_E_IO && strstr(msg, "No space left"), "stdout on /dev/full: %d %s", st, msg);
}

int main(void)
{
    check_seed("test_io_outfile");
    out_file_basics();
    no_overwrite();
    abort_and_empty();
    bad_paths();
    full_disk();
    return check_done();
}

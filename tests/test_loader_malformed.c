/* Malformed and hostile weight files: every variant must fail with REEL_E_FORMAT or
 * REEL_E_UNSUPPORTED, a one-line message that names the file and says what is wrong (each case
 * checks a phrase of it, so a file refused for another reason fails the test), and never crash
 * or hang (this program also runs under AddressSanitizer). Then seeded random corruptions of
 * valid files, and `reel info` on a bad file ($REEL_BIN): exit status 1, one line. */
#include "check.h"
#include "support/model_writer.h"

#include "dit/error.h"
#include "dit/weights.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int variants;

/* Opens path and checks the refusal; want is a phrase the message must contain. */
static void expect_fail(const char *label, const char *path, const char *want, int io_ok)
{
    weights *ws = NULL;
    err_clear();
    int st = weights_open(path, &ws);
    const char *m = err_msg();
    CHECK(st == REEL_E_FORMAT || st == REEL_E_UNSUPPORTED ||
              (io_ok && (st == REEL_E_IO || st == REEL_E_NOT_FOUND)),
          "%s: status %d (%s)", label, st, m);
    CHECK(ws == NULL, "%s: a weight set came back with a failure", label);
    CHECK(strstr(m, path) != NULL, "%s: message does not name %s: %s", label, path, m);
    CHECK(!want || strstr(m, want) != NULL, "%s: message lacks '%s': %s", label, want, m);
    CHECK(strchr(m, '\n') == NULL, "%s: message spans lines: %s", label, m);
    if (ws)
        weights_close(ws);
    variants++;
}

/* ---- byte helpers ------------------------------------------------------------------------ */

typedef struct blob {
    uint8_t *b;
    size_t n;
} blob;

static blob slurp(const char *path)
{
    blob r = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return r;
    fseek(f, 0, SEEK_END);
    r.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    r.b = malloc(r.n + 1);
    if (fread(r.b, 1, r.n, f) != r.n)
        r.n = 0;
    fclose(f);
    return r;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        CHECK(fwrite(b, 1, n, f) == n, "short write %s", path);
        fclose(f);
    }
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offset of the nth (from 0) occurrence of a 4-byte little-endian signature. */
static long find_sig(const blob *z, uint32_t sig, int nth)
{
    for (size_t i = 0; i + 4 <= z->n; i++)
        if (get32(z->b + i) == sig && nth-- == 0)
            return (long)i;
    return -1;
}

/* ---- safetensors ------------------------------------------------------------------------- */

static const char *st_write(const char *name, const char *header, size_t data_len)
{
    const char *path = check_path(name);
    size_t hl = strlen(header);
    blob b = {malloc(8 + hl + data_len + 1), 8 + hl + data_len};
    put64(b.b, hl);
    memcpy(b.b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        b.b[8 + hl + i] = (uint8_t)i;
    spit(path, b.b, b.n);
    free(b.b);
    return path;
}

#define ST_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define ST_B "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}"
#define ST_C "\"c\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[32,40]}"

static void test_safetensors(void)
{
    int before = variants;
    char good[600]; /* check_path returns a buffer that the next call reuses */
    snprintf(good, sizeof good, "%s", st_write("good.safetensors", "{" ST_A "," ST_B "," ST_C "}", 40));
    weights *ws = NULL;
    CHECK_OK(weights_open(good, &ws));
    CHECK(ws && weights_count(ws) == 3, "base file has 3 tensors");
    weights_close(ws);

    static const struct {
        const char *header;
        size_t data;
        const char *want;
    } cases[] = {
        {"[" ST_A "]", 40, "does not start with '{'"},
        {"{" ST_A "," ST_B, 40, "not valid JSON"},
        {"{" ST_A "," ST_B "," ST_C "} x", 40, "after the header JSON"},
        {"{" ST_A "," ST_B "," ST_C "}\n", 40, "after the header JSON"},
        {"{\"a\":5}", 0, "not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", 24, "missing 'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"x\":1}}", 24, "unknown field 'x'"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "given twice"},
        {"{\"a\":{\"dtype\":\"F17\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "unknown dtype 'F17'"},
        {"{\"a\":{\"dtype\":\"U16\",\"shape\":[12],\"data_offsets\":[0,24]}}", 24, "U16 is not supported"},
        {"{\"a\":{\"dtype\":4,\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "dtype is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}}", 24, "shape is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2,3],\"data_offsets\":[0,24]}}", 24, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5,3],\"data_offsets\":[0,24]}}", 24, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e999,3],\"data_offsets\":[0,24]}}", 24, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2,3],\"data_offsets\":[0,24]}}", 24, "6 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,4503599627370496],\"data_offsets\":[0,24]}}", 24, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24,48]}}", 24, "pair of non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,0]}}", 24, "run backwards"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 20, "past the data section"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, "give 24 bytes but data_offsets span 20"},
        {"{" ST_A ",\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}", 24, "overlaps"},
        {"{" ST_A ",\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[28,36]}}", 36, "unused bytes before tensor 'b'"},
        {"{" ST_A "," ST_B "}", 48, "16 bytes after the last tensor"},
        {"{" ST_A "," ST_A "}", 24, "appears twice"},
        {"{\"__metadata__\":\"x\"," ST_A "}", 24, "__metadata__ is not a JSON object"},
        {"{\"__metadata__\":{\"format\":1}," ST_A "}", 24, "value of 'format' is not a string"},
        {"{\"a\\nb\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a\\x0ab'"},
    };
    char name[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "bad%02zu.safetensors", i);
        expect_fail(name, st_write(name, cases[i].header, cases[i].data), cases[i].want, 0);
    }

    /* nesting deeper than the JSON parser allows */
    size_t depth = 3000;
    char *deep = malloc(2 * depth + 16);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"a\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    expect_fail("deep", st_write("deep.safetensors", deep, 0), "not valid JSON", 0);
    free(deep);

    /* header lengths: tiny file, past the end, absurd, zero */
    const char *path = check_path("len.safetensors");
    spit(path, "\x05\0\0", 3);
    expect_fail("3-byte file", path, "too short", 0);
    blob b = slurp(good);
    put64(b.b, b.n);
    spit(path, b.b, b.n);
    expect_fail("header past end", path, "runs past the end", 0);
    put64(b.b, 1ull << 40);
    spit(path, b.b, b.n);
    expect_fail("header too large", path, "exceeds", 0);
    put64(b.b, 0);
    spit(path, b.b, b.n);
    expect_fail("header length 0", path, "does not start with '{'", 0);
    free(b.b);

    /* every truncation of the valid file */
    b = slurp(good);
    path = check_path("trunc.safetensors");
    for (size_t n = 0; n < b.n; n++) {
        spit(path, b.b, n);
        expect_fail("truncated", path, NULL, 0);
    }
    free(b.b);
    printf("safetensors: %d malformed variants refused\n", variants - before);
    CHECK(variants - before >= 25, "only %d safetensors variants", variants - before);
}

/* ---- sharded index ----------------------------------------------------------------------- */

static void test_index(void)
{
    int before = variants;
    char dir[600];
    snprintf(dir, sizeof dir, "%s", check_path("shards"));
    mkdir(dir, 0755);
    static const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tw_tensor t[4] = {
        {"x.0", DT_F32, 1, {2}, v}, {"x.1", DT_F32, 1, {2}, v + 2},
        {"x.2", DT_F32, 1, {2}, v + 4}, {"x.3", DT_F32, 1, {2}, v + 6},
    };
    CHECK_OK(tw_write_sharded(dir, "m", t, 4, 2));
    char path[700], sub[700];
    snprintf(path, sizeof path, "%s/m.safetensors.index.json", dir);
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    CHECK(ws && weights_count(ws) == 4, "base index has 4 tensors");
    weights_close(ws);
    snprintf(sub, sizeof sub, "%s/adir.safetensors", dir);
    mkdir(sub, 0755);
    /* a third shard that repeats x.0, and a truncated shard */
    CHECK_OK(tw_write_sharded(dir, "dup", t, 2, 2));
    char extra[800];
    snprintf(extra, sizeof extra, "%s/trunc.safetensors", dir);
    spit(extra, "\x40\0\0\0\0\0\0\0{\"a\"", 12);

#define S1 "\"m-00001-of-00002.safetensors\""
#define S2 "\"m-00002-of-00002.safetensors\""
    static const struct {
        const char *text;
        const char *want;
        int io;
    } cases[] = {
        {"weight_map", "not valid JSON", 0},
        {"[1,2]", "not a JSON object", 0},
        {"{\"metadata\":{}}", "no \"weight_map\"", 0},
        {"{\"weight_map\":[]}", "\"weight_map\" is not an object", 0},
        {"{\"weight_map\":\"m.safetensors\"}", "\"weight_map\" is not an object", 0},
        {"{\"weight_map\":{}}", "is empty", 0},
        {"{\"weight_map\":{\"x.0\":5}}", "not a file name string", 0},
        {"{\"weight_map\":{\"x.0\":null}}", "not a file name string", 0},
        {"{\"weight_map\":{\"x.0\":\"../m-00001-of-00002.safetensors\"}}", "not a plain file name", 0},
        {"{\"weight_map\":{\"x.0\":\"\"}}", "not a plain file name", 0},
        {"{\"weight_map\":{\"x.0\":\"..\"}}", "not a plain file name", 0},
        {"{\"weight_map\":{\"x.0\":\"/etc/passwd\"}}", "not a plain file name", 0},
        {"{\"weight_map\":{\"x.0\":\"gone.safetensors\"}}", "gone.safetensors", 1},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.1\":" S1 ",\"x.2\":" S2 ",\"x.3\":" S2 ",\"x.9\":" S2 "}}", "'x.9' is missing", 0},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.2\":" S2 ",\"x.3\":" S2 "}}", "'x.1' of shard", 0},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.1\":" S2 ",\"x.2\":" S2 ",\"x.3\":" S2 "}}", "puts it elsewhere", 0},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.0\":" S1 ",\"x.1\":" S1 ",\"x.2\":" S2 ",\"x.3\":" S2 "}}", "appears twice in weight_map", 0},
        {"{\"metadata\":\"big\",\"weight_map\":{\"x.0\":" S1 "}}", "\"metadata\" is not an object", 0},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.1\":" S1 ",\"x.2\":" S2 ",\"x.3\":" S2 "}} trailing", "unexpected text after", 0},
        {"", "not valid JSON", 0},
        {"   \n ", "not valid JSON", 0},
        {"null", "not a JSON object", 0},
        {"{\"weight_map\":{\"x.0\":\"adir.safetensors\"}}", "not a regular file", 0},
        {"{\"weight_map\":{\"a\":\"trunc.safetensors\"}}", "trunc.safetensors", 0},
        {"{\"weight_map\":{\"x.0\":" S1 ",\"x.1\":" S1 ",\"x.2\":" S2 ",\"x.3\":" S2 ",\"dup\":\"dup-00001-of-00002.safetensors\"}}", "puts it elsewhere", 0},
        {"{\"weight_map\":{\"x.0\":\"m.safetensors.index.json\"}}", "shard named by the index", 0},
    };
    char name[64], file[800];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "bad%02zu.safetensors.index.json", i);
        snprintf(file, sizeof file, "%s/%s", dir, name);
        spit(file, cases[i].text, strlen(cases[i].text));
        expect_fail(name, file, cases[i].want, cases[i].io);
    }
    snprintf(file, sizeof file, "%s/nul.safetensors.index.json", dir);
    static const char nul_text[] = "{\"weight_map\":{\"x.0\":" S1 "}}\0";
    spit(file, nul_text, sizeof nul_text - 1);
    expect_fail("NUL byte", file, "NUL byte", 0);
    /* nesting deeper than the JSON parser allows */
    size_t depth = 3000, k = 0;
    char *deep = malloc(2 * depth + 64);
    k += (size_t)sprintf(deep, "{\"metadata\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    k += (size_t)sprintf(deep + k, ",\"weight_map\":{}}");
    snprintf(file, sizeof file, "%s/deep.safetensors.index.json", dir);
    spit(file, deep, k);
    free(deep);
    expect_fail("deep", file, "not valid JSON", 0);
#undef S1
#undef S2
    printf("index: %d malformed variants refused\n", variants - before);
    CHECK(variants - before >= 25, "only %d index variants", variants - before);
}

/* ---- PyTorch zip checkpoints: pickles ---------------------------------------------------- */

typedef struct pb {
    uint8_t b[65536];
    size_t n;
} pb;

static void pb_raw(pb *p, const void *s, size_t n)
{
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void pb_s(pb *p, const char *s) { pb_raw(p, s, strlen(s)); }
static void pb_u8(pb *p, unsigned v) { p->b[p->n++] = (uint8_t)v; }
static void pb_str(pb *p, const char *s)
{
    pb_u8(p, 'X');
    uint8_t len[4];
    put32(len, (uint32_t)strlen(s));
    pb_raw(p, len, 4);
    pb_s(p, s);
}
static void pb_int(pb *p, long long v)
{
    uint8_t b[4];
    pb_u8(p, 'J');
    put32(b, (uint32_t)(int32_t)v);
    pb_raw(p, b, 4);
}

/* {name: _rebuild_tensor_v2(storage(type, key, numel), offset, shape, stride, False, OrderedDict())}
 * with nargs of those six arguments (more are padded with None) and a pid of pid_len items. */
static void pb_tensor_dict(pb *p, const char *type, const char *key, long long numel, long long offset,
                           int nd, const long long *shape, int ns, const long long *stride, int nargs,
                           int pid_len)
{
    pb_raw(p, "\x80\x02}X\x01\0\0\0w", 9);
    pb_s(p, "ctorch._utils\n_rebuild_tensor_v2\n((");
    pb_str(p, "storage");
    pb_s(p, "ctorch\n");
    pb_s(p, type);
    pb_s(p, "\n");
    pb_str(p, key);
    if (pid_len >= 4)
        pb_str(p, "cpu");
    if (pid_len >= 5)
        pb_int(p, numel);
    pb_s(p, "tQ");
    if (nargs >= 2)
        pb_int(p, offset);
    if (nargs >= 3) {
        pb_u8(p, '(');
        for (int i = 0; i < nd; i++)
            pb_int(p, shape[i]);
        pb_u8(p, 't');
    }
    if (nargs >= 4) {
        pb_u8(p, '(');
        for (int i = 0; i < ns; i++)
            pb_int(p, stride[i]);
        pb_u8(p, 't');
    }
    if (nargs >= 5)
        pb_u8(p, 0x89);
    if (nargs >= 6)
        pb_s(p, "ccollections\nOrderedDict\n)R");
    for (int i = 6; i < nargs; i++)
        pb_u8(p, 'N');
    pb_s(p, "tRs.");
}

/* d(level) = {'a': d(level-1), 'b': d(level-1)}, shared through the memo: 2^level entries to walk */
static void pb_shared_dicts(pb *p, int level, int *memo)
{
    pb_u8(p, '}');
    int me = (*memo)++;
    pb_u8(p, 'q');
    pb_u8(p, (unsigned)me);
    if (level == 0)
        return;
    pb_u8(p, '(');
    pb_str(p, "a");
    int child = *memo;
    pb_shared_dicts(p, level - 1, memo);
    pb_str(p, "b");
    pb_u8(p, 'h');
    pb_u8(p, (unsigned)child);
    pb_u8(p, 'u');
}

static void pth_pickle_case(const char *label, const pb *p, int nstorage, const uint64_t *bytes,
                            const char *want)
{
    char name[64];
    snprintf(name, sizeof name, "pk%02d.pth", variants % 100);
    const char *path = check_path(name);
    CHECK_OK(tw_write_pth_raw(path, p->b, p->n, nstorage, bytes));
    expect_fail(label, path, want, 0);
}

static void test_pickles(void)
{
    static const struct {
        const char *label;
        const char *bytes;
        size_t len;
        const char *want;
    } raw[] = {
#define R(label, s, want) {label, s, sizeof s - 1, want}
        R("os.system", "\x80\x02" "cos\nsystem\nX\x02\0\0\0lsq\0\x85R.", "forbidden global 'os.system'"),
        R("eval", "\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93.", "forbidden global 'builtins.eval'"),
        R("INST", "\x80\x02(iposix\nsystem\n.", "INST"),
        R("OBJ", "\x80\x02(o.", "OBJ"),
        R("NEWOBJ", "\x80\x02)\x81.", "NEWOBJ"),
        R("EXT1", "\x80\x02\x82\x01.", "EXT1"),
        R("storage called", "\x80\x02" "ctorch\nFloatStorage\n)R.", "storage type called directly"),
        R("underflow", "\x80\x02s.", "stack underflow"),
        R("unset memo", "\x80\x02h\x05.", "never stored"),
        R("huge memo", "\x80\x02}r\xf0\xff\xff\xff.", "memo index out of range"),
        R("no STOP", "\x80\x02}", "without STOP"),
        R("after STOP", "\x80\x02}.xx", "after the pickle's STOP"),
        R("self loop", "\x80\x02}q\0X\x01\0\0\0ah\0s.", "nested deeper than 32"),
        R("list root", "\x80\x02].", "not a dict of tensors"),
        R("GLOBAL line", "\x80\x02" "cos", "newline-terminated"),
        R("protocol 6", "\x80\x06}.", "protocol"),
        R("LONG1 9", "\x80\x02\x8a\x09\1\2\3\4\5\6\7\x08\x09.", "wider than 64 bits"),
        R("frame", "\x80\x04\x95\xff\0\0\0\0\0\0\0}.", "frame runs past"),
        R("0xff", "\x80\x02\xff.", "forbidden opcode 0xff"),
        R("SETITEMS list", "\x80\x02](K\x01K\x02u.", "items added to a list"),
        R("BUILD list", "\x80\x02]}b.", "BUILD on something other than a dict"),
        R("two values", "\x80\x02}}.", "more than one value"),
        R("open MARK", "\x80\x02(}.", "unclosed MARK"),
        R("REDUCE str", "\x80\x02X\x01\0\0\0a)R.", "not a known callable"),
        R("OrderedDict args", "\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R.", "OrderedDict called with arguments"),
        R("PERSID text", "\x80\x02P0\n.", "PERSID"),
        R("persid str", "\x80\x02X\x01\0\0\0aQ.", "not a 5-tuple"),
        R("EMPTY_SET", "\x80\x04\x8f.", "EMPTY_SET"),
#undef R
    };
    pb p;
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        p.n = 0;
        pb_raw(&p, raw[i].bytes, raw[i].len);
        pth_pickle_case(raw[i].label, &p, 0, NULL, raw[i].want);
    }
    p.n = 0;
    pb_s(&p, "\x80\x02");
    for (int i = 0; i < 5000; i++)
        pb_u8(&p, '(');
    pth_pickle_case("MARK depth", &p, 0, NULL, "MARKs nested deeper");

    p.n = 0;
    int memo = 0;
    pb_s(&p, "\x80\x02");
    pb_shared_dicts(&p, 30, &memo);
    pb_u8(&p, '.');
    pth_pickle_case("shared dicts", &p, 0, NULL, "dict entries to walk");

    uint64_t b24 = 24, b20 = 20;
    const long long s10[1] = {10}, s1[1] = {1}, s32[2] = {3, 2}, st15[2] = {1, 5}, s23[2] = {2, 3},
                    st31[2] = {3, 1}, s6[6] = {1, 1, 1, 1, 2, 3}, st6[6] = {6, 6, 6, 6, 3, 1};
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 1, s10, 1, s1, 6, 5);
    pth_pickle_case("view past storage", &p, 1, &b24, "reaches past its storage");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s32, 2, st15, 6, 5);
    pth_pickle_case("stride outside", &p, 1, &b24, "reaches past its storage");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 1, 2, s23, 2, st31, 6, 5);
    pth_pickle_case("offset outside", &p, 1, &b24, "reaches past its storage");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 2, st31, 6, 5);
    pth_pickle_case("record bytes", &p, 1, &b20, "declares 6 f32 elements but holds 20 bytes");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "7", 6, 0, 2, s23, 2, st31, 6, 5);
    pth_pickle_case("missing record", &p, 1, &b24, "no record data/7");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 2, st31, 6, 4);
    pth_pickle_case("pid 4-tuple", &p, 1, &b24, "not a 5-tuple");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 2, st31, 5, 5);
    pth_pickle_case("5 args", &p, 1, &b24, "takes 6 or 7 arguments");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 1, st31, 6, 5);
    pth_pickle_case("stride length", &p, 1, &b24, "differ in length");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 6, s6, 6, st6, 6, 5);
    pth_pickle_case("6 dims", &p, 1, &b24, "6 dimensions");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, -1, 2, s23, 2, st31, 6, 5);
    pth_pickle_case("negative offset", &p, 1, &b24, "storage offset is not a non-negative int");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 2, (const long long[2]){-3, 1}, 6, 5);
    pth_pickle_case("negative stride", &p, 1, &b24, "stride[0] is not a non-negative int");
    p.n = 0;
    pb_tensor_dict(&p, "ComplexFloatStorage", "0", 3, 0, 1, (const long long[1]){3}, 1, s1, 6, 5);
    pth_pickle_case("complex", &p, 1, &b24, "forbidden global 'torch.ComplexFloatStorage'");
    p.n = 0;
    pb_tensor_dict(&p, "FloatStorage", "0", 6, 0, 2, s23, 2, st31, 8, 5);
    pth_pickle_case("8 args", &p, 1, &b24, "takes 6 or 7 arguments");
}

/* ---- PyTorch zip checkpoints: the archive ------------------------------------------------ */

enum { E_PKL, E_BYTEORDER, E_DATA0, E_DATA1, E_VERSION, E_SERIAL };

static void zip_case(const char *label, const blob *base, void (*mutate)(blob *), const char *want)
{
    blob z = {malloc(base->n + 16), base->n};
    memcpy(z.b, base->b, base->n);
    mutate(&z);
    char name[64];
    snprintf(name, sizeof name, "zip%02d.pth", variants % 100);
    const char *path = check_path(name);
    spit(path, z.b, z.n);
    free(z.b);
    expect_fail(label, path, want, 0);
}

static uint8_t *cdh(blob *z, int i) { return z->b + find_sig(z, 0x02014b50u, i); }
static uint8_t *lfh(blob *z, int i) { return z->b + find_sig(z, 0x04034b50u, i); }
static uint8_t *eocd(blob *z) { return z->b + z->n - 22; }
static uint8_t *z64rec(blob *z) { return z->b + z->n - 22 - 20 - 56; }

static void m_count(blob *z)
{
    put16(eocd(z) + 8, 200);
    put16(eocd(z) + 10, 200);
    put64(z64rec(z) + 24, 200);
    put64(z64rec(z) + 32, 200);
}
static void m_cd_offset(blob *z)
{
    put32(eocd(z) + 16, (uint32_t)z->n);
    put64(z64rec(z) + 48, z->n);
}
static void m_method(blob *z) { put16(cdh(z, E_DATA0) + 10, 8); }
static void m_encrypted(blob *z) { cdh(z, E_DATA0)[8] |= 1; }
static void m_local_sig(blob *z) { lfh(z, E_DATA0)[3] = 9; }
static void m_local_name(blob *z)
{
    uint8_t *l = lfh(z, E_DATA0);
    l[30 + (l[26] | l[27] << 8) - 1] = '9';
}
static void m_name_len(blob *z) { put16(cdh(z, E_DATA0) + 28, 60000); }
static void m_lho(blob *z) { put32(cdh(z, E_DATA0) + 42, get32(eocd(z) + 16)); }
static void m_dup_name(blob *z) /* data/1 renamed data/0, in both headers */
{
    uint8_t *c = cdh(z, E_DATA1), *l = lfh(z, E_DATA1);
    c[46 + (c[28] | c[29] << 8) - 1] = '0';
    l[30 + (l[26] | l[27] << 8) - 1] = '0';
}
static void m_overlap(blob *z)
{
    uint8_t *c = cdh(z, E_DATA0);
    put32(c + 20, get32(c + 20) + 200);
    put32(c + 24, get32(c + 24) + 200);
}
static void m_csize(blob *z) { put32(cdh(z, E_DATA0) + 20, get32(cdh(z, E_DATA0) + 20) + 1); }
static void m_locator(blob *z) { put64(z->b + z->n - 22 - 20 + 8, 0xffffffffffull); }
static void m_disk(blob *z) { put16(eocd(z) + 4, 1); }
static void m_comment(blob *z) { put16(eocd(z) + 20, 5); }
static void m_disagree(blob *z) { put16(eocd(z) + 10, 5); }
static void m_saturated(blob *z)
{
    put32(cdh(z, E_DATA0) + 20, 0xffffffffu);
    put32(cdh(z, E_DATA0) + 24, 0xffffffffu);
}
static void m_no_folder(blob *z)
{
    uint8_t *c = cdh(z, E_PKL), *l = lfh(z, E_PKL);
    *(uint8_t *)memchr(c + 46, '/', 20) = '_';
    *(uint8_t *)memchr(l + 30, '/', 20) = '_';
}
static void m_no_pkl(blob *z)
{
    uint8_t *c = cdh(z, E_PKL), *l = lfh(z, E_PKL);
    c[46 + (c[28] | c[29] << 8) - 1] = 'X';
    l[30 + (l[26] | l[27] << 8) - 1] = 'X';
}
static void m_byteorder(blob *z)
{
    uint8_t *l = lfh(z, E_BYTEORDER);
    memcpy(l + 30 + (l[26] | l[27] << 8) + (l[28] | l[29] << 8), "middle", 6);
}
static void m_local_method(blob *z) { put16(lfh(z, E_DATA0) + 8, 8); }
static void m_z64_sig(blob *z) { z64rec(z)[0] = 'X'; }
static void m_cd_sig(blob *z) { cdh(z, E_DATA1)[2] = 'X'; }
static void m_into_cd(blob *z)
{
    put32(cdh(z, E_SERIAL) + 20, 100000);
    put32(cdh(z, E_SERIAL) + 24, 100000);
}
static void m_cd_size(blob *z)
{
    put32(eocd(z) + 12, get32(eocd(z) + 12) - 1);
    put64(z64rec(z) + 40, get32(eocd(z) + 12));
}
static void m_disk_entry(blob *z) { put16(cdh(z, E_DATA0) + 34, 3); }

static void test_zip(void)
{
    static const float v[6] = {1, 2, 3, 4, 5, 6};
    tw_tensor t[2] = {{"w", DT_F32, 2, {2, 2}, v}, {"b", DT_F32, 1, {2}, v + 4}};
    char good[600];
    snprintf(good, sizeof good, "%s", check_path("base.pth"));
    CHECK_OK(tw_write_pth(good, t, 2, NULL));
    weights *ws = NULL;
    CHECK_OK(weights_open(good, &ws));
    CHECK(ws && weights_count(ws) == 2, "base checkpoint has 2 tensors");
    weights_close(ws);
    blob base = slurp(good);

    static const struct {
        const char *label;
        void (*mutate)(blob *);
        const char *want;
    } cases[] = {
        {"entry count", m_count, "cannot fit"},
        {"directory offset", m_cd_offset, "does not end where the end record starts"},
        {"deflated", m_method, "compressed (method 8)"},
        {"encrypted", m_encrypted, "encrypted"},
        {"local signature", m_local_sig, "no local header"},
        {"local name", m_local_name, "local header names another file"},
        {"name length", m_name_len, "runs past the directory"},
        {"local offset", m_lho, "outside the archive data"},
        {"duplicate name", m_dup_name, "appears twice"},
        {"overlap", m_overlap, "overlaps the entry before it"},
        {"sizes differ", m_csize, "compressed size"},
        {"zip64 locator", m_locator, "zip64 end record offset"},
        {"disk number", m_disk, "multi-disk"},
        {"comment length", m_comment, "no zip end-of-central-directory record"},
        {"count disagrees", m_disagree, "disagree"},
        {"saturated sizes", m_saturated, "zip64 extra field that is missing"},
        {"no folder", m_no_folder, "not inside a folder"},
        {"no data.pkl", m_no_pkl, "base/data.pkl"},
        {"byteorder", m_byteorder, "neither 'little' nor 'big'"},
        {"local method", m_local_method, "disagrees with the central directory"},
        {"zip64 signature", m_z64_sig, "no zip64 end record"},
        {"directory signature", m_cd_sig, "bad central directory entry"},
        {"into directory", m_into_cd, "runs into the central directory"},
        {"directory size", m_cd_size, "does not end where the end record starts"},
        {"entry disk", m_disk_entry, "on disk 3"},
    };
    int before = variants;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        zip_case(cases[i].label, &base, cases[i].mutate, cases[i].want);

    const char *path = check_path("other.pth");
    spit(path, "hello, not a checkpoint", 23);
    expect_fail("text", path, "no zip signature", 0);
    spit(path, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    expect_fail("legacy", path, "legacy torch.save format", 0);
    spit(path, "PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22);
    expect_fail("empty zip", path, "empty zip archive", 0);

    /* truncations: every 7th length, and each of the last 120 */
    for (size_t n = 0; n < base.n; n += (n + 120 < base.n ? 7 : 1)) {
        spit(path, base.b, n);
        expect_fail("truncated", path, NULL, 0);
    }
    free(base.b);
    printf("pth archive: %d malformed variants refused\n", variants - before);
}

/* ---- random corruption of valid files: any outcome but a crash, with a named failure ---- */

static void corrupt_runs(const char *good, int runs)
{
    blob base = slurp(good);
    const char *ext = strrchr(good, '.');
    char name[64];
    snprintf(name, sizeof name, "corrupt%s", ext);
    const char *path = check_path(name);
    int refused = 0;
    for (int r = 0; r < runs; r++) {
        blob z = {malloc(base.n), base.n};
        memcpy(z.b, base.b, base.n);
        int flips = 1 + (int)(check_rand_u64() % 4);
        for (int f = 0; f < flips; f++)
            z.b[check_rand_u64() % z.n] = (uint8_t)check_rand_u64();
        spit(path, z.b, z.n);
        free(z.b);
        weights *ws = NULL;
        int st = weights_open(path, &ws);
        if (st == REEL_OK) { /* a corruption inside tensor data, or a harmless byte: read it all */
            for (int i = 0; i < weights_count(ws); i++) {
                const weight_entry *e = weights_at(ws, i);
                float *buf = malloc(((size_t)tensor_numel(&e->t) + 1) * sizeof *buf);
                int rs = weights_read_f32(e, buf);
                CHECK(rs == REEL_OK || rs == REEL_E_UNSUPPORTED, "read after corruption: %s", err_msg());
                free(buf);
            }
            weights_close(ws);
        } else {
            refused++;
            CHECK(st < 0 && strstr(err_msg(), path) && !strchr(err_msg(), '\n'),
                  "corruption %d: status %d, message %s", r, st, err_msg());
        }
    }
    printf("%s: %d random corruptions, %d refused\n", good, runs, refused);
    free(base.b);
}

/* ---- reel info ---------------------------------------------------------------------------- */

static void test_cli(const char *bad, const char *good)
{
    const char *bin = getenv("REEL_BIN");
    if (!bin || !*bin) {
        printf("REEL_BIN not set: reel info not run\n");
        return;
    }
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' info '%s' 2>&1", bin, bad);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen %s", cmd);
    if (!p)
        return;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int status = pclose(p);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "reel info on a bad file: status %d", status);
    char *nl = strchr(out, '\n');
    CHECK(nl && nl[1] == 0, "reel info printed more than one line: %s", out);
    CHECK(!strncmp(out, "reel info: ", 11) && strstr(out, bad), "reel info message: %s", out);

    snprintf(cmd, sizeof cmd, "'%s' info --json '%s' >/dev/null 2>&1", bin, good);
    status = system(cmd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reel info --json on a good file: %d", status);
    snprintf(cmd, sizeof cmd, "'%s' info >/dev/null 2>&1", bin);
    status = system(cmd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "reel info without a file: %d", status);
}

int main(void)
{
    check_seed("test_loader_malformed");
    test_safetensors();
    test_index();
    int before = variants;
    test_pickles();
    test_zip();
    printf("pth: %d malformed variants refused in all\n", variants - before);
    CHECK(variants - before >= 25, "only %d pth variants", variants - before);
    char st_good[600], pth_good[600], st_bad[600];
    snprintf(st_good, sizeof st_good, "%s", check_path("good.safetensors"));
    snprintf(pth_good, sizeof pth_good, "%s", check_path("base.pth"));
    snprintf(st_bad, sizeof st_bad, "%s", check_path("bad05.safetensors"));
    corrupt_runs(st_good, 400);
    corrupt_runs(pth_good, 400);
    test_cli(st_bad, pth_good);
    return check_done();
}

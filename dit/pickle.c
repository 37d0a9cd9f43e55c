#include "pickle.h"

#include "error.h"
#include "loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes as named in CPython's Lib/pickletools.py. Only those handled in pk_step are accepted;
 * the rest are listed so that a refusal can say which opcode it met. */
static const struct {
    uint8_t op;
    const char *name;
} pk_opnames[] = {
    {'(', "MARK"},          {'.', "STOP"},          {'0', "POP"},           {'1', "POP_MARK"},
    {'2', "DUP"},           {'F', "FLOAT"},         {'I', "INT"},           {'J', "BININT"},
    {'K', "BININT1"},       {'L', "LONG"},          {'M', "BININT2"},       {'N', "NONE"},
    {'P', "PERSID"},        {'Q', "BINPERSID"},     {'R', "REDUCE"},        {'S', "STRING"},
    {'T', "BINSTRING"},     {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"},     {'X', "BINUNICODE"},
    {'a', "APPEND"},        {'b', "BUILD"},         {'c', "GLOBAL"},        {'d', "DICT"},
    {'}', "EMPTY_DICT"},    {'e', "APPENDS"},       {'g', "GET"},           {'h', "BINGET"},
    {'i', "INST"},          {'j', "LONG_BINGET"},   {'l', "LIST"},          {']', "EMPTY_LIST"},
    {'o', "OBJ"},           {'p', "PUT"},           {'q', "BINPUT"},        {'r', "LONG_BINPUT"},
    {'s', "SETITEM"},       {'t', "TUPLE"},         {')', "EMPTY_TUPLE"},   {'u', "SETITEMS"},
    {'G', "BINFLOAT"},      {0x80, "PROTO"},        {0x81, "NEWOBJ"},       {0x82, "EXT1"},
    {0x83, "EXT2"},         {0x84, "EXT4"},         {0x85, "TUPLE1"},       {0x86, "TUPLE2"},
    {0x87, "TUPLE3"},       {0x88, "NEWTRUE"},      {0x89, "NEWFALSE"},     {0x8a, "LONG1"},
    {0x8b, "LONG4"},        {'B', "BINBYTES"},      {'C', "SHORT_BINBYTES"}, {0x8c, "SHORT_BINUNICODE"},
    {0x8d, "BINUNICODE8"},  {0x8e, "BINBYTES8"},    {0x8f, "EMPTY_SET"},    {0x90, "ADDITEMS"},
    {0x91, "FROZENSET"},    {0x92, "NEWOBJ_EX"},    {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"},
    {0x95, "FRAME"},        {0x96, "BYTEARRAY8"},   {0x97, "NEXT_BUFFER"},  {0x98, "READONLY_BUFFER"},
};

static const char *pk_opname(uint8_t op)
{
    for (size_t i = 0; i < sizeof pk_opnames / sizeof pk_opnames[0]; i++)
        if (pk_opnames[i].op == op)
            return pk_opnames[i].name;
    return "unknown opcode";
}

static const struct {
    const char *name;
    enum dtype dt;
} pk_storages[] = {
    {"FloatStorage", DT_F32},       {"HalfStorage", DT_F16},
    {"BFloat16Storage", DT_BF16},   {"DoubleStorage", DT_F64},
    {"Float8_e4m3fnStorage", DT_F8_E4M3}, {"Float8_e5m2Storage", DT_F8_E5M2},
    {"LongStorage", DT_I64},        {"IntStorage", DT_I32},
    {"ShortStorage", DT_I16},       {"CharStorage", DT_I8},
    {"ByteStorage", DT_U8},         {"BoolStorage", DT_BOOL},
};

typedef struct pk_vm {
    const char *where;
    const uint8_t *d;
    size_t len, pos, op_at; /* op_at: offset of the opcode being run, for messages */
    pk_doc *doc;
    int *stack;
    int sp, scap;
    int marks[PK_MAX_MARKS];
    int mp;
    int *memo; /* value index + 1; 0 = unset */
    size_t memo_cap, memo_count, memo_max;
    int stopped;
} pk_vm;

static int pk_fail(pk_vm *vm, int status, const char *what)
{
    return err_set(status, "%s: %s (opcode %s at byte %zu)", vm->where, what,
                   pk_opname(vm->d[vm->op_at]), vm->op_at);
}

static const char *pk_kind_name(enum pk_kind k)
{
    static const char *names[] = {"None", "bool",   "int",      "float",   "str",   "tuple",
                                  "list", "dict",   "callable", "storage", "tensor"};
    return names[k];
}

/* ---- values ------------------------------------------------------------------------------ */

static int pk_new(pk_vm *vm, enum pk_kind kind)
{
    pk_doc *doc = vm->doc;
    if (doc->n >= PK_MAX_VALUES)
        return pk_fail(vm, REEL_E_UNSUPPORTED, "more objects than the unpickler allows");
    if (doc->n == doc->cap) {
        int cap = doc->cap ? doc->cap * 2 : 256;
        pk_value *v = realloc(doc->v, (size_t)cap * sizeof *v);
        if (!v)
            return err_set(REEL_E_NOMEM, "%s: out of memory", vm->where);
        doc->v = v;
        doc->cap = cap;
    }
    memset(&doc->v[doc->n], 0, sizeof doc->v[doc->n]);
    doc->v[doc->n].kind = kind;
    return doc->n++;
}

static int pk_seq_add(pk_vm *vm, int seq, int item)
{
    pk_value *s = &vm->doc->v[seq];
    if (s->u.seq.n == s->u.seq.cap) {
        if (s->u.seq.cap >= PK_MAX_VALUES)
            return pk_fail(vm, REEL_E_UNSUPPORTED, "container larger than the unpickler allows");
        int cap = s->u.seq.cap ? s->u.seq.cap * 2 : 4;
        int *items = realloc(s->u.seq.items, (size_t)cap * sizeof *items);
        if (!items)
            return err_set(REEL_E_NOMEM, "%s: out of memory", vm->where);
        s->u.seq.items = items;
        s->u.seq.cap = cap;
    }
    s->u.seq.items[s->u.seq.n++] = item;
    return REEL_OK;
}

/* ---- stack ------------------------------------------------------------------------------- */

static int pk_push(pk_vm *vm, int v)
{
    if (v < 0)
        return v;
    if (vm->sp == vm->scap) {
        int cap = vm->scap ? vm->scap * 2 : 256;
        int *s = realloc(vm->stack, (size_t)cap * sizeof *s);
        if (!s)
            return err_set(REEL_E_NOMEM, "%s: out of memory", vm->where);
        vm->stack = s;
        vm->scap = cap;
    }
    vm->stack[vm->sp++] = v;
    return REEL_OK;
}

/* Values above the innermost MARK: ops other than the mark-consuming ones may not reach below. */
static int pk_avail(const pk_vm *vm) { return vm->sp - (vm->mp ? vm->marks[vm->mp - 1] : 0); }

static int pk_pop(pk_vm *vm, int *v)
{
    if (pk_avail(vm) < 1)
        return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
    *v = vm->stack[--vm->sp];
    return REEL_OK;
}

static int pk_top(pk_vm *vm, int *v)
{
    if (pk_avail(vm) < 1)
        return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
    *v = vm->stack[vm->sp - 1];
    return REEL_OK;
}

/* Start of the values pushed since the innermost MARK; the mark is consumed. */
static int pk_pop_mark(pk_vm *vm, int *start)
{
    if (vm->mp == 0)
        return pk_fail(vm, REEL_E_FORMAT, "no MARK to close");
    *start = vm->marks[--vm->mp];
    return REEL_OK;
}

/* ---- reading operands -------------------------------------------------------------------- */

static int pk_need(pk_vm *vm, size_t n, const uint8_t **p)
{
    if (vm->len - vm->pos < n)
        return pk_fail(vm, REEL_E_FORMAT, "operand runs past the end of the pickle");
    *p = vm->d + vm->pos;
    vm->pos += n;
    return REEL_OK;
}

static int pk_push_int(pk_vm *vm, int64_t x)
{
    int v = pk_new(vm, PK_INT);
    if (v >= 0)
        vm->doc->v[v].u.i = x;
    return pk_push(vm, v);
}

static int pk_push_str(pk_vm *vm, size_t len)
{
    const uint8_t *p = NULL;
    TRY(pk_need(vm, len, &p));
    int v = pk_new(vm, PK_STR);
    if (v >= 0) {
        vm->doc->v[v].u.str.s = (const char *)p;
        vm->doc->v[v].u.str.len = (uint32_t)len;
    }
    return pk_push(vm, v);
}

/* ---- memo -------------------------------------------------------------------------------- */

static int pk_memo_put(pk_vm *vm, uint64_t idx)
{
    if (idx >= vm->memo_max)
        return pk_fail(vm, REEL_E_FORMAT, "memo index out of range");
    int v = 0;
    TRY(pk_top(vm, &v));
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 256;
        while (cap <= idx)
            cap *= 2;
        int *m = realloc(vm->memo, cap * sizeof *m);
        if (!m)
            return err_set(REEL_E_NOMEM, "%s: out of memory", vm->where);
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = cap;
    }
    if (!vm->memo[idx])
        vm->memo_count++;
    vm->memo[idx] = v + 1;
    return REEL_OK;
}

static int pk_memo_get(pk_vm *vm, uint64_t idx)
{
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return pk_fail(vm, REEL_E_FORMAT, "memo index was never stored");
    return pk_push(vm, vm->memo[idx] - 1);
}

/* ---- globals ----------------------------------------------------------------------------- */

static int pk_global(pk_vm *vm, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    int g = -1;
    enum dtype dt = DT_COUNT;
#define PK_IS(s, l, lit) ((l) == sizeof(lit) - 1 && !memcmp((s), (lit), (l)))
    if (PK_IS(mod, mlen, "collections") && PK_IS(name, nlen, "OrderedDict"))
        g = PKG_ORDERED_DICT;
    else if (PK_IS(mod, mlen, "torch._utils") && PK_IS(name, nlen, "_rebuild_tensor_v2"))
        g = PKG_REBUILD_TENSOR_V2;
    else if (PK_IS(mod, mlen, "torch._utils") && PK_IS(name, nlen, "_rebuild_parameter"))
        g = PKG_REBUILD_PARAMETER;
    else if (PK_IS(mod, mlen, "torch"))
        for (size_t i = 0; i < sizeof pk_storages / sizeof pk_storages[0]; i++)
            if (nlen == strlen(pk_storages[i].name) && !memcmp(name, pk_storages[i].name, nlen)) {
                g = PKG_STORAGE_TYPE;
                dt = pk_storages[i].dt;
            }
#undef PK_IS
    if (g < 0) {
        char qm[96], qn[96], msg[256];
        snprintf(msg, sizeof msg, "forbidden global '%s.%s'", ld_printable(mod, mlen, qm, sizeof qm),
                 ld_printable(name, nlen, qn, sizeof qn));
        return pk_fail(vm, REEL_E_FORMAT, msg);
    }
    int v = pk_new(vm, PK_GLOBAL);
    if (v >= 0) {
        vm->doc->v[v].u.global.g = (enum pk_global)g;
        vm->doc->v[v].u.global.dtype = dt;
    }
    return pk_push(vm, v);
}

/* GLOBAL's operands are two newline-terminated lines: module, then name. */
static int pk_read_line(pk_vm *vm, const char **s, size_t *n)
{
    size_t max = vm->len - vm->pos < 256 ? vm->len - vm->pos : 256;
    const uint8_t *start = vm->d + vm->pos, *nl = memchr(start, '\n', max);
    if (!nl)
        return pk_fail(vm, REEL_E_FORMAT, "GLOBAL name is not a short newline-terminated line");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return REEL_OK;
}

/* ---- callables --------------------------------------------------------------------------- */

static const pk_value *pk_val(pk_vm *vm, int i) { return &vm->doc->v[i]; }

static int pk_int_tuple(pk_vm *vm, int t, int64_t *out, int *n, const char *what)
{
    const pk_value *v = pk_val(vm, t);
    char msg[128];
    if (v->kind != PK_TUPLE) {
        snprintf(msg, sizeof msg, "tensor %s is a %s, not a tuple", what, pk_kind_name(v->kind));
        return pk_fail(vm, REEL_E_FORMAT, msg);
    }
    if (v->u.seq.n > TENSOR_MAX_DIMS) {
        snprintf(msg, sizeof msg, "tensor with %d dimensions (reel handles up to %d)", v->u.seq.n,
                 TENSOR_MAX_DIMS);
        return pk_fail(vm, REEL_E_UNSUPPORTED, msg);
    }
    for (int i = 0; i < v->u.seq.n; i++) {
        const pk_value *e = pk_val(vm, v->u.seq.items[i]);
        if (e->kind != PK_INT || e->u.i < 0) {
            snprintf(msg, sizeof msg, "tensor %s[%d] is not a non-negative int", what, i);
            return pk_fail(vm, REEL_E_FORMAT, msg);
        }
        out[i] = e->u.i;
    }
    *n = v->u.seq.n;
    return REEL_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static int pk_rebuild_tensor(pk_vm *vm, const pk_value *args)
{
    int n = args->u.seq.n;
    if (n != 6 && n != 7)
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments");
    const int *a = args->u.seq.items;
    if (pk_val(vm, a[0])->kind != PK_STORAGE)
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2: first argument is not a storage");
    if (pk_val(vm, a[1])->kind != PK_INT || pk_val(vm, a[1])->u.i < 0)
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2: storage offset is not a non-negative int");
    if (pk_val(vm, a[4])->kind != PK_BOOL)
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2: requires_grad is not a bool");
    if (pk_val(vm, a[5])->kind != PK_DICT || (n == 7 && pk_val(vm, a[6])->kind != PK_DICT &&
                                              pk_val(vm, a[6])->kind != PK_NONE))
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2: hooks or metadata is not a dict");
    int64_t shape[TENSOR_MAX_DIMS], stride[TENSOR_MAX_DIMS];
    int nd, ns;
    TRY(pk_int_tuple(vm, a[2], shape, &nd, "size"));
    TRY(pk_int_tuple(vm, a[3], stride, &ns, "stride"));
    if (nd != ns)
        return pk_fail(vm, REEL_E_FORMAT, "_rebuild_tensor_v2: size and stride differ in length");
    int storage = a[0];
    int64_t offset = pk_val(vm, a[1])->u.i;
    int v = pk_new(vm, PK_TENSOR);
    if (v < 0)
        return v;
    pk_value *t = &vm->doc->v[v];
    t->u.tensor.storage = storage;
    t->u.tensor.offset = offset;
    t->u.tensor.ndim = nd;
    memcpy(t->u.tensor.shape, shape, sizeof shape);
    memcpy(t->u.tensor.stride, stride, sizeof stride);
    return pk_push(vm, v);
}

static int pk_reduce(pk_vm *vm)
{
    int args_i = 0, fn_i = 0;
    TRY(pk_pop(vm, &args_i));
    TRY(pk_pop(vm, &fn_i));
    const pk_value *fn = pk_val(vm, fn_i), *args = pk_val(vm, args_i);
    if (fn->kind != PK_GLOBAL)
        return pk_fail(vm, REEL_E_FORMAT, "call of something that is not a known callable");
    if (args->kind != PK_TUPLE)
        return pk_fail(vm, REEL_E_FORMAT, "call arguments are not a tuple");
    switch (fn->u.global.g) {
    case PKG_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return pk_fail(vm, REEL_E_FORMAT, "OrderedDict called with arguments");
        return pk_push(vm, pk_new(vm, PK_DICT));
    case PKG_REBUILD_TENSOR_V2:
        return pk_rebuild_tensor(vm, args);
    case PKG_REBUILD_PARAMETER:
        if (args->u.seq.n != 3 || pk_val(vm, args->u.seq.items[0])->kind != PK_TENSOR)
            return pk_fail(vm, REEL_E_FORMAT, "_rebuild_parameter takes (tensor, requires_grad, hooks)");
        return pk_push(vm, args->u.seq.items[0]);
    case PKG_STORAGE_TYPE:
        break;
    }
    return pk_fail(vm, REEL_E_FORMAT, "storage type called directly (outside a persistent id)");
}

/* BINPERSID: ('storage', torch.<T>Storage, key, location, numel), as torch.save writes it. */
static int pk_persid(pk_vm *vm)
{
    int pid_i = 0;
    TRY(pk_pop(vm, &pid_i));
    const pk_value *pid = pk_val(vm, pid_i);
    if (pid->kind != PK_TUPLE || pid->u.seq.n != 5)
        return pk_fail(vm, REEL_E_FORMAT, "persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    const int *a = pid->u.seq.items;
    const pk_value *tag = pk_val(vm, a[0]), *type = pk_val(vm, a[1]), *key = pk_val(vm, a[2]),
                   *loc = pk_val(vm, a[3]), *numel = pk_val(vm, a[4]);
    if (tag->kind != PK_STR || tag->u.str.len != 7 || memcmp(tag->u.str.s, "storage", 7))
        return pk_fail(vm, REEL_E_FORMAT, "persistent id does not start with 'storage'");
    if (type->kind != PK_GLOBAL || type->u.global.g != PKG_STORAGE_TYPE)
        return pk_fail(vm, REEL_E_FORMAT, "persistent id names no storage type");
    if (key->kind != PK_STR || key->u.str.len == 0 || loc->kind != PK_STR)
        return pk_fail(vm, REEL_E_FORMAT, "persistent id key or location is not a string");
    if (numel->kind != PK_INT || numel->u.i < 0)
        return pk_fail(vm, REEL_E_FORMAT, "persistent id element count is not a non-negative int");
    enum dtype dt = type->u.global.dtype;
    const char *ks = key->u.str.s;
    uint32_t kl = key->u.str.len;
    int64_t count = numel->u.i;
    int v = pk_new(vm, PK_STORAGE);
    if (v >= 0) {
        pk_value *s = &vm->doc->v[v];
        s->u.storage.dtype = dt;
        s->u.storage.key = ks;
        s->u.storage.key_len = kl;
        s->u.storage.numel = count;
    }
    return pk_push(vm, v);
}

/* ---- containers -------------------------------------------------------------------------- */

static int pk_make_tuple(pk_vm *vm, int start)
{
    int t = pk_new(vm, PK_TUPLE);
    if (t < 0)
        return t;
    for (int i = start; i < vm->sp; i++)
        TRY(pk_seq_add(vm, t, vm->stack[i]));
    vm->sp = start;
    return pk_push(vm, t);
}

static int pk_tuple_n(pk_vm *vm, int n)
{
    if (pk_avail(vm) < n)
        return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
    return pk_make_tuple(vm, vm->sp - n);
}

/* Moves stack[start..sp) into the dict or list just below start. */
static int pk_fill(pk_vm *vm, int start, enum pk_kind want)
{
    int count = vm->sp - start;
    if (start < 1 || (vm->mp && start - 1 < vm->marks[vm->mp - 1]))
        return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
    int target = vm->stack[start - 1];
    if (pk_val(vm, target)->kind != want) {
        char msg[96];
        snprintf(msg, sizeof msg, "items added to a %s", pk_kind_name(pk_val(vm, target)->kind));
        return pk_fail(vm, REEL_E_FORMAT, msg);
    }
    if (want == PK_DICT && count % 2)
        return pk_fail(vm, REEL_E_FORMAT, "odd number of values for key/value pairs");
    for (int i = start; i < vm->sp; i++)
        TRY(pk_seq_add(vm, target, vm->stack[i]));
    vm->sp = start;
    return REEL_OK;
}

/* ---- the machine ------------------------------------------------------------------------- */

static int pk_step(pk_vm *vm)
{
    const uint8_t *p = NULL;
    vm->op_at = vm->pos;
    uint8_t op = vm->d[vm->pos++];
    int a = 0, b = 0, start = 0;
    switch (op) {
    case 0x80: /* PROTO */
        TRY(pk_need(vm, 1, &p));
        if (p[0] < 2 || p[0] > 5)
            return pk_fail(vm, REEL_E_UNSUPPORTED, "pickle protocol other than 2 to 5");
        return REEL_OK;
    case 0x95: /* FRAME: a length prefix for buffering; the stream reads the same without it */
        TRY(pk_need(vm, 8, &p));
        if (ld_u64(p) > vm->len - vm->pos)
            return pk_fail(vm, REEL_E_FORMAT, "frame runs past the end of the pickle");
        return REEL_OK;
    case '.': /* STOP */
        if (vm->mp != 0 || vm->sp != 1)
            return pk_fail(vm, REEL_E_FORMAT, "STOP with unclosed MARKs or more than one value on the stack");
        vm->doc->root = vm->stack[0];
        vm->stopped = 1;
        return REEL_OK;
    case '(': /* MARK */
        if (vm->mp == PK_MAX_MARKS)
            return pk_fail(vm, REEL_E_UNSUPPORTED, "MARKs nested deeper than the unpickler allows");
        vm->marks[vm->mp++] = vm->sp;
        return REEL_OK;
    case 'N': return pk_push(vm, pk_new(vm, PK_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        a = pk_new(vm, PK_BOOL);
        if (a >= 0)
            vm->doc->v[a].u.i = op == 0x88;
        return pk_push(vm, a);
    case 'J': /* BININT */
        TRY(pk_need(vm, 4, &p));
        return pk_push_int(vm, (int32_t)ld_u32(p));
    case 'K': /* BININT1 */
        TRY(pk_need(vm, 1, &p));
        return pk_push_int(vm, p[0]);
    case 'M': /* BININT2 */
        TRY(pk_need(vm, 2, &p));
        return pk_push_int(vm, ld_u16(p));
    case 0x8a: { /* LONG1: little-endian two's complement of n bytes */
        TRY(pk_need(vm, 1, &p));
        unsigned n = p[0];
        if (n > 8)
            return pk_fail(vm, REEL_E_UNSUPPORTED, "integer wider than 64 bits");
        TRY(pk_need(vm, n, &p));
        uint64_t u = 0;
        for (unsigned i = 0; i < n; i++)
            u |= (uint64_t)p[i] << (8 * i);
        if (n && n < 8 && (p[n - 1] & 0x80))
            u |= ~0ull << (8 * n);
        return pk_push_int(vm, (int64_t)u);
    }
    case 'G': { /* BINFLOAT: big-endian IEEE double */
        TRY(pk_need(vm, 8, &p));
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = (u << 8) | p[i];
        a = pk_new(vm, PK_FLOAT);
        if (a >= 0)
            memcpy(&vm->doc->v[a].u.f, &u, 8);
        return pk_push(vm, a);
    }
    case 'X': /* BINUNICODE */
        TRY(pk_need(vm, 4, &p));
        return pk_push_str(vm, ld_u32(p));
    case 0x8c: /* SHORT_BINUNICODE */
        TRY(pk_need(vm, 1, &p));
        return pk_push_str(vm, p[0]);
    case '}': return pk_push(vm, pk_new(vm, PK_DICT));
    case ']': return pk_push(vm, pk_new(vm, PK_LIST));
    case ')': return pk_push(vm, pk_new(vm, PK_TUPLE));
    case 't': /* TUPLE */
        TRY(pk_pop_mark(vm, &start));
        return pk_make_tuple(vm, start);
    case 0x85: return pk_tuple_n(vm, 1);
    case 0x86: return pk_tuple_n(vm, 2);
    case 0x87: return pk_tuple_n(vm, 3);
    case 'q': /* BINPUT */
        TRY(pk_need(vm, 1, &p));
        return pk_memo_put(vm, p[0]);
    case 'r': /* LONG_BINPUT */
        TRY(pk_need(vm, 4, &p));
        return pk_memo_put(vm, ld_u32(p));
    case 0x94: /* MEMOIZE */
        return pk_memo_put(vm, vm->memo_count);
    case 'h': /* BINGET */
        TRY(pk_need(vm, 1, &p));
        return pk_memo_get(vm, p[0]);
    case 'j': /* LONG_BINGET */
        TRY(pk_need(vm, 4, &p));
        return pk_memo_get(vm, ld_u32(p));
    case 'c': { /* GLOBAL */
        const char *mod = NULL, *name = NULL;
        size_t ml = 0, nl = 0;
        TRY(pk_read_line(vm, &mod, &ml));
        TRY(pk_read_line(vm, &name, &nl));
        return pk_global(vm, mod, ml, name, nl);
    }
    case 0x93: /* STACK_GLOBAL */
        TRY(pk_pop(vm, &b));
        TRY(pk_pop(vm, &a));
        if (pk_val(vm, a)->kind != PK_STR || pk_val(vm, b)->kind != PK_STR)
            return pk_fail(vm, REEL_E_FORMAT, "STACK_GLOBAL operands are not strings");
        return pk_global(vm, pk_val(vm, a)->u.str.s, pk_val(vm, a)->u.str.len,
                         pk_val(vm, b)->u.str.s, pk_val(vm, b)->u.str.len);
    case 'R': return pk_reduce(vm);
    case 'Q': return pk_persid(vm);
    case 'b': /* BUILD: only the state of a state_dict (its _metadata), which is not needed */
        TRY(pk_pop(vm, &b));
        TRY(pk_top(vm, &a));
        if (pk_val(vm, a)->kind != PK_DICT ||
            (pk_val(vm, b)->kind != PK_DICT && pk_val(vm, b)->kind != PK_NONE))
            return pk_fail(vm, REEL_E_FORMAT, "BUILD on something other than a dict");
        return REEL_OK;
    case 's': /* SETITEM */
        if (pk_avail(vm) < 2)
            return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
        return pk_fill(vm, vm->sp - 2, PK_DICT);
    case 'u': /* SETITEMS */
        TRY(pk_pop_mark(vm, &start));
        return pk_fill(vm, start, PK_DICT);
    case 'a': /* APPEND */
        if (pk_avail(vm) < 1)
            return pk_fail(vm, REEL_E_FORMAT, "stack underflow");
        return pk_fill(vm, vm->sp - 1, PK_LIST);
    case 'e': /* APPENDS */
        TRY(pk_pop_mark(vm, &start));
        return pk_fill(vm, start, PK_LIST);
    default: {
        char msg[96];
        snprintf(msg, sizeof msg, "forbidden opcode 0x%02x", op);
        return pk_fail(vm, REEL_E_FORMAT, msg);
    }
    }
}

int pk_load(const char *where, const uint8_t *data, size_t len, pk_doc *out)
{
    memset(out, 0, sizeof *out);
    pk_vm vm;
    memset(&vm, 0, sizeof vm);
    vm.where = where;
    vm.d = data;
    vm.len = len;
    vm.doc = out;
    /* a pickler numbers memo slots from 0 up, one per object, so no index can reach len */
    vm.memo_max = len < PK_MAX_VALUES ? len : PK_MAX_VALUES;
    int st = REEL_OK;
    while (st == REEL_OK && !vm.stopped) {
        if (vm.pos >= vm.len) {
            st = err_set(REEL_E_FORMAT, "%s: pickle ends without STOP after %zu bytes", where, len);
            break;
        }
        st = pk_step(&vm);
    }
    if (st == REEL_OK && vm.pos != vm.len)
        st = err_set(REEL_E_FORMAT, "%s: %zu bytes after the pickle's STOP", where, vm.len - vm.pos);
    free(vm.stack);
    free(vm.memo);
    if (st != REEL_OK)
        pk_free(out);
    return st;
}

void pk_free(pk_doc *doc)
{
    for (int i = 0; i < doc->n; i++) {
        enum pk_kind k = doc->v[i].kind;
        if (k == PK_TUPLE || k == PK_LIST || k == PK_DICT)
            free(doc->v[i].u.seq.items);
    }
    free(doc->v);
    memset(doc, 0, sizeof *doc);
}

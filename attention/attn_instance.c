/* An attention instance: one plugin's state for one generation, behind the checks that every
 * plugin would otherwise repeat (config and argument sanity, option names), so that external
 * plugins fail with the same messages as built-in ones. */
#include "attn.h"

#include "attn_options.h"
#include "attn_plugins.h"

#include "../dit/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct attn_instance {
    const reel_attn_plugin *plugin;
    void *state;
    reel_attn_config cfg;
};

reel_attn_config attn_config_default(void)
{
    reel_attn_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.device = REEL_ATTN_CPU;
    c.dtype = REEL_ATTN_F32;
    c.head_dim = 128;
    return c;
}

reel_attn_args attn_args_default(void)
{
    reel_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    return a;
}

static int check_config(const reel_attn_config *c, const char *name)
{
    if (!c || c->struct_size != sizeof *c)
        return err_set(REEL_E_INVALID, "attention '%s': config struct_size %u, expected %zu", name,
                       c ? c->struct_size : 0, sizeof *c);
    if (c->device == REEL_ATTN_CPU ? c->dtype != REEL_ATTN_F32
                                   : c->device != REEL_ATTN_CUDA || c->dtype != REEL_ATTN_BF16)
        return err_set(REEL_E_UNSUPPORTED,
                       "attention '%s': device %d with dtype %d (supported: CPU with f32, CUDA with "
                       "bf16)",
                       name, c->device, c->dtype);
    if (c->heads <= 0 || c->head_dim <= 0 || c->heads > 4096 || c->head_dim > 1024)
        return err_set(REEL_E_INVALID, "attention '%s': heads %d, head_dim %d out of range", name,
                       c->heads, c->head_dim);
    if (c->grid_f < 0 || c->grid_h < 0 || c->grid_w < 0 || c->text_len < 0 || c->num_steps < 0 ||
        c->num_layers < 0 || c->chunk_frames < 0)
        return err_set(REEL_E_INVALID,
                       "attention '%s': negative grid %dx%dx%d, text_len %d, steps %d, layers %d or "
                       "chunk_frames %d",
                       name, c->grid_f, c->grid_h, c->grid_w, c->text_len, c->num_steps,
                       c->num_layers, c->chunk_frames);
    return REEL_OK;
}

int attn_instance_create(const char *spec, const reel_attn_config *cfg, attn_instance **out)
{
    *out = NULL;
    if (!spec || !*spec)
        return err_set(REEL_E_INVALID, "attention: empty plugin spec (expected NAME[:key=value,...])");
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nlen == 0 || nlen >= sizeof name)
        return err_set(REEL_E_INVALID, "attention spec '%s': bad plugin name", spec);
    memcpy(name, spec, nlen);
    name[nlen] = 0;
    const char *options = colon ? colon + 1 : "";

    const reel_attn_plugin *p = reel_attn_find(name);
    if (!p) {
        char list[512] = "";
        size_t used = 0;
        for (int i = 0; i < reel_attn_count() && used < sizeof list; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                             reel_attn_at(i)->name);
            if (w > 0)
                used += (size_t)w;
        }
        return err_set(REEL_E_NOT_FOUND, "attention plugin '%s' not found (available: %s)", name,
                       list);
    }
    TRY(check_config(cfg, name));

    char err[512] = "";
    attn_opts opts;
    int st = attn_opts_parse(options, p->options, &opts, err, sizeof err);
    if (st < 0)
        return err_set(st, "attention '%s': %s", name, err);

    attn_instance *a = calloc(1, sizeof *a);
    if (!a)
        return err_set(REEL_E_NOMEM, "attention '%s': out of memory", name);
    a->plugin = p;
    a->cfg = *cfg;
    st = p->create(cfg, options, &a->state, err, sizeof err);
    if (st < 0) {
        free(a);
        return err_set(st, "attention '%s': %s", name, err[0] ? err : reel_status_name(st));
    }
    *out = a;
    return REEL_OK;
}

static int check_args(const attn_instance *a, const reel_attn_args *x)
{
    const char *name = a->plugin->name;
    int64_t row = (int64_t)a->cfg.heads * a->cfg.head_dim;
    if (!x || x->struct_size != sizeof *x)
        return err_set(REEL_E_INVALID, "attention '%s': args struct_size %u, expected %zu", name,
                       x ? x->struct_size : 0, sizeof *x);
    if (!x->q || !x->k || !x->v || !x->out)
        return err_set(REEL_E_INVALID, "attention '%s': q, k, v or out is NULL", name);
    if (x->q_tokens <= 0 || x->kv_tokens <= 0)
        return err_set(REEL_E_INVALID, "attention '%s': q_tokens %lld, kv_tokens %lld", name,
                       (long long)x->q_tokens, (long long)x->kv_tokens);
    if (x->q_row_stride < row || x->kv_row_stride < row)
        return err_set(REEL_E_INVALID,
                       "attention '%s': row strides q %lld, kv %lld below heads*head_dim %lld", name,
                       (long long)x->q_row_stride, (long long)x->kv_row_stride, (long long)row);
    if (!(x->scale > 0) || !isfinite(x->scale))
        return err_set(REEL_E_INVALID, "attention '%s': softmax scale %g is not positive", name,
                       (double)x->scale);
    if (x->layer < 0 || x->step < 0 || x->q_first < 0 || x->kv_first < 0)
        return err_set(REEL_E_INVALID,
                       "attention '%s': negative layer %d, step %d, q_first %lld or kv_first %lld",
                       name, x->layer, x->step, (long long)x->q_first, (long long)x->kv_first);
    if (x->last_key_copies < 0)
        return err_set(REEL_E_INVALID, "attention '%s': last_key_copies %lld", name,
                       (long long)x->last_key_copies);
    /* the weight of a repeated last key is the built-in dense plugin's (cross-attention) */
    if (x->last_key_copies > 1 && a->plugin != &attn_dense_plugin)
        return err_set(REEL_E_UNSUPPORTED,
                       "attention '%s': a repeated last key (compacted text context) is only for "
                       "the dense plugin", name);
    return REEL_OK;
}

int attn_instance_forward(attn_instance *a, const reel_attn_args *args)
{
    TRY(check_args(a, args));
    char err[512] = "";
    int st = a->plugin->forward(a->state, args, err, sizeof err);
    if (st < 0)
        return err_set(st, "attention '%s' (layer %d, step %d): %s", a->plugin->name, args->layer,
                       args->step, err[0] ? err : reel_status_name(st));
    return REEL_OK;
}

int attn_instance_end_step(attn_instance *a, int step)
{
    if (!a->plugin->end_step)
        return REEL_OK;
    int st = a->plugin->end_step(a->state, step);
    if (st < 0)
        return err_set(st, "attention '%s': end of step %d failed: %s", a->plugin->name, step,
                       reel_status_name(st));
    return REEL_OK;
}

void attn_instance_free(attn_instance *a)
{
    if (!a)
        return;
    a->plugin->destroy(a->state);
    free(a);
}

const reel_attn_plugin *attn_instance_plugin(const attn_instance *a) { return a->plugin; }

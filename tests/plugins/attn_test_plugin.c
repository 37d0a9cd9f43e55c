/* A minimal external attention plugin, built as a shared library by tests/CMakeLists.txt and
 * loaded by tests/test_attn_plugin_load.c. It uses only the public ABI header. Its forward
 * writes out = gain * v (row i of v for query i, modulo kv_tokens) + the number of steps ended
 * so far, so the test can see that create's options, forward and end_step all reached it.
 * Built a second time with TEST_PLUGIN_ABI set to a wrong version, which reel must refuse. */
#include "reel_attention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_PLUGIN_ABI
#define TEST_PLUGIN_ABI REEL_ATTN_ABI_VERSION
#endif

typedef struct test_state {
    int row; /* heads * head_dim */
    float gain;
    int steps_ended;
} test_state;

static const reel_attn_option test_options[] = {
    {"gain", "1", "factor applied to v"},
    {NULL, NULL, NULL},
};

static int test_create(const reel_attn_config *cfg, const char *options, void **state, char *err,
                       size_t err_size)
{
    if (cfg->device != REEL_ATTN_CPU) {
        snprintf(err, err_size, "the test plugin runs on the CPU only");
        return -4; /* REEL_E_UNSUPPORTED */
    }
    test_state *s = calloc(1, sizeof *s);
    if (!s)
        return -5;
    s->row = cfg->heads * cfg->head_dim;
    s->gain = 1;
    if (options && !strncmp(options, "gain=", 5))
        s->gain = strtof(options + 5, NULL);
    *state = s;
    return 0;
}

static int test_forward(void *state, const reel_attn_args *a, char *err, size_t err_size)
{
    const test_state *s = state;
    const float *v = a->v;
    float *out = a->out;
    for (int64_t i = 0; i < a->q_tokens; i++)
        for (int c = 0; c < s->row; c++)
            out[i * s->row + c] =
                s->gain * v[(i % a->kv_tokens) * a->kv_row_stride + c] + (float)s->steps_ended;
    return 0;
}

static int test_end_step(void *state, int step)
{
    ((test_state *)state)->steps_ended++;
    return 0;
}

static void test_destroy(void *state) { free(state); }

static const reel_attn_plugin test_plugin = {
    TEST_PLUGIN_ABI,
    sizeof(reel_attn_plugin),
    "test_gain",
    "test plugin: out = gain * v + steps ended",
    test_options,
    test_create,
    test_forward,
    test_end_step,
    test_destroy,
};

const reel_attn_plugin *reel_attn_plugin_entry(void) { return &test_plugin; }

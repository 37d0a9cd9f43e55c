/* External attention plugins: a shared library is loaded with reel_attn_load, found by name,
 * created with options and called through an instance; a library built for another ABI
 * version, a missing file and a library without the entry point are refused with messages. */
#include "check.h"

#include "attention/attn.h"
#include "dit/error.h"

#include <string.h>

#if !defined(ATTN_TEST_PLUGIN) || !defined(ATTN_TEST_PLUGIN_BADABI) || !defined(ATTN_TEST_NOT_PLUGIN)
#error "tests/CMakeLists.txt passes the test plugin paths"
#endif

int main(void)
{
    check_seed("test_attn_plugin_load");

    const char *name = NULL;
    CHECK_OK(reel_attn_load(ATTN_TEST_PLUGIN, &name));
    CHECK(name && !strcmp(name, "test_gain"), "loaded plugin's name: %s", name ? name : "(null)");
    CHECK(reel_attn_find("test_gain") != NULL, "a loaded plugin is registered");
    CHECK(reel_attn_find("dense") != NULL, "built-ins are still there");

    reel_attn_config cfg = attn_config_default();
    cfg.heads = 2, cfg.head_dim = 4, cfg.model_dim = 8;
    attn_instance *a;
    CHECK_OK(attn_instance_create("test_gain:gain=3", &cfg, &a));
    float q[5 * 8], v[3 * 10], out[5 * 8];
    check_fill_normal(q, 40, 1.0f);
    check_fill_normal(v, 30, 1.0f);
    reel_attn_args args = attn_args_default();
    args.q = q, args.k = v, args.v = v, args.out = out;
    args.q_tokens = 5, args.kv_tokens = 3, args.q_row_stride = 8, args.kv_row_stride = 10;
    args.scale = 0.5f;
    for (int step = 0; step < 2; step++) {
        args.step = step;
        CHECK_OK(attn_instance_forward(a, &args));
        int bad = 0;
        for (int i = 0; i < 5; i++)
            for (int c = 0; c < 8; c++)
                bad += out[i * 8 + c] != 3 * v[(i % 3) * 10 + c] + (float)step;
        CHECK(bad == 0, "step %d: %d outputs are not 3*v + %d", step, bad, step);
        CHECK_OK(attn_instance_end_step(a, step));
    }
    attn_instance_free(a);
    CHECK(attn_instance_create("test_gain:bias=1", &cfg, &a) == REEL_E_INVALID && !a,
          "options of a loaded plugin are checked against its table");

    const char *bad_name = "unchanged";
    CHECK(reel_attn_load(ATTN_TEST_PLUGIN_BADABI, &bad_name) == REEL_E_ABI, "wrong ABI refused");
    CHECK(strstr(err_msg(), "ABI version 999") && strstr(err_msg(), ATTN_TEST_PLUGIN_BADABI),
          "message names the library and the versions: %s", err_msg());
    CHECK(bad_name == NULL, "no name for a refused plugin");

    CHECK(reel_attn_load(check_path("missing.so"), NULL) == REEL_E_IO, "missing file");
    CHECK(strstr(err_msg(), "missing.so") != NULL, "message names the file: %s", err_msg());
    CHECK(reel_attn_load(ATTN_TEST_NOT_PLUGIN, NULL) == REEL_E_FORMAT,
          "a shared library without the entry point");
    CHECK(strstr(err_msg(), REEL_ATTN_ENTRY) != NULL, "message names the symbol: %s", err_msg());
    CHECK(reel_attn_load("libc.so.6", NULL) == REEL_E_IO,
          "bare names are not searched on the library path");
    return check_done();
}

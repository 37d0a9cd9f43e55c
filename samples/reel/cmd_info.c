/* reel info: what a checkpoint holds (tensor names, dtypes, shapes, totals) and which model it is. */
#include "cli.h"

#include "dit/error.h"
#include "dit/loader.h"
#include "dit/model_detect.h"
#include "dit/weights.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void info_help(FILE *f)
{
    fprintf(f,
            "usage: reel info [--json] FILE|DIR\n"
            "\n"
            "Lists the tensors of a checkpoint (name, dtype, shape), the totals (tensors,\n"
            "parameters, bytes), the files read, and the detected model: Wan2.1 DiT (original,\n"
            "diffusers, ComfyUI or Self-Forcing layout, with its widths), Wan VAE or umT5 encoder.\n"
            "\n"
            "FILE is a .safetensors file, a *.safetensors.index.json (sharded checkpoint), or a\n"
            ".pth/.pt/.ckpt/.bin PyTorch zip checkpoint. DIR is a folder holding one index, or one\n"
            ".safetensors file, or one PyTorch checkpoint. config.json beside the weights, when\n"
            "present, completes the model configuration.\n"
            "\n"
            "  --json   print one JSON object instead of text\n"
            "\n"
            "A malformed or unsupported file gives one line 'reel info: FILE: what is wrong' and\n"
            "exit status 1.\n");
}

static double params_of(const weights *ws)
{
    double n = 0;
    for (int i = 0; i < weights_count(ws); i++)
        n += (double)tensor_numel(&weights_at(ws, i)->t);
    return n;
}

static void print_text(const weights *ws, const model_info *mi)
{
    char name[512], shape[128];
    for (int i = 0; i < weights_count(ws); i++) {
        const weight_entry *e = weights_at(ws, i);
        printf("%-60s %-8s %s\n", ld_printable(e->name, strlen(e->name), name, sizeof name),
               dtype_name(e->t.dtype), tensor_shape_str(&e->t, shape, sizeof shape));
    }
    double params = params_of(ws), bytes = (double)weights_total_bytes(ws);
    printf("\ntensors     %d\n", weights_count(ws));
    printf("parameters  %.0f (%.3f B)\n", params, params / 1e9);
    printf("bytes       %.0f (%.2f GB)\n", bytes, bytes / 1e9);
    for (int i = 0; i < weights_file_count(ws); i++)
        printf("%s  %s\n", i ? "           " : "files      ", weights_file(ws, i));
    printf("model       %s, layout %s, key prefix \"%s\"\n", model_kind_name(mi->kind),
           model_layout_name(mi->layout), mi->prefix);
    printf("            %s\n", mi->description);
}

static int print_json(const weights *ws, const model_info *mi)
{
    cJSON *root = cJSON_CreateObject(), *files = cJSON_AddArrayToObject(root, "files"),
          *tensors = cJSON_AddArrayToObject(root, "tensors"), *totals = cJSON_AddObjectToObject(root, "totals"),
          *model = cJSON_AddObjectToObject(root, "model");
    if (!root || !files || !tensors || !totals || !model) {
        cJSON_Delete(root);
        return err_set(REEL_E_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "path", weights_path(ws));
    for (int i = 0; i < weights_file_count(ws); i++)
        cJSON_AddItemToArray(files, cJSON_CreateString(weights_file(ws, i)));
    for (int i = 0; i < weights_count(ws); i++) {
        const weight_entry *e = weights_at(ws, i);
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(tensors, t);
        cJSON_AddStringToObject(t, "name", e->name);
        cJSON_AddStringToObject(t, "dtype", dtype_name(e->t.dtype));
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->t.ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->t.shape[d]));
    }
    cJSON_AddNumberToObject(totals, "tensors", weights_count(ws));
    cJSON_AddNumberToObject(totals, "parameters", params_of(ws));
    cJSON_AddNumberToObject(totals, "bytes", (double)weights_total_bytes(ws));
    cJSON_AddStringToObject(model, "kind", model_kind_name(mi->kind));
    cJSON_AddStringToObject(model, "layout", model_layout_name(mi->layout));
    cJSON_AddStringToObject(model, "prefix", mi->prefix);
    if (mi->kind == MODEL_WAN_DIT) {
        const struct {
            const char *key;
            int v;
        } f[] = {{"dim", mi->dim},         {"ffn_dim", mi->ffn_dim}, {"heads", mi->heads},
                 {"layers", mi->layers},   {"in_dim", mi->in_dim},   {"out_dim", mi->out_dim},
                 {"text_dim", mi->text_dim}, {"freq_dim", mi->freq_dim}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            cJSON_AddNumberToObject(model, f[i].key, f[i].v);
    }
    cJSON_AddStringToObject(model, "description", mi->description);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return err_set(REEL_E_NOMEM, "out of memory printing JSON");
    printf("%s\n", text);
    free(text);
    return REEL_OK;
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            info_help(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("info", "unknown option '%s'", argv[i]);
        else if (path)
            return cli_usage_error("info", "one FILE or DIR, got '%s' and '%s'", path, argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage_error("info", "missing FILE or DIR");
    weights *ws = NULL;
    int st = weights_open(path, &ws);
    if (st < 0)
        return cli_fail("info", st);
    model_info mi;
    st = model_detect(ws, &mi);
    if (st == REEL_OK) {
        if (json)
            st = print_json(ws, &mi);
        else
            print_text(ws, &mi);
    }
    weights_close(ws);
    if (st < 0)
        return cli_fail("info", st);
    return fflush(stdout) == 0 ? 0 : 1;
}

#include "tok_synth.h"

#include "error.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static void piece(cJSON *vocab, const char *text, double score)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(text));
    cJSON_AddItemToArray(p, cJSON_CreateNumber(score));
    cJSON_AddItemToArray(vocab, p);
}

int tok_synth_write_json(const char *path)
{
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateArray();
    cJSON *added = cJSON_CreateArray(), *pre = cJSON_CreateObject();
    static const char *const specials[3] = {"<pad>", "</s>", "<unk>"};
    for (int i = 0; i < 3; i++) {
        piece(vocab, specials[i], 0);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", specials[i]);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    piece(vocab, "\xE2\x96\x81", -3);
    char s[8];
    for (int c = 33; c < 127; c++) {
        snprintf(s, sizeof s, "%c", c);
        piece(vocab, s, -5);
        snprintf(s, sizeof s, "\xE2\x96\x81%c", c);
        piece(vocab, s, -4);
    }
    for (int b = 0; b < 256; b++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        piece(vocab, s, 0);
    }
    cJSON_AddStringToObject(model, "type", "Unigram");
    cJSON_AddNumberToObject(model, "unk_id", 2);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddStringToObject(pre, "type", "Metaspace");
    cJSON_AddStringToObject(pre, "replacement", "\xE2\x96\x81");
    cJSON_AddStringToObject(pre, "prepend_scheme", "always");
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre);
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return err_set(REEL_E_NOMEM, "tokenizer synth: out of memory");
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    free(text);
    return ok ? REEL_OK : err_set(REEL_E_IO, "%s: cannot write", path);
}

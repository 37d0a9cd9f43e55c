/* The process-wide attention plugin registry: built-in tables registered on first use, others
 * added with reel_attn_register or loaded from a shared library (reel_attn_load). Tables are
 * never unregistered and loaded libraries never closed, so a table pointer handed out stays
 * valid for the life of the process. */
#include "reel_attention.h"

#include "../attention/attn.h"
#include "../attention/attn_plugins.h"
#include "../dit/error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define REGISTRY_MAX 64

static const reel_attn_plugin *registry[REGISTRY_MAX];
static int registry_count;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

/* The fields every ABI version must have, up to destroy. */
#define PLUGIN_MIN_SIZE (offsetof(reel_attn_plugin, destroy) + sizeof(void (*)(void *)))

static int check_table(const reel_attn_plugin *p, const char *origin)
{
    if (!p)
        return err_set(REEL_E_INVALID, "%s: attention plugin table is NULL", origin);
    if (p->abi_version != REEL_ATTN_ABI_VERSION)
        return err_set(REEL_E_ABI,
                       "%s: attention plugin built for ABI version %u, this reel speaks version %u "
                       "(rebuild the plugin against this reel's reel_attention.h)",
                       origin, p->abi_version, REEL_ATTN_ABI_VERSION);
    if (p->struct_size < PLUGIN_MIN_SIZE)
        return err_set(REEL_E_ABI, "%s: attention plugin table is %u bytes, expected at least %zu",
                       origin, p->struct_size, (size_t)PLUGIN_MIN_SIZE);
    if (!p->name || !*p->name || strpbrk(p->name, ":,= \t"))
        return err_set(REEL_E_INVALID,
                       "%s: attention plugin name '%s' is empty or holds one of ':,= '", origin,
                       p->name ? p->name : "(null)");
    if (!p->create || !p->forward || !p->destroy)
        return err_set(REEL_E_INVALID, "%s: attention plugin '%s' lacks create, forward or destroy",
                       origin, p->name);
    return REEL_OK;
}

/* Caller holds registry_lock. */
static int registry_add(const reel_attn_plugin *p)
{
    for (int i = 0; i < registry_count; i++)
        if (!strcmp(registry[i]->name, p->name)) {
            registry[i] = p;
            return REEL_OK;
        }
    if (registry_count == REGISTRY_MAX)
        return err_set(REEL_E_NOMEM, "attention plugin '%s': the registry is full (%d plugins)",
                       p->name, REGISTRY_MAX);
    registry[registry_count++] = p;
    return REEL_OK;
}

static void register_builtins_once(void)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; attn_builtin_plugins[i]; i++)
        registry_add(attn_builtin_plugins[i]);
    pthread_mutex_unlock(&registry_lock);
}

void attn_register_builtins(void) { pthread_once(&builtins_once, register_builtins_once); }

int reel_attn_register(const reel_attn_plugin *plugin)
{
    attn_register_builtins();
    TRY(check_table(plugin, "reel_attn_register"));
    pthread_mutex_lock(&registry_lock);
    int st = registry_add(plugin);
    pthread_mutex_unlock(&registry_lock);
    return st;
}

int reel_attn_load(const char *path, const char **name)
{
    attn_register_builtins();
    if (name)
        *name = NULL;
    if (!path || !*path)
        return err_set(REEL_E_INVALID, "attention plugin: empty library path");
    /* A bare file name would make dlopen search the library path; a plugin is always a file the
     * user names, so anchor it to the current directory. */
    char local[4096];
    if (!strchr(path, '/')) {
        if (strlen(path) + 3 > sizeof local)
            return err_set(REEL_E_INVALID, "attention plugin: path too long");
        strcpy(local, "./");
        strcat(local, path);
        path = local;
    }
    dlerror();
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        return err_set(REEL_E_IO, "attention plugin %s: cannot load: %s", path, why ? why : "?");
    }
    void *sym = dlsym(lib, REEL_ATTN_ENTRY);
    if (!sym) {
        dlclose(lib);
        return err_set(REEL_E_FORMAT, "attention plugin %s: no symbol %s (not a reel attention plugin)",
                       path, REEL_ATTN_ENTRY);
    }
    reel_attn_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* ISO C forbids casting object to function pointers */
    const reel_attn_plugin *p = entry();
    int st = check_table(p, path);
    if (st == REEL_OK) {
        pthread_mutex_lock(&registry_lock);
        st = registry_add(p);
        pthread_mutex_unlock(&registry_lock);
    }
    if (st < 0) {
        dlclose(lib);
        return st;
    }
    if (name)
        *name = p->name;
    return REEL_OK;
}

const reel_attn_plugin *reel_attn_find(const char *name)
{
    attn_register_builtins();
    const reel_attn_plugin *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; name && i < registry_count; i++)
        if (!strcmp(registry[i]->name, name))
            found = registry[i];
    pthread_mutex_unlock(&registry_lock);
    return found;
}

int reel_attn_count(void)
{
    attn_register_builtins();
    pthread_mutex_lock(&registry_lock);
    int n = registry_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

const reel_attn_plugin *reel_attn_at(int index)
{
    attn_register_builtins();
    pthread_mutex_lock(&registry_lock);
    const reel_attn_plugin *p = index >= 0 && index < registry_count ? registry[index] : NULL;
    pthread_mutex_unlock(&registry_lock);
    return p;
}

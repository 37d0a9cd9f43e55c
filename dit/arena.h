/* A bump allocator over one allocation on a backend's device, for activations: a forward pass
 * marks, allocates its intermediates, and resets to the mark when done, so the peak is known
 * up front and nothing is freed piece by piece. The arena owns its block; tensors taken from it
 * are views that die at the next reset below them. */
#ifndef REEL_ARENA_H
#define REEL_ARENA_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arena {
    backend *be;
    char *base;
    size_t cap, used, peak;
    const char *name; /* for messages: "DiT activations" */
} arena;

int arena_init(arena *a, backend *be, size_t cap, const char *name);
void arena_release(arena *a);

/* 256-byte aligned; REEL_E_NOMEM/REEL_E_DEVICE with the request, the capacity and the name. */
int arena_alloc(arena *a, size_t bytes, void **ptr);
int arena_tensor(arena *a, enum dtype dt, int ndim, const int64_t *shape, tensor *out);

static inline size_t arena_mark(const arena *a) { return a->used; }
static inline void arena_reset(arena *a, size_t mark) { a->used = mark; }

#ifdef __cplusplus
}
#endif
#endif

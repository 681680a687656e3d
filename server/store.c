/* store.c - helpers shared by every store backend (see store.h). */
#include "store.h"

#include <stdlib.h>
#include <string.h>

const char *srv_record_get(const srv_record *r, const char *name)
{
    if (r == NULL || name == NULL || r->names == NULL || r->values == NULL)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (r->names[i] != NULL && strcmp(r->names[i], name) == 0)
            return r->values[i];
    }
    return NULL;
}

void srv_record_free(srv_record *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (r->names != NULL)
            free(r->names[i]);
        if (r->values != NULL)
            free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    r->n = 0;
    r->names = NULL;
    r->values = NULL;
}

void srv_state_chain_free(srv_state_chain *c)
{
    if (c == NULL)
        return;
    free(c->base);
    for (size_t i = 0; c->deltas != NULL && i < c->head.n_deltas; i++)
        free(c->deltas[i]);
    free(c->deltas);
    free(c->delta_lens);
    memset(c, 0, sizeof(*c));
}

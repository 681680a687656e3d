/* store.c - the helpers store.h declares for every backend (records read back). */
#include "store.h"

#include <stdlib.h>
#include <string.h>

const char *srv_record_get(const srv_record *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->names[i], name) == 0)
            return r->values[i];
    }
    return NULL;
}

void srv_record_free(srv_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    r->n = 0;
    r->names = r->values = NULL;
}

/* model_registry.c - models loaded at start; see model_registry.h. */
#include "model_registry.h"

#include "buf.h"

#include "hl/modelfile.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.hlm names of dir (sorted, malloc'd). A missing dir gives none. */
static hl_status list_dir(const char *dir, char ***names, size_t *n, hl_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return HL_OK;
        return hl_error_set(err, HL_IO, "model-dir", "cannot read model directory %s: %s", dir,
                            strerror(errno));
    }
    size_t cap = 0;
    hl_status st = HL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= 4 || strcmp(de->d_name + l - 4, ".hlm") != 0 || de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(*names, cap * sizeof(char *));
            if (nn == NULL) {
                st = HL_NOMEM;
                break;
            }
            *names = nn;
        }
        if (((*names)[*n] = strdup(de->d_name)) == NULL) {
            st = HL_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof(char *), cmp_names);
    return st;
}

hl_status srv_models_load(const char *dir, const char *default_name, struct srv_models **out,
                          hl_error *err)
{
    *out = NULL;
    char **names;
    size_t n;
    hl_status st = list_dir(dir, &names, &n, err);
    struct srv_models *ms = calloc(1, sizeof(*ms));
    if (ms != NULL)
        ms->v = calloc(n + 1, sizeof(srv_model));
    if (st == HL_OK && (ms == NULL || ms->v == NULL))
        st = hl_error_set(err, HL_NOMEM, NULL, "out of memory loading models");
    for (size_t i = 0; i < n && st == HL_OK; i++) {
        srv_model *m = &ms->v[ms->n];
        size_t stem = strlen(names[i]) - 4;
        if (stem >= sizeof(m->name)) {
            st = hl_error_set(err, HL_FORMAT, "model-dir", "%s/%s: name longer than 63 bytes", dir,
                              names[i]);
            break;
        }
        memcpy(m->name, names[i], stem);
        m->name[stem] = '\0';
        snprintf(m->path, sizeof(m->path), "%s/%s", dir, names[i]);
        st = hl_modelfile_load(m->path, &m->m, &m->checksum, err);
        if (st == HL_OK)
            ms->n++;
        else if (strstr(err->msg, m->path) == NULL) { /* the message must name the file */
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%.100s: %.57s", m->path, err->msg);
            memcpy(err->msg, msg, sizeof(msg));
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == HL_OK) {
        snprintf(ms->v[ms->n].name, sizeof(ms->v[ms->n].name), "none");
        ms->n++;
        const srv_model *d = srv_models_find(ms, default_name);
        if (d == NULL)
            st = hl_error_set(err, HL_NOTFOUND, "default-model",
                              "--default-model '%s' names no model in %s (models: *.hlm files; "
                              "'none' is the model-free mode)",
                              default_name, dir);
        else
            ms->default_idx = (size_t)(d - ms->v);
    }
    if (st != HL_OK) {
        srv_models_free(ms);
        return st;
    }
    *out = ms;
    return HL_OK;
}

void srv_models_free(struct srv_models *ms)
{
    if (ms == NULL)
        return;
    for (size_t i = 0; i < ms->n; i++)
        hl_model_free(ms->v[i].m);
    free(ms->v);
    free(ms);
}

const srv_model *srv_models_find(const struct srv_models *ms, const char *name)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (strcmp(ms->v[i].name, name) == 0)
            return &ms->v[i];
    }
    return NULL;
}

const char *srv_model_kind(const srv_model *m)
{
    return m->m == NULL ? "none" : hl_model_kind_name(m->m->cfg.kind);
}

void srv_model_json(const struct srv_models *ms, const srv_model *m, struct srv_buf *b)
{
    srv_buf_puts(b, "{\"name\":");
    srv_buf_json_str(b, m->name);
    srv_buf_puts(b, ",\"kind\":");
    srv_buf_json_str(b, srv_model_kind(m));
    if (m->m != NULL && m->m->cfg.kind == HL_MODEL_LANDER)
        srv_buf_printf(b, ",\"dim\":%d", (int)m->m->cfg.dim);
    else
        srv_buf_puts(b, ",\"dim\":\"any\"");
    if (m->m != NULL) {
        srv_buf_printf(b, ",\"hidden\":%d,\"k\":%d,\"tau\":", (int)m->m->cfg.hidden,
                       (int)m->m->cfg.k);
        srv_buf_json_num(b, (double)m->m->cfg.tau);
        srv_buf_printf(b, ",\"checksum\":\"crc32c:%08x\",\"trained_on\":", (unsigned)m->checksum);
        srv_buf_json_str(b, m->m->trained_on);
    } else {
        srv_buf_puts(b, ",\"hidden\":null,\"k\":10,\"tau\":0.8,\"checksum\":null,"
                        "\"trained_on\":null");
    }
    srv_buf_printf(b, ",\"default\":%s}",
                   (size_t)(m - ms->v) == ms->default_idx ? "true" : "false");
}

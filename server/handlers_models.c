/* handlers_models.c - GET /v1/models and GET /v1/models/{name}. */
#include "buf.h"
#include "model_registry.h"
#include "server.h"

hl_status srv_h_models(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    (void)req;
    srv_buf b;
    srv_buf_init(&b, 512);
    srv_buf_puts(&b, "{\"models\":[");
    for (size_t i = 0; i < ctx->models->n; i++) {
        if (i > 0)
            srv_buf_put(&b, ",", 1);
        srv_model_json(ctx->models, &ctx->models->v[i], &b);
    }
    srv_buf_puts(&b, "],\"default\":");
    srv_buf_json_str(&b, ctx->models->v[ctx->models->default_idx].name);
    srv_buf_puts(&b, "}");
    size_t len;
    char *body = srv_buf_take(&b, &len);
    return srv_resp_json(resp, 200, body, len);
}

hl_status srv_h_model(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    const srv_model *m = srv_models_find(ctx->models, req->param);
    if (m == NULL)
        return srv_resp_problem(resp, req, SRV_P_UNKNOWN_MODEL, NULL, "no model '%s'", req->param);
    srv_buf b;
    srv_buf_init(&b, 512);
    srv_model_json(ctx->models, m, &b);
    size_t len;
    char *body = srv_buf_take(&b, &len);
    return srv_resp_json(resp, 200, body, len);
}

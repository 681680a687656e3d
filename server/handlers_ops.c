/* handlers_ops.c - /livez, /readyz, /metrics and /openapi.yaml. */
#include "bodies.h"
#include "jobs.h"
#include "metrics.h"
#include "model_registry.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hl_status text(srv_resp *resp, int status, const char *ctype, const char *s, size_t n)
{
    char *body = malloc(n + 1);
    if (body == NULL)
        return HL_NOMEM;
    memcpy(body, s, n);
    body[n] = '\0';
    resp->status = status;
    resp->content_type = ctype;
    resp->body = body;
    resp->len = n;
    return HL_OK;
}

hl_status srv_h_livez(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    (void)ctx;
    (void)req;
    static const char body[] = "{\"status\":\"alive\"}";
    return text(resp, 200, "application/json", body, sizeof(body) - 1);
}

hl_status srv_h_readyz(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    if (atomic_load(&ctx->draining))
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "the server is draining");
    hl_status st = ctx->store->ops->ping(ctx->store);
    srv_metrics_store_result(ctx->metrics, SRV_OP_PING, st);
    if (st != HL_OK)
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL,
                                "the %s store is unreachable: %s", ctx->store->ops->name,
                                hl_status_str(st));
    if (ctx->models == NULL || ctx->models->n == 0)
        return srv_resp_problem(resp, req, SRV_P_UNAVAILABLE, NULL, "no models are loaded");
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"status\":\"ready\",\"models\":%zu,\"store\":\"%s\"}",
                     ctx->models->n, ctx->store->ops->name);
    return text(resp, 200, "application/json", body, (size_t)n);
}

hl_status srv_h_metrics(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    (void)req;
    size_t len;
    srv_bodies_stats bs;
    srv_bodies_get_stats(ctx->bodies, &bs);
    char *body = srv_metrics_render(ctx->metrics, srv_jobq_length(ctx->queue), &bs, &len);
    if (body == NULL)
        return HL_NOMEM;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = body;
    resp->len = len;
    return HL_OK;
}

hl_status srv_h_openapi(srv_ctx *ctx, const srv_req *req, srv_resp *resp)
{
    (void)req;
    return text(resp, 200, "application/yaml", ctx->openapi, ctx->openapi_len);
}

/* http_status.c - problem catalogue and hl_status -> HTTP mapping; see http_status.h. */
#include "http_status.h"

#include <stddef.h>

static const struct {
    int status;
    const char *suffix, *title;
} problems[] = {
#define SRV_PROBLEM_ROW_(id, st, suffix, title) {st, suffix, title},
    SRV_PROBLEM_MAP(SRV_PROBLEM_ROW_)
#undef SRV_PROBLEM_ROW_
};

static int valid(srv_problem p)
{
    return (unsigned)p < (unsigned)SRV_P_COUNT_;
}

int srv_problem_status(srv_problem p)
{
    return valid(p) ? problems[p].status : 500;
}

const char *srv_problem_suffix(srv_problem p)
{
    return valid(p) ? problems[p].suffix : "internal-error";
}

const char *srv_problem_title(srv_problem p)
{
    return valid(p) ? problems[p].title : "Internal error";
}

srv_problem srv_problem_for_status(hl_status st)
{
    switch (st) {
        case HL_INVAL:
        case HL_FORMAT:
            return SRV_P_BAD_REQUEST;
        case HL_RANGE:
        case HL_VERSION:
        case HL_NUMERIC:
            return SRV_P_INVALID_PARAMETER;
        case HL_NOTFOUND:
            return SRV_P_NOT_FOUND;
        case HL_BUSY:
            return SRV_P_QUEUE_FULL;
        case HL_NOMEM:
        case HL_UNAVAILABLE:
            return SRV_P_UNAVAILABLE;
        case HL_TIMEOUT:
            return SRV_P_TIMEOUT;
        default:
            return SRV_P_INTERNAL;
    }
}

const char *srv_http_reason(int status)
{
    switch (status) {
        case 200:
            return "OK";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 409:
            return "Conflict";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}

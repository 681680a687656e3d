/* healthcheck.c - see healthcheck.h. A blocking-free GET: non-blocking connect, poll() with
 * what is left of the deadline before every step, HTTP/1.0 so the server closes after it. */
#include "healthcheck.h"

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int srv_healthcheck_parse_url(const char *url, char *host, unsigned long host_len, int *port,
                              char *path, unsigned long path_len)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (end == NULL)
            return -1;
        h++;
    } else {
        end = h + strcspn(h, ":/");
    }
    size_t hn = (size_t)(end - h);
    if (hn == 0 || hn >= host_len)
        return -1;
    memcpy(host, h, hn);
    host[hn] = '\0';
    const char *p = *end == ']' ? end + 1 : end;
    *port = 80;
    if (*p == ':') {
        char *e;
        long v = strtol(p + 1, &e, 10);
        if (e == p + 1 || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
        p = e;
    }
    if (*p != '\0' && *p != '/')
        return -1;
    const char *path_src = *p == '/' ? p : "/";
    if (strlen(path_src) >= path_len || strpbrk(path_src, " \r\n") != NULL)
        return -1;
    strcpy(path, path_src);
    return 0;
}

/* Waits for `events` on fd until the deadline; 1 when ready, 0 on timeout or error. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - mono();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {fd, events, 0};
        int r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

int srv_healthcheck_get(const char *url, double seconds)
{
    char host[128], path[1024];
    int port;
    if (srv_healthcheck_parse_url(url, host, sizeof(host), &port, path, sizeof(path)) != 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    const char *a = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, a, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*a6);
    } else {
        return -1;
    }
    double deadline = mono() + seconds;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int status = -1;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        goto out;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int soerr = 0;
        socklen_t el = sizeof(soerr);
        if (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, deadline) ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr != 0)
            goto out;
    }
    char req[1400];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: hilanderd-healthcheck\r\n\r\n",
                     path, host);
    for (int off = 0; off < n;) {
        if (!wait_fd(fd, POLLOUT, deadline))
            goto out;
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            goto out;
        off += w > 0 ? (int)w : 0;
    }
    char line[64];
    size_t got = 0;
    while (got < sizeof(line) - 1 && memchr(line, '\n', got) == NULL) {
        if (!wait_fd(fd, POLLIN, deadline))
            goto out;
        ssize_t r = recv(fd, line + got, sizeof(line) - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            goto out;
        got += r > 0 ? (size_t)r : 0;
    }
    line[got] = '\0';
    int code;
    if (sscanf(line, "HTTP/1.%*1[01] %3d", &code) == 1 && code >= 100 && code <= 599)
        status = code;
out:
    close(fd);
    return status;
}

int srv_healthcheck_main(int argc, char **argv, char **envp)
{
    char url[1400];
    if (argc > 3) {
        fprintf(stderr, "usage: hilanderd --healthcheck [http://HOST:PORT/PATH]\n");
        return 1;
    }
    if (argc == 3) {
        snprintf(url, sizeof(url), "%s", argv[2]);
    } else {
        static srv_config cfg; /* the server's own address, from the environment */
        char msg[512];
        char *argv0[] = {argv[0], NULL};
        if (srv_config_parse(1, argv0, envp, 1, &cfg, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "hilanderd --healthcheck: %s\n", msg);
            return 1;
        }
        const char *h = cfg.listen;
        if (strcmp(h, "0.0.0.0") == 0)
            h = "127.0.0.1";
        else if (strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0)
            h = "::1";
        int v6 = strchr(h, ':') != NULL && h[0] != '[';
        snprintf(url, sizeof(url), "http://%s%s%s:%d/livez", v6 ? "[" : "", h, v6 ? "]" : "",
                 cfg.port);
    }
    int status = srv_healthcheck_get(url, 3.0);
    if (status == 200)
        return 0;
    if (status < 0)
        fprintf(stderr, "hilanderd --healthcheck: %s: no answer\n", url);
    else
        fprintf(stderr, "hilanderd --healthcheck: %s: HTTP %d\n", url, status);
    return 1;
}

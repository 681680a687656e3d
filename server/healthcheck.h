/*
 * healthcheck.h - `hilanderd --healthcheck [URL]`: one HTTP GET with a deadline, for container
 * HEALTHCHECKs in images that carry no curl. Exit code 0 when the answer is 200, else 1.
 *
 * URL is http://HOST[:PORT][/PATH] with HOST an IPv4 literal, [IPv6] or localhost (no name
 * resolution: the check talks to this host). Without URL the check asks /livez of the address
 * the server itself would use (HILANDER_LISTEN, HILANDER_PORT or their defaults; a wildcard
 * listen address 0.0.0.0 or :: is asked on 127.0.0.1 or ::1).
 */
#ifndef SRV_HEALTHCHECK_H
#define SRV_HEALTHCHECK_H

/** Splits url into host, port and path. Returns 0, or -1 when it is not of the form above. */
int srv_healthcheck_parse_url(const char *url, char *host, unsigned long host_len, int *port,
                              char *path, unsigned long path_len);

/** GETs url with a total deadline of `seconds`; returns the HTTP status, or -1 on any
 * failure (bad URL, refused, timed out, not HTTP). */
int srv_healthcheck_get(const char *url, double seconds);

/** The whole mode: argv after "--healthcheck" (url or nothing). Returns the exit code. */
int srv_healthcheck_main(int argc, char **argv, char **envp);

#endif

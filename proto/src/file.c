/*
 * file.c - whole-file read and atomic write; see hl/file.h.
 *
 * POSIX I/O (open/read/fsync/rename) is used directly: stdio cannot fsync, and reading
 * through a file descriptor lets us size the buffer from fstat() for regular files while
 * still reading pipes and /proc files, whose size is unknown, to their end.
 */
#define _POSIX_C_SOURCE 200809L

#include "hl/file.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* strerror() may share a static buffer between threads; strerror_r (XSI) does not. */
static const char *errno_text(int e, char *buf, size_t cap)
{
    if (strerror_r(e, buf, cap) != 0)
        (void)snprintf(buf, cap, "error %d", e);
    return buf;
}

static hl_status io_error(hl_error *err, const char *what, const char *path, int e)
{
    char text[96];
    return hl_error_set(err, HL_IO, NULL, "cannot %s '%s': %s", what, path,
                        errno_text(e, text, sizeof(text)));
}

/* Grows *buf to at least `need` bytes (doubling); HL_NOMEM when that is impossible. */
static hl_status grow(unsigned char **buf, size_t *cap, size_t need)
{
    size_t ncap = *cap > 0 ? *cap : 4096;
    while (ncap < need) {
        if (hl_mul_size(ncap, 2, &ncap) != HL_OK) {
            ncap = need;
            break;
        }
    }
    unsigned char *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return HL_NOMEM;
    *buf = nb;
    *cap = ncap;
    return HL_OK;
}

static hl_status read_all(int fd, const char *path, size_t hint, void **out, size_t *len,
                          hl_error *err)
{
    /* One byte more than the expected size, so EOF is seen without a second growth. */
    size_t cap = 0, used = 0;
    unsigned char *buf = NULL;
    if (hl_add_size(hint, 1, &cap) != HL_OK || (buf = malloc(cap)) == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory reading '%s' (%zu bytes)", path,
                            hint);
    for (;;) {
        if (used == cap) {
            size_t need;
            if (hl_add_size(used, 1, &need) != HL_OK || grow(&buf, &cap, need) != HL_OK) {
                free(buf);
                return hl_error_set(err, HL_NOMEM, NULL, "out of memory reading '%s'", path);
            }
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return io_error(err, "read", path, e);
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    *out = buf;
    *len = used;
    return HL_OK;
}

hl_status hl_file_read(const char *path, void **out, size_t *len, hl_error *err)
{
    *out = NULL;
    *len = 0;
    if (path == NULL)
        return hl_error_set(err, HL_INVAL, "path", "no file name given");
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return io_error(err, "open", path, errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        (void)close(fd);
        return io_error(err, "stat", path, e);
    }
    if (S_ISDIR(st.st_mode)) {
        (void)close(fd);
        return io_error(err, "read", path, EISDIR);
    }
    size_t hint = 0;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uintmax_t)st.st_size >= (uintmax_t)SIZE_MAX) {
            (void)close(fd);
            return hl_error_set(err, HL_NOMEM, NULL, "'%s' is too large to read into memory", path);
        }
        hint = (size_t)st.st_size;
    }
    hl_status st2 = read_all(fd, path, hint, out, len, err);
    (void)close(fd);
    return st2;
}

/* Writes all of data, retrying short writes and EINTR. Returns 0 or an errno value. */
static int write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        data += (size_t)w;
        len -= (size_t)w;
    }
    return 0;
}

/* Makes a rename in the directory of `path` durable. Failure is not fatal: some file
 * systems refuse fsync on directories, and the data itself was already synced. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else if ((dir = malloc((size_t)(slash - path) + 1)) != NULL) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    if (dir == NULL)
        return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        (void)close(fd);
    }
    free(dir);
}

/* Creates a fresh temporary file next to `path`; its name goes into tmp (cap bytes). */
static int open_temp(const char *path, char *tmp, size_t cap)
{
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1u);
        (void)snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), n);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || (errno != EEXIST && errno != EINTR))
            return fd;
    }
    errno = EEXIST;
    return -1;
}

hl_status hl_file_write(const char *path, const void *data, size_t len, hl_error *err)
{
    if (path == NULL || (data == NULL && len > 0))
        return hl_error_set(err, HL_INVAL, "path", "no file name or data given");
    size_t cap;
    if (hl_add_size(strlen(path), 48, &cap) != HL_OK)
        return hl_error_set(err, HL_INVAL, "path", "file name too long");
    char *tmp = malloc(cap);
    if (tmp == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory writing '%s'", path);
    hl_status st = HL_OK;
    int fd = open_temp(path, tmp, cap);
    if (fd < 0) {
        st = io_error(err, "create a temporary file for", path, errno);
        free(tmp);
        return st;
    }
    int e = write_all(fd, data, len);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0)
        st = io_error(err, "write", path, e);
    else if (rename(tmp, path) != 0)
        st = io_error(err, "replace", path, errno);
    if (st != HL_OK)
        (void)unlink(tmp);
    else
        sync_parent_dir(path);
    free(tmp);
    return st;
}

hl_status hl__error_wrap(hl_error *dst, const hl_error *src, const char *path)
{
    if (dst == NULL || dst->code != HL_OK)
        return src->code;
    (void)hl_error_set(dst, src->code, src->field[0] != '\0' ? src->field : NULL, "%s: %s", path,
                       src->msg);
    dst->offset = src->offset;
    dst->col = src->col;
    dst->has_offset = src->has_offset;
    dst->has_col = src->has_col;
    return src->code;
}

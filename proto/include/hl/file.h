/*
 * hl/file.h - whole-file reads and atomic whole-file writes, for the file formats in proto.
 *
 *     void *buf; size_t len;
 *     if (hl_file_read("x.npy", &buf, &len, &err) == HL_OK) { ...; free(buf); }
 *     hl_file_write("model.hlm", data, n, &err);   // readers see the old or the new file
 *
 * Ownership: hl_file_read returns a malloc'd buffer the caller frees with free().
 * Thread-safety: reentrant; concurrent writers of the same path each rename a private
 * temporary file, so the last rename wins and no reader sees a partial file.
 */
#ifndef HL_FILE_H
#define HL_FILE_H

#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Reads a whole file (regular or not, of any size) into a new malloc'd buffer: *out (never
 * NULL on success, even for an empty file) and *len. Returns HL_IO with a message naming
 * the path and the system error, HL_NOMEM when the file does not fit in memory.
 */
hl_status hl_file_read(const char *path, void **out, size_t *len, hl_error *err);

/**
 * Writes `len` bytes to `path` atomically: a temporary file in the same directory is
 * written, fsync'ed and renamed over `path`, then the directory is fsync'ed (best effort).
 * The new file's mode is 0666 minus the umask. On error the temporary file is removed and
 * `path` is untouched. Returns HL_IO (message names the path), HL_NOMEM, HL_INVAL.
 */
hl_status hl_file_write(const char *path, const void *data, size_t len, hl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HL_FILE_H */

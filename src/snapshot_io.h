/*
 * snapshot_io.h — the constants of the snapshot file format and its
 * checksum, shared by snapshot_io.c, the format's tests and its fuzzer
 * (which writes valid checksums into mutated inputs, so that the checks
 * behind the checksum get exercised).  docs/design.md, "Snapshot file
 * format", gives the layout field by field.
 */
#ifndef OBJMEM_SNAPSHOT_IO_H
#define OBJMEM_SNAPSHOT_IO_H

#include <stddef.h>
#include <stdint.h>

/* 0x89 is not 7-bit text, and CR LF is changed by any text-mode transfer
 * (either way), so a mangled file fails at its first 8 bytes. */
#define OM_SNAPFILE_MAGIC "\x89OMSNP\r\n"
#define OM_SNAPFILE_MAGIC_SIZE 8
/* The one version this library writes and reads.  Any change to the
 * layout bumps it; readers reject versions above their own. */
#define OM_SNAPFILE_VERSION 1
/* magic, version, flags, traceback_limit, the three u32 counts (strings,
 * frames, tracebacks) and the u64 count of traces. */
#define OM_SNAPFILE_HEADER_SIZE 40
/* The FNV-1a 64 of every byte before it, the file's last 8 bytes. */
#define OM_SNAPFILE_CHECKSUM_SIZE 8
#define OM_SNAPFILE_FNV_BASIS 0xcbf29ce484222325ull

/* FNV-1a 64 of n bytes, continuing from h (OM_SNAPFILE_FNV_BASIS to
 * start).  Each step is a bijection of the state, so the checksum catches
 * every change confined to one byte (every single-bit flip among them),
 * with no table to carry. */
uint64_t om_snapfile_fnv(uint64_t h, const void *data, size_t n);

#endif /* OBJMEM_SNAPSHOT_IO_H */

/* SPDX-License-Identifier: MIT */
/*
 * Private interfaces of the profiler: the protobuf encoder, the pprof
 * profile builder, and file output shared by the CPU, goroutine and heap
 * profiles.
 */
#ifndef GOC_PROF_PRIVATE_H
#define GOC_PROF_PRIVATE_H

#include "goc/prof.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- protobuf encoder (pb.c) ------------------------------------------ */

/* A growing output buffer; after an allocation failure it only counts. */
struct goc__pb {
    uint8_t *buf;
    size_t len, cap;
    bool oom;
};

void goc__pb_free(struct goc__pb *pb);
/* Raw bytes, no tag (also the text forms' buffer). */
void goc__pb_raw(struct goc__pb *pb, const void *p, size_t n);
void goc__pb_varint(struct goc__pb *pb, uint64_t v);
/* Field tag with a varint value (uint64, int64 and bool fields). */
void goc__pb_uint(struct goc__pb *pb, int tag, uint64_t v);
/* As goc__pb_uint, omitted when zero (the protobuf default). */
void goc__pb_uint_opt(struct goc__pb *pb, int tag, uint64_t v);
/* Length-delimited field: a string or bytes. */
void goc__pb_bytes(struct goc__pb *pb, int tag, const void *p, size_t n);
/* Packed repeated varints. */
void goc__pb_packed(struct goc__pb *pb, int tag, const uint64_t *v, int n);
/* A nested message: mark = start(), write its fields, end(tag, mark). */
size_t goc__pb_start(struct goc__pb *pb);
void goc__pb_end(struct goc__pb *pb, int tag, size_t mark);

/* ---- a map from 64-bit keys to 32-bit values (pb.c) -------------------- */

struct goc__u64map {
    uint64_t *keys; /* 0 = empty slot, so 0 is not a valid key */
    uint32_t *vals;
    size_t cap, n;
};

/* The value for key, or 0 if absent. */
uint32_t goc__u64map_get(const struct goc__u64map *m, uint64_t key);
/* Insert or replace; false on allocation failure. */
bool goc__u64map_put(struct goc__u64map *m, uint64_t key, uint32_t val);
void goc__u64map_free(struct goc__u64map *m);
uint64_t goc__hash64(const void *p, size_t n);

/* ---- the profile builder (profile.c) ---------------------------------- */

struct goc__profile;

/* A builder with the process's executable mappings; NULL if no memory. */
struct goc__profile *goc__profile_new(void);
void goc__profile_free(struct goc__profile *p);
/* Index of s in the string table (added once). */
int64_t goc__profile_str(struct goc__profile *p, const char *s);
void goc__profile_sample_type(struct goc__profile *p,
                              const char *type,
                              const char *unit);
void goc__profile_period(struct goc__profile *p,
                         const char *type,
                         const char *unit,
                         int64_t period);
void goc__profile_default_type(struct goc__profile *p, const char *type);
void goc__profile_comment(struct goc__profile *p, const char *text);
void goc__profile_time(struct goc__profile *p, int64_t start, int64_t dur);
/*
 * One sample: pcs are return addresses, innermost first (the call is the
 * byte before each); a pc below 4096 is a pseudo-frame named by
 * goc__prof_pseudo_name(). label_key NULL means no label.
 */
void goc__profile_sample(struct goc__profile *p,
                         void *const *pcs,
                         int npc,
                         const int64_t *vals,
                         int nvals,
                         const char *label_key,
                         const char *label_val);
/* Finish the message, gzip it (if built with zlib) and write it to fd.
 * 0 or a negative error. */
int goc__profile_write(struct goc__profile *p, int fd);

/* Pseudo-frames: a stack made of one such pc names what it stands for. */
#define GOC__PC_LOST ((void *)1) /* samples dropped, ring full */
const char *goc__prof_pseudo_name(const void *pc);

/* ---- output (profile.c) ------------------------------------------------ */

/* "func+0xoff\tmodule" for a return address, for the text forms. */
void goc__prof_frame_text(const void *pc, char *buf, size_t n);
/* Append printf-style text to a buffer (the legacy text forms). */
void goc__pb_printf(struct goc__pb *pb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Text form of a stack: " @ pc pc...\n" then one "#\tpc\tframe" line each. */
void goc__prof_text_stack(struct goc__pb *pb, void *const *pcs, int npc);
/* The memory map section that ends a text form ("--- Memory map: ---" and
 * /proc/self/maps): pprof needs it to name the addresses of a program
 * built as PIE, and of shared libraries. */
void goc__prof_text_maps(struct goc__pb *pb);
/* write() all of buf; 0 or -errno. */
int goc__prof_write_all(int fd, const void *buf, size_t n);
/* Open path for writing a profile; the fd or -errno. */
int goc__prof_open(const char *path);
/* Close fd; err if err is already set, else 0 or close's -errno. */
int goc__prof_close(int fd, int err);
/* The *_file calls: open @path, @write(@obj, fd, @debug), close; what
 * @write returned, or the first error of the three. */
int goc__prof_to_file(const char *path,
                      int (*write)(void *obj, int fd, int debug),
                      void *obj,
                      int debug);

/* ---- the heap profiling library's interface (heapprof.c) --------------- */

#define GOC__HEAPPROF_FRAMES 32

/* One allocation stack with its sampled totals (raw, unscaled). */
struct goc__heap_record {
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    int npc;
    void *pcs[GOC__HEAPPROF_FRAMES];
};

struct goc__heapprof_iface {
    int version; /* 1; 2 adds walk; 3 adds sample_rate */
    int64_t (*get_rate)(void);
    void (*set_rate)(int64_t bytes);
    /* Copy out up to max records; the number there are in all. */
    int (*records)(struct goc__heap_record *out, int max);
    /* Sampled allocations that found no room in the tables. */
    uint64_t (*dropped)(void);
    /* How its stack walks read frames: GOC_PROF_WALK_*. */
    int (*walk)(void);
    /* The rate the latest samples were taken at: the last rate that was
     * not 0, so a profile written after sampling stopped is scaled right. */
    int64_t (*sample_rate)(void);
};

/* Defined by libgoc_heapprof; looked up by libgoc. */
GOC_API const struct goc__heapprof_iface *goc_heapprof_iface(void);

#endif /* GOC_PROF_PRIVATE_H */

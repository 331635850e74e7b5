/* SPDX-License-Identifier: MIT */
/*
 * The pprof profile builder: a string table (index 0 is ""), locations
 * deduplicated by address, functions deduplicated by name, and the
 * process's executable mappings from /proc/self/maps with the main
 * program first. Functions are named here, from the symbol tables, so
 * `go tool pprof` needs neither the binaries nor addr2line.
 *
 * Samples, locations and functions are encoded as they come; the
 * mappings and the string table at the end, since protobuf lets repeated
 * fields interleave.
 */
#include "prof.h"
#include "../runtime/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#if defined(GOC_HAVE_ZLIB)
#include <zlib.h>
#endif

#define MAX_MAPPINGS 128

/* profile.proto field numbers (github.com/google/pprof proto/profile.proto). */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,
    SAMPLE_LOCATION = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,
    LABEL_KEY = 1,
    LABEL_STR = 2,
    MAPPING_ID = 1,
    MAPPING_START = 2,
    MAPPING_LIMIT = 3,
    MAPPING_OFFSET = 4,
    MAPPING_FILENAME = 5,
    MAPPING_HAS_FUNCTIONS = 7,
    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4,
};

struct mapping {
    uintptr_t start, limit, offset;
    int64_t file; /* string index */
    bool unnamed; /* some location in it has no symbol */
};

/* What tells functions apart: same-named static functions of different
 * files (or modules) have different start addresses. */
struct fkey {
    int64_t name; /* string index */
    uintptr_t start;
};

struct goc__profile {
    struct goc__pb pb;
    char **strs;
    size_t nstr, capstr;
    struct goc__u64map strmap; /* hash of a string -> index + 1 */
    struct goc__u64map locs;   /* address -> location id */
    struct goc__u64map funcs;  /* hash of (name, start) -> function id */
    struct goc__u64map names;  /* name's string index + 1 -> functions */
    struct fkey *fkeys;        /* by function id - 1 */
    size_t capfkeys;
    uint32_t nloc, nfunc;
    struct mapping maps[MAX_MAPPINGS];
    int nmaps;
    bool oom;
};

int64_t goc__profile_str(struct goc__profile *p, const char *s)
{
    uint64_t h = goc__hash64(s, strlen(s)) | 1;
    uint32_t at = goc__u64map_get(&p->strmap, h);
    if (at && strcmp(p->strs[at - 1], s) == 0)
        return at - 1;
    if (p->nstr == p->capstr) {
        size_t cap = p->capstr ? p->capstr * 2 : 64;
        char **strs = realloc(p->strs, cap * sizeof(*strs));
        if (!strs) {
            p->oom = true;
            return 0;
        }
        p->strs = strs;
        p->capstr = cap;
    }
    char *copy = strdup(s);
    if (!copy) {
        p->oom = true;
        return 0;
    }
    p->strs[p->nstr++] = copy;
    /* A hash collision leaves the older string in the map: the newer one
     * is then stored again each time, which pprof accepts. */
    if (!at && !goc__u64map_put(&p->strmap, h, (uint32_t)p->nstr))
        p->oom = true;
    return (int64_t)p->nstr - 1;
}

/* Split one /proc/self/maps line; only executable file mappings count. */
static void add_mapping(struct goc__profile *p, const char *line)
{
    unsigned long start, end, off;
    char perms[8];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &start, &end, perms, &off,
               &path_at) < 4 ||
        !path_at || perms[2] != 'x' || line[path_at] != '/' ||
        p->nmaps == MAX_MAPPINGS)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s", line + path_at);
    path[strcspn(path, "\n")] = '\0';
    p->maps[p->nmaps++] = (struct mapping){
        .start = start,
        .limit = end,
        .offset = off,
        .file = goc__profile_str(p, path),
    };
}

/* pprof takes the first mapping for the main program: move it there. */
static void main_first(struct goc__profile *p)
{
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    for (int i = 0; i < p->nmaps; i++) {
        if (strcmp(p->strs[p->maps[i].file], exe) != 0)
            continue;
        struct mapping m = p->maps[i];
        memmove(&p->maps[1], &p->maps[0], (size_t)i * sizeof(m));
        p->maps[0] = m;
        return;
    }
}

static void load_mappings(struct goc__profile *p)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f))
        add_mapping(p, line);
    fclose(f);
    main_first(p);
}

struct goc__profile *goc__profile_new(void)
{
    struct goc__profile *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    goc__profile_str(p, "");
    load_mappings(p);
    if (p->oom) {
        goc__profile_free(p);
        return NULL;
    }
    return p;
}

void goc__profile_free(struct goc__profile *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nstr; i++)
        free(p->strs[i]);
    free(p->strs);
    goc__pb_free(&p->pb);
    goc__u64map_free(&p->strmap);
    goc__u64map_free(&p->locs);
    goc__u64map_free(&p->funcs);
    goc__u64map_free(&p->names);
    free(p->fkeys);
    free(p);
}

static void value_type(struct goc__profile *p,
                       int tag,
                       const char *type,
                       const char *unit)
{
    int64_t t = goc__profile_str(p, type), u = goc__profile_str(p, unit);
    size_t mark = goc__pb_start(&p->pb);
    goc__pb_uint(&p->pb, VALUE_TYPE_TYPE, (uint64_t)t);
    goc__pb_uint(&p->pb, VALUE_TYPE_UNIT, (uint64_t)u);
    goc__pb_end(&p->pb, tag, mark);
}

void goc__profile_sample_type(struct goc__profile *p,
                              const char *type,
                              const char *unit)
{
    value_type(p, PROFILE_SAMPLE_TYPE, type, unit);
}

void goc__profile_period(struct goc__profile *p,
                         const char *type,
                         const char *unit,
                         int64_t period)
{
    value_type(p, PROFILE_PERIOD_TYPE, type, unit);
    goc__pb_uint(&p->pb, PROFILE_PERIOD, (uint64_t)period);
}

void goc__profile_default_type(struct goc__profile *p, const char *type)
{
    goc__pb_uint(&p->pb, PROFILE_DEFAULT_SAMPLE_TYPE,
                 (uint64_t)goc__profile_str(p, type));
}

void goc__profile_comment(struct goc__profile *p, const char *text)
{
    goc__pb_uint(&p->pb, PROFILE_COMMENT, (uint64_t)goc__profile_str(p, text));
}

void goc__profile_time(struct goc__profile *p, int64_t start, int64_t dur)
{
    goc__pb_uint(&p->pb, PROFILE_TIME_NANOS, (uint64_t)start);
    goc__pb_uint(&p->pb, PROFILE_DURATION_NANOS, (uint64_t)dur);
}

const char *goc__prof_pseudo_name(const void *pc)
{
    return pc == GOC__PC_LOST ? "goc_prof_lost_samples" : "goc_prof_unknown";
}

/* Function name (no offset), start address and module of the code at a
 * return address. The start is pc itself where no symbol is known. */
static uintptr_t name_of(
    const void *pc, char *name, size_t n, char *mod, size_t mn)
{
    goc__symbolize(pc, name, n);
    char *plus = strstr(name, "+0x");
    char *paren = strstr(name, " (");
    uintptr_t start = (uintptr_t)pc;
    if (plus) {
        start -= (uintptr_t)strtoull(plus + 3, NULL, 16);
        *plus = '\0';
    } else if (paren && name[0] == '0' && name[1] == 'x') {
        *paren = '\0';
    }
    Dl_info info;
    mod[0] = '\0';
    if (!dladdr((const char *)pc - 1, &info) || !info.dli_fname)
        return start;
    /* The kernel's vDSO has a relative name too, but is no file. */
    if (info.dli_fbase == (void *)getauxval(AT_SYSINFO_EHDR)) {
        snprintf(mod, mn, "[vdso]");
        return start;
    }
    /* The main program may be named relative to the start directory. */
    ssize_t len = -1;
    if (info.dli_fname[0] != '/')
        len = readlink("/proc/self/exe", mod, mn - 1);
    if (len > 0)
        mod[len] = '\0';
    else
        snprintf(mod, mn, "%s", info.dli_fname);
    return start;
}

/* Remember the key of function id; false if no memory. */
static bool fkey_add(struct goc__profile *p, uint32_t id, struct fkey k)
{
    if (id > p->capfkeys) {
        size_t cap = p->capfkeys ? p->capfkeys * 2 : 256;
        struct fkey *f = realloc(p->fkeys, cap * sizeof(*f));
        if (!f)
            return false;
        p->fkeys = f;
        p->capfkeys = cap;
    }
    p->fkeys[id - 1] = k;
    return true;
}

static uint64_t mapping_of(struct goc__profile *p, uintptr_t addr)
{
    for (int i = 0; i < p->nmaps; i++)
        if (addr >= p->maps[i].start && addr < p->maps[i].limit)
            return (uint64_t)i + 1;
    return 0;
}

/*
 * The name pprof shows for a new function k: its own, unless a function
 * met before has it too (static functions of different files): then
 * "name@module+0xoffset", since pprof merges functions by name in most
 * views. The plain name stays the function's system name.
 */
static int64_t shown_name(struct goc__profile *p,
                          struct fkey k,
                          const char *name,
                          const char *mod)
{
    uint64_t key = (uint64_t)k.name + 1;
    uint32_t seen = goc__u64map_get(&p->names, key);
    if (!goc__u64map_put(&p->names, key, seen + 1))
        p->oom = true;
    if (!seen)
        return k.name;
    uintptr_t base = 0;
    uint64_t m = mapping_of(p, k.start);
    if (m)
        base = p->maps[m - 1].start - p->maps[m - 1].offset;
    const char *file = strrchr(mod, '/');
    char buf[600];
    snprintf(buf, sizeof(buf), "%s@%s+0x%lx", name, file ? file + 1 : mod,
             (unsigned long)(k.start - base));
    return goc__profile_str(p, buf);
}

/* The function of the code at pc; 0 if no symbol names it. */
static uint32_t function_id(struct goc__profile *p, const void *pc)
{
    char name[256], mod[256];
    struct fkey k = { 0, (uintptr_t)pc };
    if ((uintptr_t)pc < 4096) {
        snprintf(name, sizeof(name), "%s", goc__prof_pseudo_name(pc));
        mod[0] = '\0';
    } else {
        k.start = name_of(pc, name, sizeof(name), mod, sizeof(mod));
        if (name[0] == '0' && name[1] == 'x')
            return 0;
    }
    k.name = goc__profile_str(p, name);
    uint64_t h = goc__hash64(&k, sizeof(k)) | 1;
    uint32_t id = goc__u64map_get(&p->funcs, h);
    if (id && p->fkeys[id - 1].name == k.name &&
        p->fkeys[id - 1].start == k.start)
        return id;
    bool indexed = id == 0; /* after a hash collision: a new, unindexed id */
    id = ++p->nfunc;
    int64_t smod = goc__profile_str(p, mod);
    if (!fkey_add(p, id, k) || (indexed && !goc__u64map_put(&p->funcs, h, id)))
        p->oom = true;
    int64_t shown = shown_name(p, k, name, mod);
    size_t mark = goc__pb_start(&p->pb);
    goc__pb_uint(&p->pb, FUNCTION_ID, id);
    goc__pb_uint(&p->pb, FUNCTION_NAME, (uint64_t)shown);
    goc__pb_uint(&p->pb, FUNCTION_SYSTEM_NAME, (uint64_t)k.name);
    goc__pb_uint_opt(&p->pb, FUNCTION_FILENAME, (uint64_t)smod);
    goc__pb_end(&p->pb, PROFILE_FUNCTION, mark);
    return id;
}

static uint32_t location_id(struct goc__profile *p, void *pc)
{
    uint32_t id = goc__u64map_get(&p->locs, (uint64_t)(uintptr_t)pc);
    if (id)
        return id;
    uint32_t fn = function_id(p, pc);
    id = ++p->nloc;
    if (!goc__u64map_put(&p->locs, (uint64_t)(uintptr_t)pc, id))
        p->oom = true;
    /* The address is the call instruction's, inside the function. */
    uintptr_t addr = (uintptr_t)pc < 4096 ? 0 : (uintptr_t)pc - 1;
    uint64_t map = mapping_of(p, addr);
    size_t mark = goc__pb_start(&p->pb);
    goc__pb_uint(&p->pb, LOCATION_ID, id);
    goc__pb_uint_opt(&p->pb, LOCATION_MAPPING_ID, map);
    goc__pb_uint_opt(&p->pb, LOCATION_ADDRESS, addr);
    if (fn) {
        size_t line = goc__pb_start(&p->pb);
        goc__pb_uint(&p->pb, LINE_FUNCTION_ID, fn);
        goc__pb_end(&p->pb, LOCATION_LINE, line);
    } else if (map) {
        /* No symbol here (a stripped module): the address alone, and a
         * mapping that does not claim to be symbolised, so that pprof
         * names it from the binary it is given. */
        p->maps[map - 1].unnamed = true;
    }
    goc__pb_end(&p->pb, PROFILE_LOCATION, mark);
    return id;
}

void goc__profile_sample(struct goc__profile *p,
                         void *const *pcs,
                         int npc,
                         const int64_t *vals,
                         int nvals,
                         const char *label_key,
                         const char *label_val)
{
    uint64_t ids[GOC_PROF_MAX_FRAMES], v[8];
    if (npc > GOC_PROF_MAX_FRAMES)
        npc = GOC_PROF_MAX_FRAMES;
    for (int i = 0; i < npc; i++)
        ids[i] = location_id(p, pcs[i]);
    for (int i = 0; i < nvals && i < 8; i++)
        v[i] = (uint64_t)vals[i];
    int64_t key = label_key ? goc__profile_str(p, label_key) : 0;
    int64_t val = label_key ? goc__profile_str(p, label_val) : 0;
    size_t mark = goc__pb_start(&p->pb);
    goc__pb_packed(&p->pb, SAMPLE_LOCATION, ids, npc);
    goc__pb_packed(&p->pb, SAMPLE_VALUE, v, nvals < 8 ? nvals : 8);
    if (label_key) {
        size_t lab = goc__pb_start(&p->pb);
        goc__pb_uint(&p->pb, LABEL_KEY, (uint64_t)key);
        goc__pb_uint(&p->pb, LABEL_STR, (uint64_t)val);
        goc__pb_end(&p->pb, SAMPLE_LABEL, lab);
    }
    goc__pb_end(&p->pb, PROFILE_SAMPLE, mark);
}

static void finish(struct goc__profile *p)
{
    for (int i = 0; i < p->nmaps; i++) {
        const struct mapping *m = &p->maps[i];
        size_t mark = goc__pb_start(&p->pb);
        goc__pb_uint(&p->pb, MAPPING_ID, (uint64_t)i + 1);
        goc__pb_uint(&p->pb, MAPPING_START, m->start);
        goc__pb_uint(&p->pb, MAPPING_LIMIT, m->limit);
        goc__pb_uint_opt(&p->pb, MAPPING_OFFSET, m->offset);
        goc__pb_uint(&p->pb, MAPPING_FILENAME, (uint64_t)m->file);
        goc__pb_uint_opt(&p->pb, MAPPING_HAS_FUNCTIONS, !m->unnamed);
        goc__pb_end(&p->pb, PROFILE_MAPPING, mark);
    }
    for (size_t i = 0; i < p->nstr; i++)
        goc__pb_bytes(&p->pb, PROFILE_STRING_TABLE, p->strs[i],
                      strlen(p->strs[i]));
}

#if defined(GOC_HAVE_ZLIB)
/* gzip (deflate with a gzip header: windowBits 16 + 15) and write. */
static int write_gzip(int fd, const uint8_t *data, size_t len)
{
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong cap = deflateBound(&z, (uLong)len);
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    int err = zr == Z_STREAM_END ? goc__prof_write_all(fd, out, n) : -ENOMEM;
    free(out);
    return err;
}
#endif

int goc__profile_write(struct goc__profile *p, int fd)
{
    finish(p);
    if (p->oom || p->pb.oom)
        return -ENOMEM;
#if defined(GOC_HAVE_ZLIB)
    return write_gzip(fd, p->pb.buf, p->pb.len);
#else
    /* Without zlib: plain protobuf, which pprof reads as well. */
    return goc__prof_write_all(fd, p->pb.buf, p->pb.len);
#endif
}

/* ---- output -------------------------------------------------------------- */

void goc__prof_frame_text(const void *pc, char *buf, size_t n)
{
    if ((uintptr_t)pc < 4096) {
        snprintf(buf, n, "%s", goc__prof_pseudo_name(pc));
        return;
    }
    char sym[256], name[256], mod[256];
    goc__symbolize(pc, sym, sizeof(sym));
    name_of(pc, name, sizeof(name), mod, sizeof(mod));
    snprintf(buf, n, "%s\t%s", sym, mod);
}

void goc__pb_printf(struct goc__pb *pb, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        goc__pb_raw(pb, line,
                    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void goc__prof_text_stack(struct goc__pb *pb, void *const *pcs, int npc)
{
    goc__pb_printf(pb, " @");
    for (int i = 0; i < npc; i++)
        goc__pb_printf(pb, " %#lx", (unsigned long)(uintptr_t)pcs[i]);
    goc__pb_printf(pb, "\n");
    for (int i = 0; i < npc; i++) {
        char frame[600];
        goc__prof_frame_text(pcs[i], frame, sizeof(frame));
        goc__pb_printf(pb, "#\t%#lx\t%s\n", (unsigned long)(uintptr_t)pcs[i],
                       frame);
    }
    goc__pb_printf(pb, "\n");
}

void goc__prof_text_maps(struct goc__pb *pb)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* no /proc: the addresses stay as they are */
    goc__pb_printf(pb, "\n--- Memory map: ---\n");
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            goc__pb_raw(pb, buf, (size_t)n);
    close(fd);
}

int goc__prof_write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int goc__prof_open(const char *path)
{
    if (!path)
        return -EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int goc__prof_close(int fd, int err)
{
    /* A close error can be the first sign of lost data (NFS, full disk). */
    int r = close(fd) < 0 ? -errno : 0;
    return err < 0 ? err : r;
}

int goc__prof_to_file(const char *path,
                      int (*write)(void *obj, int fd, int debug),
                      void *obj,
                      int debug)
{
    int fd = goc__prof_open(path);
    if (fd < 0)
        return fd;
    int r = write(obj, fd, debug);
    int err = goc__prof_close(fd, r < 0 ? r : 0);
    return err < 0 ? err : r;
}

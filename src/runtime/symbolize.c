/* SPDX-License-Identifier: MIT */
/*
 * Addresses to function names for backtraces. dladdr() knows only the
 * exported (dynamic) symbols, and for an address inside a static function
 * it names the nearest exported one before it, which misleads. So each
 * module's own symbol table (.symtab) is read once, from its file, and
 * searched for the function that contains the address; dladdr()'s name is
 * the fallback for stripped files and for files not proven to be the one
 * loaded.
 *
 * dladdr()'s file name proves nothing: the main program's is argv[0],
 * which whoever started it chose (exec -a); a library's is the name it was
 * opened by, perhaps relative to a directory since left; and the file at a
 * name may have been replaced since it was loaded. So the file is found
 * from the module's mapping: the main program's is /proc/self/exe; a
 * library's is /proc/self/map_files/<range> of a mapping of it (opening
 * that takes CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), or else the path
 * /proc/self/maps shows, if that still is the inode mapped or has the
 * module's build ID. Modules are known by their load address, not by name.
 */
#include "runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* Modules whose functions are named from their own symbol tables (those
 * beyond get dladdr()'s names: exported functions only), and entries for
 * them and for those loaded since where one was unloaded. */
#define MAX_MODULES 64
#define MAX_ENTRIES 256
#define MAX_ID      64

struct module {
    uintptr_t base;  /* dli_fbase: the start of its first mapping */
    const void *dyn; /* its dynamic section */
    /* The loader's count of modules unloaded (dlpi_subs) when the entry
     * was last known to be the module loaded at base: another, loaded
     * there since, may have the same dynamic section's address. */
    _Atomic unsigned long long subs;
    /* Which module it is: the program, or one with this build ID, or
     * else the file of this inode. */
    bool is_main;
    size_t id_len;
    unsigned char id[MAX_ID];
    unsigned long dev_major, dev_minor, ino;
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *strs;
    size_t strs_size;
};

/*
 * Entries are only ever added, and never changed once published: a lookup
 * reads the first n modules without the lock (n is published after its
 * entry), and an entry found not to be the module loaded at its address
 * now is replaced by a new one (its file stays mapped: a lookup may still
 * be reading it). The lock orders the loads and guards the buffers they
 * use.
 */
static struct {
    pthread_mutex_t mu;
    struct module entries[MAX_ENTRIES];
    int used; /* entries taken, under the lock */
    _Atomic(struct module *) mods[MAX_MODULES];
    _Atomic int n;
    _Atomic bool dying; /* a fatal report is being made */
    _Atomic bool stuck; /* and the lock was not to be had meanwhile */
    /* Too big for the goroutine stack a backtrace may be taken on. */
    char io[4096];
    char line[PATH_MAX + 128];
} cache = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* What the loader knows of the module holding addr (dl_iterate_phdr). */
struct loaded {
    uintptr_t addr;
    int index; /* of the entry being looked at: the first is the program */
    bool found, is_main;
    const ElfW(Phdr) * phdr;
    int phnum;
    uintptr_t bias;
    unsigned long long subs; /* dlpi_subs */
};

/* A line of /proc/self/maps. */
struct mapping {
    uintptr_t start, end;
    unsigned long dev_major, dev_minor, ino;
    const char *path; /* in cache.line; NULL if none or cut short */
};

enum { LOAD_OK, LOAD_NONE, LOAD_RETRY };

/* Does [off, off + len) lie within a file of @size? Without wrapping: a
 * section header is the file's word, not the loader's, and may lie. */
static bool within(uint64_t off, uint64_t len, size_t size)
{
    return off <= size && len <= size - off;
}

/* Point m at the .symtab of the mapped file; false if it has none. */
static bool find_symtab(struct module *m, const char *base, size_t size)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !within(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), size))
        return false;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *strh = &sh[sh[i].sh_link];
        /* The names must end inside the table: they are read as C
         * strings. */
        if (!within(sh[i].sh_offset, sh[i].sh_size, size) ||
            !within(strh->sh_offset, strh->sh_size, size) ||
            strh->sh_size == 0 || base[strh->sh_offset + strh->sh_size - 1])
            return false;
        m->syms = (const Elf64_Sym *)(base + sh[i].sh_offset);
        m->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
        m->strs = base + strh->sh_offset;
        m->strs_size = strh->sh_size;
        return true;
    }
    return false;
}

/* The program headers of a mapped ELF file, or NULL. */
static const Elf64_Phdr *file_phdrs(const char *base, size_t size, int *n)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) ||
        !within(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size))
        return NULL;
    *n = eh->e_phnum;
    return (const Elf64_Phdr *)(base + eh->e_phoff);
}

/* The GNU build ID among the notes at p, or NULL. */
static const char *note_build_id(const char *p,
                                 size_t size,
                                 size_t align,
                                 size_t *len)
{
    align = align == 8 ? 8 : 4;
    size_t at = 0;
    while (at + sizeof(Elf64_Nhdr) <= size) {
        const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(p + at);
        size_t name = at + sizeof(*nh);
        size_t desc = name + ((nh->n_namesz + align - 1) & ~(align - 1));
        size_t next = desc + ((nh->n_descsz + align - 1) & ~(align - 1));
        if (desc + nh->n_descsz > size || next <= at)
            return NULL;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            memcmp(p + name, "GNU", 4) == 0) {
            *len = nh->n_descsz;
            return p + desc;
        }
        at = next;
    }
    return NULL;
}

/* The build ID of the loaded module, from its notes in memory. */
static const char *loaded_build_id(const struct loaded *l, size_t *len)
{
    for (int i = 0; i < l->phnum; i++) {
        const ElfW(Phdr) *ph = &l->phdr[i];
        const char *id =
            ph->p_type != PT_NOTE
                ? NULL
                : note_build_id((const char *)(l->bias + ph->p_vaddr),
                                ph->p_memsz, ph->p_align, len);
        if (id)
            return id;
    }
    return NULL;
}

/* The build ID of a mapped file, from its notes. */
static const char *file_build_id(const char *base, size_t size, size_t *len)
{
    int n;
    const Elf64_Phdr *ph = file_phdrs(base, size, &n);
    for (int i = 0; ph && i < n; i++) {
        const char *id =
            ph[i].p_type != PT_NOTE ||
                    !within(ph[i].p_offset, ph[i].p_filesz, size)
                ? NULL
                : note_build_id(base + ph[i].p_offset, ph[i].p_filesz,
                                ph[i].p_align, len);
        if (id)
            return id;
    }
    return NULL;
}

/* Whether the file carries the loaded module's build ID. */
static bool same_build_id(const struct loaded *l, const char *base, size_t n)
{
    size_t len, flen;
    const char *id = loaded_build_id(l, &len);
    const char *fid = id ? file_build_id(base, n, &flen) : NULL;
    return fid && flen == len && memcmp(id, fid, len) == 0;
}

/* Whether the file's program headers are the loaded module's. */
static bool same_layout(const struct loaded *l, const char *base, size_t n)
{
    int fn;
    const Elf64_Phdr *ph = file_phdrs(base, n, &fn);
    return ph && fn == l->phnum &&
           memcmp(ph, l->phdr, (size_t)fn * sizeof(*ph)) == 0;
}

/* dlpi_subs, if this loader gives it. */
static unsigned long long subs_of(const struct dl_phdr_info *info, size_t size)
{
    return size >= offsetof(struct dl_phdr_info, dlpi_subs) +
                       sizeof(info->dlpi_subs)
               ? info->dlpi_subs
               : 0;
}

static int find_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct loaded *l = arg;
    bool first = l->index++ == 0;
    l->subs = subs_of(info, size);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && l->addr >= lo &&
            l->addr - lo < ph->p_memsz) {
            l->found = true;
            l->is_main = first;
            l->phdr = info->dlpi_phdr;
            l->phnum = info->dlpi_phnum;
            l->bias = info->dlpi_addr;
            return 1;
        }
    }
    return 0;
}

static unsigned long parse_num(const char **s, int radix)
{
    unsigned long v = 0;
    for (;; (*s)++) {
        int c = **s, d = c >= '0' && c <= '9'   ? c - '0'
                         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                : 99;
        if (d >= radix)
            return v;
        v = v * (unsigned long)radix + (unsigned long)d;
    }
}

/* Parse a maps line if its range holds addr; whole: not cut short. */
static bool parse_mapping(const char *s,
                          bool whole,
                          uintptr_t addr,
                          struct mapping *m)
{
    m->start = parse_num(&s, 16);
    if (*s++ != '-')
        return false;
    m->end = parse_num(&s, 16);
    if (addr < m->start || addr >= m->end)
        return false;
    for (int field = 0; field < 2; field++) { /* permissions, offset */
        s = strchr(s + 1, ' ');
        if (!s++)
            return false;
    }
    m->dev_major = parse_num(&s, 16);
    if (*s++ != ':')
        return false;
    m->dev_minor = parse_num(&s, 16);
    if (*s++ != ' ')
        return false;
    m->ino = parse_num(&s, 10);
    while (*s == ' ')
        s++;
    m->path = whole && *s == '/' ? s : NULL;
    return true;
}

/* The mapping that holds addr. Lines are read through a fixed buffer:
 * one too long for it keeps its numbers but not its path. */
static bool find_mapping(uintptr_t addr, struct mapping *m)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    bool whole = true, found = false;
    ssize_t got;
    while (!found && (got = read(fd, cache.io, sizeof(cache.io))) > 0) {
        for (ssize_t i = 0; i < got && !found; i++) {
            if (cache.io[i] != '\n') {
                if (len < sizeof(cache.line) - 1)
                    cache.line[len++] = cache.io[i];
                else
                    whole = false;
                continue;
            }
            cache.line[len] = '\0';
            found = parse_mapping(cache.line, whole, addr, m);
            len = 0;
            whole = true;
        }
    }
    close(fd);
    return found;
}

/* Whether the file open as st is the one mapped at m. */
static bool same_inode(const struct stat *st, const struct mapping *m)
{
    return major(st->st_dev) == m->dev_major &&
           minor(st->st_dev) == m->dev_minor && st->st_ino == m->ino;
}

/* Map the open file fd whole (closing fd); NULL if it cannot be. */
static char *map_file(int fd, struct stat *st)
{
    void *map = MAP_FAILED;
    if (fstat(fd, st) == 0 && st->st_size > (off_t)sizeof(Elf64_Ehdr))
        map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    return map == MAP_FAILED ? NULL : map;
}

/* A failure a later try may not meet: no entry is kept for it. */
static int failure(void)
{
    return errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
                   errno == EAGAIN || errno == EINTR
               ? LOAD_RETRY
               : LOAD_NONE;
}

/* Find m's .symtab in the mapped file, or unmap it. */
static int take(struct module *m, char *map, size_t size)
{
    if (find_symtab(m, map, size))
        return LOAD_OK;
    munmap(map, size);
    return LOAD_NONE;
}

/*
 * The main program as /proc/self/exe, unless that is another file: the
 * dynamic loader run as a command (ld.so ./program) is the exe then.
 */
static int load_main(struct module *m, const struct loaded *l)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return failure();
    struct stat st;
    char *map = map_file(fd, &st);
    if (!map)
        return failure();
    if (same_layout(l, map, (size_t)st.st_size))
        return take(m, map, (size_t)st.st_size);
    munmap(map, (size_t)st.st_size);
    return LOAD_NONE;
}

/*
 * The file mapped where addr lies: through map_files, which is that very
 * file, or by the path maps shows, if it is still that file or one built
 * identically (same build ID: the inode differs on an overlay).
 */
static int load_mapped(struct module *m, const struct loaded *l, uintptr_t addr)
{
    struct mapping mp;
    if (!find_mapping(addr, &mp))
        return failure();
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx",
             (unsigned long)mp.start, (unsigned long)mp.end);
    bool proven = true;
    int fd = open(link, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && mp.path) {
        proven = false;
        fd = open(mp.path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return mp.path ? failure() : LOAD_NONE;
    m->dev_major = mp.dev_major;
    m->dev_minor = mp.dev_minor;
    m->ino = mp.ino;
    struct stat st;
    char *map = map_file(fd, &st);
    if (!map)
        return failure();
    if (proven || same_inode(&st, &mp) ||
        same_build_id(l, map, (size_t)st.st_size))
        return take(m, map, (size_t)st.st_size);
    munmap(map, (size_t)st.st_size);
    return LOAD_NONE;
}

/* Find the file of the module holding addr and its .symtab. */
static int load(struct module *m, uintptr_t addr)
{
    m->syms = NULL;
    m->dev_major = m->dev_minor = m->ino = 0;
    struct loaded l = { .addr = addr };
    dl_iterate_phdr(find_loaded, &l);
    if (!l.found)
        return LOAD_NONE;
    atomic_store_explicit(&m->subs, l.subs, memory_order_relaxed);
    m->is_main = l.is_main;
    const char *id = loaded_build_id(&l, &m->id_len);
    if (!id)
        m->id_len = 0;
    else
        memcpy(m->id, id, m->id_len < MAX_ID ? m->id_len : MAX_ID);
    int r = l.is_main ? load_main(m, &l) : LOAD_NONE;
    return r == LOAD_OK ? r : load_mapped(m, &l, addr);
}

/* Of the first n modules, the index of the one at base, or -1. */
static int known(uintptr_t base, const void *dyn, int n)
{
    for (int i = 0; i < n; i++) {
        const struct module *m = atomic_load(&cache.mods[i]);
        if (m->base == base && m->dyn == dyn)
            return i;
    }
    return -1;
}

static int first_subs(struct dl_phdr_info *info, size_t size, void *arg)
{
    *(unsigned long long *)arg = subs_of(info, size);
    return 1;
}

/* The loader's count of modules unloaded so far. */
static unsigned long long loader_subs(void)
{
    unsigned long long subs = 0;
    dl_iterate_phdr(first_subs, &subs);
    return subs;
}

/* Whether m is the module loaded now where addr lies; if so, it is
 * known to be as of the loader's count then (under the lock). */
static bool still_loaded(struct module *m, uintptr_t addr)
{
    struct loaded l = { .addr = addr };
    dl_iterate_phdr(find_loaded, &l);
    if (!l.found)
        return false;
    size_t len = 0;
    const char *id = l.is_main ? NULL : loaded_build_id(&l, &len);
    struct mapping mp;
    bool same = l.is_main || m->is_main ? l.is_main == m->is_main
                : id || m->id_len
                    ? id && len == m->id_len &&
                          memcmp(id, m->id, len < MAX_ID ? len : MAX_ID) == 0
                    : find_mapping(addr, &mp) && mp.ino != 0 &&
                          mp.ino == m->ino && mp.dev_major == m->dev_major &&
                          mp.dev_minor == m->dev_minor;
    if (same)
        atomic_store(&m->subs, l.subs);
    return same;
}

/* The clock of the lock's deadline: one a clock step does not move, where
 * glibc can wait by it (2.30), and ThreadSanitizer knows that wait. */
#if defined(__GLIBC__) && !defined(GOC_TSAN) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define LOCK_CLOCK CLOCK_MONOTONIC
#else
#define LOCK_CLOCK CLOCK_REALTIME
#endif

void goc__symbolize_dying(void)
{
    atomic_store(&cache.dying, true);
}

/*
 * Take the loading lock, waiting 200 ms at most: the holder may be this
 * very thread, interrupted by a signal whose handler makes a backtrace,
 * or a thread gone (a child forked meanwhile). Missing it costs one
 * lookup its static names, and a slow load elsewhere, in a process that
 * goes on, must cost no more. A dying process, once it has missed the
 * lock, only tries it: its report has many frames to name.
 */
static bool lock_for_load(void)
{
    if (atomic_load(&cache.stuck))
        return pthread_mutex_trylock(&cache.mu) == 0;
    struct timespec until;
    clock_gettime(LOCK_CLOCK, &until);
    until.tv_nsec += 200 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
#if LOCK_CLOCK == CLOCK_MONOTONIC
    int r = pthread_mutex_clocklock(&cache.mu, LOCK_CLOCK, &until);
#else
    int r = pthread_mutex_timedlock(&cache.mu, &until);
#endif
    if (r == 0)
        return true;
    if (atomic_load(&cache.dying))
        atomic_store(&cache.stuck, true);
    return false;
}

/* The module at base (loaded once, and again if another is loaded there
 * since), which holds addr; NULL if it has no symbol table that is surely
 * its own. */
static struct module *module_for(uintptr_t base,
                                 const void *dyn,
                                 uintptr_t addr)
{
    /* Read before the entry: an unload after it is seen next time. */
    unsigned long long subs = loader_subs();
    int i = known(base, dyn, atomic_load(&cache.n));
    struct module *m = i < 0 ? NULL : atomic_load(&cache.mods[i]);
    if (m && atomic_load(&m->subs) == subs) /* nothing unloaded since */
        return m->syms ? m : NULL;
    if (!lock_for_load())
        return NULL;
    int n = atomic_load(&cache.n);
    i = known(base, dyn, n); /* loaded meanwhile? */
    m = i < 0 ? NULL : atomic_load(&cache.mods[i]);
    /* Not still loaded: another module is at its address; load that. */
    bool current = m && still_loaded(m, addr);
    if (!current)
        m = NULL;
    if (!current && cache.used < MAX_ENTRIES && (i >= 0 || n < MAX_MODULES)) {
        m = &cache.entries[cache.used];
        m->base = base;
        m->dyn = dyn;
        int r = load(m, addr);
        if (r != LOAD_RETRY) {
            cache.used++;
            atomic_store(&cache.mods[i >= 0 ? i : n], m); /* publishes it */
            if (i < 0)
                atomic_store(&cache.n, n + 1);
        }
        m = r == LOAD_OK ? m : NULL;
    }
    m = m && m->syms ? m : NULL;
    pthread_mutex_unlock(&cache.mu);
    return m;
}

/* The function containing off (an address less the load bias). */
static const char *lookup(const struct module *m,
                          uintptr_t off,
                          uintptr_t *start)
{
    const char *best = NULL;
    for (size_t i = 0; i < m->nsyms; i++) {
        const Elf64_Sym *s = &m->syms[i];
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_value == 0 ||
            s->st_name >= m->strs_size)
            continue;
        if (off >= s->st_value &&
            off < s->st_value + (s->st_size ? s->st_size : 1)) {
            best = m->strs + s->st_name;
            *start = s->st_value;
            break;
        }
    }
    return best;
}

/* Name the function containing addr; show pc's offset in it. */
static int symbolize_at(uintptr_t addr, const void *pc, char *buf, size_t n)
{
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1((void *)addr, &info, (void **)&lm, RTLD_DL_LINKMAP))
        return snprintf(buf, n, "%p", pc);
    struct module *m =
        lm ? module_for((uintptr_t)info.dli_fbase, lm->l_ld, addr) : NULL;
    const char *name = NULL;
    uintptr_t start = 0;
    if (m) {
        /* Symbol values are addresses before relocation by the bias
         * (0 for a program linked at fixed addresses). */
        name = lookup(m, addr - lm->l_addr, &start);
        start += lm->l_addr;
    }
    if (!name && info.dli_sname) {
        name = info.dli_sname;
        start = (uintptr_t)info.dli_saddr;
    }
    unsigned long off = (unsigned long)((uintptr_t)pc - start);
    if (name && off == 0)
        return snprintf(buf, n, "%s", name);
    if (name)
        return snprintf(buf, n, "%s+0x%lx", name, off);
    return snprintf(buf, n, "%p (%s)", pc,
                    info.dli_fname ? info.dli_fname : "?");
}

int goc__symbolize(const void *pc, char *buf, size_t n)
{
    /* A return address: the call is the byte before it. */
    return symbolize_at((uintptr_t)pc - 1, pc, buf, n);
}

int goc__symbolize_entry(const void *fn, char *buf, size_t n)
{
    return symbolize_at((uintptr_t)fn, fn, buf, n);
}

/* SPDX-License-Identifier: MIT */
/*
 * Addresses to function names for backtraces. dladdr() knows only the
 * exported (dynamic) symbols, and for an address inside a static function
 * it names the nearest exported one before it, which misleads. So each
 * module's own symbol table (.symtab) is read once, from its file, and
 * searched for the function that contains the address; dladdr() is the
 * fallback for stripped files.
 */
#include "runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODULES 16

struct module {
    char path[256];
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *strs;
    size_t strs_size;
    bool relative; /* ET_DYN: symbol values are offsets from the base */
};

/*
 * Modules are only ever added: a lookup reads the first n entries without
 * the lock (n is published after its entry is written); the lock orders
 * the loads of new modules.
 */
static struct {
    pthread_mutex_t mu;
    struct module mods[MAX_MODULES];
    _Atomic int n;
    _Atomic bool stuck; /* the lock was not to be had: a dying process */
} cache = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Point m at the .symtab of the mapped file; false if it has none. */
static bool find_symtab(struct module *m, const char *base, size_t size)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
        return false;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *strh = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size ||
            strh->sh_offset + strh->sh_size > size)
            return false;
        m->syms = (const Elf64_Sym *)(base + sh[i].sh_offset);
        m->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
        m->strs = base + strh->sh_offset;
        m->strs_size = strh->sh_size;
        m->relative = eh->e_type == ET_DYN;
        return true;
    }
    return false;
}

/* Map path and find its .symtab; false if it has none. */
static bool load(struct module *m, const char *path)
{
    snprintf(m->path, sizeof(m->path), "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return false;
    if (!find_symtab(m, map, (size_t)st.st_size)) {
        munmap(map, (size_t)st.st_size);
        return false;
    }
    return true;
}
/* Of the first n modules, the one for path, or NULL (*found: known). */
static struct module *known(const char *path, int n, bool *found)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(cache.mods[i].path, path) == 0) {
            *found = true;
            return cache.mods[i].syms ? &cache.mods[i] : NULL;
        }
    }
    *found = false;
    return NULL;
}

/*
 * Take the loading lock. A fault report may come here while another
 * thread of the dying process holds it: wait a while, and after one
 * timeout only try.
 */
static bool lock_for_load(void)
{
    if (atomic_load(&cache.stuck))
        return pthread_mutex_trylock(&cache.mu) == 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 200 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    if (pthread_mutex_timedlock(&cache.mu, &until) == 0)
        return true;
    atomic_store(&cache.stuck, true);
    return false;
}

/* The module for path (loaded once); NULL if it has no symbol table. */
static struct module *module_for(const char *path)
{
    bool found;
    struct module *m = known(path, atomic_load(&cache.n), &found);
    if (found || !lock_for_load())
        return m;
    int n = atomic_load(&cache.n);
    m = known(path, n, &found); /* loaded meanwhile? */
    if (!found && n < MAX_MODULES) {
        m = &cache.mods[n];
        if (!load(m, path))
            m->syms = NULL;
        atomic_store(&cache.n, n + 1); /* publishes the entry */
        m = m->syms ? m : NULL;
    }
    pthread_mutex_unlock(&cache.mu);
    return m;
}

/* The function containing off (a module-relative or absolute address). */
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
    if (!dladdr((void *)addr, &info))
        return snprintf(buf, n, "%p", pc);
    const char *path = info.dli_fname;
    char exe[256];
    if (!path || path[0] != '/') {
        /* The main program may be named relative to a since-changed
         * directory: its own link is reliable. */
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (len > 0) {
            exe[len] = '\0';
            path = exe;
        }
    }
    struct module *m = path ? module_for(path) : NULL;
    const char *name = NULL;
    uintptr_t start = 0;
    if (m) {
        uintptr_t off = m->relative ? addr - (uintptr_t)info.dli_fbase : addr;
        name = lookup(m, off, &start);
        if (name && m->relative)
            start += (uintptr_t)info.dli_fbase;
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

# SPDX-License-Identifier: MIT
"""gdb commands for goc programs, on a live process or a core file.

    (gdb) source tools/goc-gdb.py
    (gdb) info goroutines          every goroutine: id, name, state
    (gdb) goroutine 7 bt           the backtrace of goroutine 7

A goroutine's G sits at the top of its stack, and every stack comes from a
slab that goc records (the `slabs` list of src/runtime/stack.c), so the
commands need the program's debug information but no cooperation from the
process. A parked goroutine's backtrace starts from the registers its
context switch saved on its stack.
"""

import gdb

STATES = {0: "idle", 1: "runnable", 2: "running", 3: "waiting", 4: "dead"}
REASONS = ["waiting", "chan receive", "chan send", "select", "sleep", "mutex",
           "rwmutex", "cond", "semaphore", "waitgroup", "io wait",
           "blocking call", "context"]


def _g_type():
    return gdb.lookup_type("struct goc__g")


def _slabs():
    try:
        head = gdb.parse_and_eval("'stack.c'::slabs")
    except gdb.error:
        head = gdb.parse_and_eval("slabs")
    while int(head) != 0:
        yield head.dereference()
        head = head.dereference()["next"]


def _goroutines():
    gtype = _g_type()
    gsize = gtype.sizeof
    for slab in _slabs():
        base = int(slab["base"])
        size = int(slab["size"])
        carved = int(slab["carved"])
        for i in range(carved):
            top = base + (i + 1) * size
            addr = (top - gsize) & ~63
            g = gdb.Value(addr).cast(gtype.pointer()).dereference()
            status = int(g["status"])
            if status in (0, 4) or int(g["id"]) == 0:
                continue
            yield g


def _name(g):
    try:
        return g["name"].string()
    except (gdb.error, UnicodeDecodeError):
        return ""


def _state(g):
    status = int(g["status"])
    if status == 3:
        reason = int(g["wait_reason"])
        return REASONS[reason] if reason < len(REASONS) else "waiting"
    return STATES.get(status, "?")


def _symbol(pc):
    block = gdb.block_for_pc(pc) if pc else None
    while block is not None and block.function is None:
        block = block.superblock
    sal = gdb.find_pc_line(pc)
    where = ""
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    if block is not None:
        return "%s%s" % (block.function.print_name, where)
    return "0x%x%s" % (pc, where)


def _portable():
    """True for a build with the portable (ucontext) switch: the assembly
    switches define goc__ctx_trampoline, the portable one does not."""
    return gdb.lookup_global_symbol("goc__ctx_trampoline") is None and \
        gdb.lookup_static_symbol("goc__ctx_trampoline") is None and \
        not _minimal_symbol("goc__ctx_trampoline")


def _minimal_symbol(name):
    try:
        gdb.parse_and_eval("(void *)&%s" % name)
        return True
    except gdb.error:
        return False


def _saved_frame(g):
    """Program counter and frame pointer saved by the context switch."""
    sp = int(g["sp"])
    arch = gdb.selected_frame().architecture().name() if gdb.selected_thread() else ""
    if _portable():
        # The saved sp points at a ucontext_t on the suspended stack.
        uc = gdb.Value(sp).cast(gdb.lookup_type("ucontext_t").pointer())
        mc = uc.dereference()["uc_mcontext"]
        if "aarch64" in arch:
            return int(mc["pc"]), int(mc["regs"][29])
        gregs = mc["gregs"]
        return int(gregs[16]), int(gregs[10])  # REG_RIP, REG_RBP
    u64 = gdb.lookup_type("unsigned long").pointer()
    words = gdb.Value(sp).cast(u64)
    if "aarch64" in arch:
        return int(words[0x98 // 8]), int(words[0x90 // 8])
    return int(words[7]), int(words[6])


def _backtrace(g, limit=64):
    pc, fp = _saved_frame(g)
    lo, hi = int(g["stack_lo"]), int(g.address)
    u64 = gdb.lookup_type("unsigned long").pointer()
    frames = [pc]
    while lo <= fp < hi and len(frames) < limit:
        words = gdb.Value(fp).cast(u64)
        ret, nxt = int(words[1]), int(words[0])
        if ret == 0:
            break
        frames.append(ret)
        if nxt <= fp:
            break
        fp = nxt
    return frames


class InfoGoroutines(gdb.Command):
    """List every goroutine: id, name, state."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        n = 0
        for g in _goroutines():
            n += 1
            name = _name(g)
            label = ' "%s"' % name if name else ""
            entry = _symbol(int(g["fn"]) + 1).split(" at ")[0]
            print("  goroutine %d%s [%s] %s" % (int(g["id"]), label,
                                               _state(g), entry))
        print("%d goroutines" % n)


class GoroutineCmd(gdb.Command):
    """goroutine N bt: the backtrace of goroutine N."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = arg.split()
        if len(args) != 2 or args[1] != "bt":
            raise gdb.GdbError("usage: goroutine N bt")
        want = int(args[0])
        for g in _goroutines():
            if int(g["id"]) != want:
                continue
            if int(g["status"]) == 2:
                print("goroutine %d is running: see its thread's bt" % want)
                return
            for i, pc in enumerate(_backtrace(g)):
                print("#%-2d %s" % (i, _symbol(pc - 1 if i else pc)))
            return
        raise gdb.GdbError("no goroutine %d" % want)


InfoGoroutines()
GoroutineCmd()

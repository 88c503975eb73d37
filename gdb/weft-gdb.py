# weft's gdb extension: every loop and task of a program, and the call stack of any
# suspended fiber, on a live process or in a core file.
#
#   (gdb) source <prefix>/share/weft/gdb/weft-gdb.py
#   (gdb) weft tasks          every loop and every task: state, what it waits on, body
#   (gdb) weft bt N           the backtrace of task N's fiber (N as `weft tasks` numbers it)
#   (gdb) weft bt all         the backtraces of every task that has a stack
#   (gdb) weft fiber N        look at task N's stack with gdb's own commands (frame, up,
#                             info locals, print); frame 0 stays the thread's own frame
#   (gdb) weft fiber off      back to the thread's own stack (also on continue or step)
#
# It reads memory only and never calls into the program, which is what makes it work on a
# core file: it walks weft::detail::fiber_runtimes (every loop's fiber runtime), their
# tasks, and each task's fiber (fiber/detail/fiber.hpp). It needs the program's debug
# information (-g) for those types. A suspended fiber's registers are where
# Boost.Context's jump_fcontext saved them on its stack; an unwinder hands them to gdb as
# the caller of the selected thread's frame 0, so gdb unwinds the fiber with its own
# machinery (inlined frames, arguments, locals as far as the optimiser kept them).
import re
import time

import gdb
import gdb.unwinder

# Boost.Context 1.74 x86-64 System V: jump_fcontext / ontop_fcontext push the callee-saved
# registers below the return address, and the saved context is the resulting stack pointer.
X86_64_SAVED = (("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20),
                ("rbx", 0x28), ("rbp", 0x30), ("rip", 0x38))
X86_64_FRAME_SIZE = 0x40  # the caller's stack pointer is the context + this


class WeftError(Exception):
    pass


def std_string(value):
    try:
        length = int(value["_M_string_length"])
        return value["_M_dataplus"]["_M_p"].string(length=length)
    except gdb.error:
        return str(value)


def member(pointer, name):
    """pointer->name, by the field's offset in the static type. Plain field access on a
    polymorphic object makes gdb look for its dynamic type's RTTI, which a TaskState over a
    lambda does not have (a warning per access)."""
    struct = pointer.type.target().strip_typedefs()
    for field in struct.fields():
        if field.name == name:
            address = int(pointer) + field.bitpos // 8
            return gdb.Value(address).cast(field.type.pointer()).dereference()
    raise gdb.error("%s has no field %s" % (struct, name))


def enum_name(value):
    return str(value).rsplit("::", 1)[-1]


def c_string(pointer):
    try:
        return pointer.string() if int(pointer) else ""
    except gdb.MemoryError:
        return "<unreadable>"


class Task:
    """One task as read from memory."""

    def __init__(self, number, loop, task):
        self.number = number
        self.loop = loop
        self.task = task
        self.name = std_string(member(task, "name_"))
        self.fiber = member(task, "fiber")
        self.state = enum_name(self.fiber.dereference()["state"]) if int(self.fiber) else "done"

    def has_stack(self):
        return self.state in ("suspended", "scheduled") and int(self.fiber["context"]) != 0

    def waiting(self):
        if self.state != "suspended":
            return ""
        record = self.fiber["waiting"]
        if not int(record):
            return ""
        record = record.dereference()
        text = c_string(record["what"])
        fd = int(record["fd"])
        if fd >= 0:
            text += " fd %d" % fd
        deadline = int(record["deadline"])
        if deadline >= 0:
            text += ", " + describe_deadline(deadline)
        obj = int(record["object"])
        if obj:
            text += " (at 0x%x)" % obj
        return text

    def body(self):
        """The task's function, named by its TaskState's vtable (RTTI-free: lambdas have
        none that gdb can use)."""
        try:
            vtable = int(self.task.cast(gdb.lookup_type("long").pointer()).dereference())
            symbol = gdb.execute("info symbol 0x%x" % vtable, to_string=True)
        except gdb.error:
            return ""
        # "vtable for weft::detail::TaskState<T, weft::detail::make_task<F>(weft::Loop&,
        # ...)::{lambda()#1}> + 16 in section .data.rel.ro": F is what the user passed.
        match = re.search(r"make_task<(.*)>\(weft::Loop&", symbol)
        return match.group(1) if match else ""


def describe_deadline(deadline_ns):
    """A deadline on the loop's clock (steady_clock: CLOCK_MONOTONIC on Linux)."""
    absolute = "monotonic %.3f s" % (deadline_ns / 1e9)
    if is_core_file():
        return "deadline at " + absolute
    left = deadline_ns / 1e9 - time.monotonic()
    return "deadline in %.3f s (%s)" % (left, absolute)


def is_core_file():
    try:
        connection = gdb.selected_inferior().connection
        return connection is not None and connection.type == "core"
    except AttributeError:
        return False


def runtimes():
    try:
        head = gdb.parse_and_eval("weft::detail::fiber_runtimes")
    except gdb.error as e:
        raise WeftError(
            "cannot read weft::detail::fiber_runtimes (%s): the program does not use weft's "
            "fibers, or it was built without debug information (-g)" % e)
    runtime = head
    while int(runtime):
        yield runtime.dereference()
        runtime = runtime.dereference()["next_runtime"]


def all_tasks():
    loops = []
    number = 0
    for runtime in runtimes():
        loop = runtime["loop_"].referenced_value().address
        tasks = []
        task = runtime["tasks_"]
        while int(task):
            number += 1
            tasks.append(Task(number, loop, task))
            task = member(task, "next_task")
        loops.append((loop, tasks))
    return loops


def fiber_threads():
    """{fiber address: gdb thread number} for the fibers running on some thread."""
    running = {}
    inferior = gdb.selected_inferior()
    selected = gdb.selected_thread()
    try:
        for thread in inferior.threads():
            try:
                thread.switch()
                fiber = int(gdb.parse_and_eval("weft::detail::t_current_fiber"))
            except gdb.error:
                continue
            if fiber:
                running[fiber] = thread.num
    finally:
        if selected is not None and selected.is_valid():
            selected.switch()
    return running


def find_task(number):
    for _, tasks in all_tasks():
        for task in tasks:
            if task.number == number:
                return task
    raise WeftError("no task %d (see `weft tasks`)" % number)


def saved_registers(task):
    arch = gdb.selected_frame().architecture().name()
    if arch != "i386:x86-64":
        raise WeftError("fibers can only be unwound on x86-64 here (this is %s): "
                        "Boost.Context's saved layout for it is not known to weft-gdb.py" % arch)
    context = int(task.fiber["context"])
    inferior = gdb.selected_inferior()
    long_type = gdb.lookup_type("long")
    regs = {}
    for name, offset in X86_64_SAVED:
        raw = inferior.read_memory(context + offset, 8)
        regs[name] = gdb.Value(int.from_bytes(bytes(raw), "little")).cast(long_type)
    regs["rsp"] = gdb.Value(context + X86_64_FRAME_SIZE).cast(long_type)
    return regs


class FrameId:
    """What create_unwind_info takes (gdb 14 names it gdb.unwinder.FrameId)."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class FiberUnwinder(gdb.unwinder.Unwinder):
    """Makes a fiber's saved registers the caller of the selected thread's frame 0."""

    def __init__(self):
        super().__init__("weft-fiber")
        self.registers = None

    def __call__(self, pending_frame):
        if self.registers is None or pending_frame.level() != 0:
            return None
        # Frame 0's id says it is below the fiber's frames: gdb stops unwinding at a caller
        # that looks inner to its callee, and the fiber's stack may lie anywhere relative
        # to the thread's.
        frame_id = FrameId(self.registers["rsp"] - 0x100, pending_frame.read_register("rip"))
        info = pending_frame.create_unwind_info(frame_id)
        for name, value in self.registers.items():
            info.add_saved_register(name, value)
        return info


UNWINDER = FiberUnwinder()
gdb.unwinder.register_unwinder(None, UNWINDER, replace=True)


def select_fiber(registers):
    UNWINDER.registers = registers
    gdb.invalidate_cached_frames()


def explain_no_stack(task, running):
    if task.state == "running":
        thread = running.get(int(task.fiber))
        where = "thread %d" % thread if thread else "its loop's thread"
        return "is running on %s: its stack is that thread's (`thread N`, then `bt`)" % where
    if task.state == "created":
        return "has not started: it has no stack yet"
    return "has no saved stack (%s)" % task.state


def fiber_backtrace(task, limit=None):
    """The fiber's frames as gdb prints them, renumbered from 0."""
    select_fiber(saved_registers(task))
    try:
        text = gdb.execute("bt" + (" %d" % (limit + 1) if limit else ""), to_string=True)
    finally:
        select_fiber(None)
    lines = text.splitlines()
    out = []
    in_first = True
    for line in lines:
        match = re.match(r"#(\d+)(\s+)(.*)", line)
        if match:
            level = int(match.group(1))
            in_first = level == 0
            if in_first:
                continue
            line = "#%d%s%s" % (level - 1, match.group(2) + " " * (len(match.group(1)) -
                                len(str(level - 1))), match.group(3))
        elif in_first:
            continue
        out.append(line)
        if "in make_fcontext" in line:  # the bottom of the fiber's stack
            break
    return "\n".join(out)


class WeftCommand(gdb.Command):
    """weft's fibers: weft tasks, weft bt N|all, weft fiber N|off."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class WeftTasks(gdb.Command):
    """Every weft loop and every task: number, name, state, what it waits on, its body."""

    def __init__(self):
        super().__init__("weft tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            loops = all_tasks()
            running = fiber_threads()
        except WeftError as e:
            raise gdb.GdbError(str(e))
        if not loops:
            print("no weft loop has fibers in this program")
            return
        for loop, tasks in loops:
            print("Loop 0x%x: %d task(s)" % (int(loop), len(tasks)))
            for task in tasks:
                line = "  %-3d %-24s %-10s" % (task.number, "'" + task.name + "'", task.state)
                waiting = task.waiting()
                if waiting:
                    line += " waiting on " + waiting
                elif task.state == "running":
                    thread = running.get(int(task.fiber))
                    if thread:
                        line += " on thread %d" % thread
                print(line)
                body = task.body()
                if body:
                    print("      body: " + body)


class WeftBacktrace(gdb.Command):
    """weft bt N: the backtrace of task N's fiber. weft bt all: of every fiber with a stack.
An optional second number limits the frames shown."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("usage: weft bt N | all [LIMIT]")
        limit = int(args[1]) if len(args) > 1 else None
        try:
            running = fiber_threads()
            if args[0] == "all":
                chosen = [t for _, tasks in all_tasks() for t in tasks]
            else:
                chosen = [find_task(int(args[0]))]
            for task in chosen:
                print("Task %d '%s' (%s)" % (task.number, task.name, task.state))
                if task.has_stack():
                    print(fiber_backtrace(task, limit))
                else:
                    print("  " + explain_no_stack(task, running))
        except (WeftError, ValueError) as e:
            raise gdb.GdbError(str(e))


class WeftFiber(gdb.Command):
    """weft fiber N: show task N's fiber stack to gdb's own commands (bt, frame, up, info
locals); frame 0 stays the thread's own, the fiber starts at frame 1, which is selected.
weft fiber off: back to the thread's own stack (also done on continue, step, or run)."""

    def __init__(self):
        super().__init__("weft fiber", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if arg == "off":
            select_fiber(None)
            return
        try:
            task = find_task(int(arg))
            if not task.has_stack():
                raise WeftError("task %d %s" % (task.number, explain_no_stack(task, fiber_threads())))
            select_fiber(saved_registers(task))
        except (WeftError, ValueError) as e:
            raise gdb.GdbError(str(e))
        gdb.execute("frame 1")


def on_resume(event):
    if UNWINDER.registers is not None:
        select_fiber(None)


gdb.events.cont.connect(on_resume)
WeftCommand()
WeftTasks()
WeftBacktrace()
WeftFiber()

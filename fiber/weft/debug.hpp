// Looking inside a running program: every task of a loop with its state and, for a
// suspended fiber, its call stack at the suspension point — the thing a stackful runtime
// can give that asyncio cannot. Function names appear when the program is linked with
// -rdynamic (otherwise offsets into the binary, which addr2line resolves).
#pragma once

#include <string>
#include <vector>

#include <weft/loop.hpp>

namespace weft {

struct TaskInfo {
    std::string name;
    std::string state;               // "not started", "scheduled", "running", "suspended"
    // What a suspended task waits for: its wait site ("sleep", "Lock::acquire", "read",
    // "Task::get", ...) with the descriptor and the time left when there are any, e.g.
    // "read fd 7, deadline in 2.5 s"; empty if it is not waiting.
    std::string waiting;
    std::vector<std::string> stack;  // innermost frame first; empty if not suspended/running
    uint32_t suspensions = 0;        // how many times it has waited (suspend or yield) so far
};

// Loop thread only. The tasks of `loop` that have not finished.
std::vector<TaskInfo> task_snapshot(Loop& loop, bool with_stacks = true);
// The same as text, one block per task (asyncio's Task.print_stack for all of them).
std::string dump_tasks(Loop& loop);
std::string dump_tasks();  // of the running loop

}  // namespace weft

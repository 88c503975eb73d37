// The umbrella header: everything weft offers. It sits above the three layers (core/,
// fiber/, net/), which include only what they need from their own layer and those below.
#pragma once

#include <weft/error.hpp>
#include <weft/handle.hpp>
#include <weft/io_events.hpp>
#include <weft/io_watch.hpp>
#include <weft/loop.hpp>
#include <weft/loop_thread.hpp>
#include <weft/thread_future.hpp>
#include <weft/thread_pool.hpp>

#include <weft/combinators.hpp>
#include <weft/contextvars.hpp>
#include <weft/debug.hpp>
#include <weft/executor.hpp>
#include <weft/files.hpp>
#include <weft/future.hpp>
#include <weft/io_wait.hpp>
#include <weft/generator.hpp>
#include <weft/process_pool.hpp>
#include <weft/queue.hpp>
#include <weft/run.hpp>
#include <weft/scoped.hpp>
#include <weft/sleep.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>

#include <weft/address.hpp>
#include <weft/cookie_jar.hpp>
#include <weft/http.hpp>
#include <weft/http_client.hpp>
#include <weft/http_server.hpp>
#include <weft/server_group.hpp>
#include <weft/stream.hpp>
#include <weft/subprocess.hpp>
#include <weft/tcp.hpp>
#include <weft/udp.hpp>

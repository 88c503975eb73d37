// libuv running weft's timer workload for the `make bench` table: 1M timers, half
// stopped, the rest fired. libuv timers have 1 ms resolution, so the deadlines spread over
// 0 and 1 ms. Handles are initialised once (a uv_timer_t needs no allocation); the loop
// starts, stops and fires them. The libuv echo server is in echo_servers.
#include <vector>

#include <uv.h>

#include <benchmark/benchmark.h>

static void BM_CallLaterCancel_Libuv(benchmark::State& state) {
    const int n = int(state.range(0));
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::vector<uv_timer_t> timers(static_cast<size_t>(n));
    int fired = 0;
    for (auto& t : timers) {
        uv_timer_init(&loop, &t);
        t.data = &fired;
    }
    auto round = [&] {
        fired = 0;
        uv_update_time(&loop);
        for (int i = 0; i < n; ++i)
            uv_timer_start(&timers[size_t(i)], [](uv_timer_t* t) { ++*static_cast<int*>(t->data); },
                           (int64_t(i) * 7919) % 1'000'000 >= 500'000 ? 1 : 0, 0);
        for (int i = 0; i < n; i += 2) uv_timer_stop(&timers[size_t(i)]);
        while (fired < n / 2) uv_run(&loop, UV_RUN_ONCE);
    };
    round();  // untimed, as in weft's row
    for (auto _ : state) round();
    state.SetItemsProcessed(state.iterations() * n);
    for (auto& t : timers) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}
BENCHMARK(BM_CallLaterCancel_Libuv)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();

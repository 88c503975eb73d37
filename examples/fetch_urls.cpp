// The seeds' aiohttp program: several URLs fetched concurrently with gather through one
// ClientSession, their sizes printed, then how long it all took. With no URLs it starts a
// small weft HTTP server of its own on a free port, whose pages each take --delay ms
// (10 by default) to serve, and fetches five pages from that: fetched one after another
// they would take five delays, concurrently about one. https:// URLs are verified against
// the system's CAs, plus --cafile's; --insecure verifies nothing (aiohttp's ssl=False).
//
//     fetch_urls [--delay MS] [--cafile PEM] [--insecure] [http[s]://url...]
#include <weft/weft.hpp>
#include "args.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace http = weft::http;

// async def fetch(session, url): async with session.get(url) as r: return await r.text()
std::string fetch(http::ClientSession& session, const std::string& url) {
    auto response = session.get(url);
    response.raise_for_status();
    return response.text();
}

int main(int argc, char** argv) {
    constexpr const char* kUsage = "fetch_urls [--delay MS] [--cafile PEM] [--insecure] [url...]";
    std::vector<std::string> urls;
    std::chrono::milliseconds delay{10};
    std::string cafile;
    bool insecure = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            delay = std::chrono::milliseconds(examples::number_arg(argv[++i], 3'600'000, kUsage));
        } else if (std::strcmp(argv[i], "--cafile") == 0 && i + 1 < argc) {
            cafile = argv[++i];
        } else if (std::strcmp(argv[i], "--insecure") == 0) {
            insecure = true;
        } else if (argv[i][0] == '-') {
            std::fprintf(stderr, "unknown option '%s'\nusage: %s\n", argv[i], kUsage);
            return 2;
        } else {
            urls.emplace_back(argv[i]);
        }
    }
    try {
        weft::run([&] {
            std::unique_ptr<http::HttpServer> local;
            if (urls.empty()) {  // a stand-in for the internet: pages of a few sizes
                http::Application app;
                app.add_get("/page/*", [delay](http::Request& r) {
                    size_t n = std::stoul(r.path().substr(6));
                    weft::sleep(delay);  // as if it took a while
                    return http::Response::text(std::string(n, 'x'));
                });
                local = http::start_http_server(std::move(app), "127.0.0.1", 0);
                std::string base = "http://127.0.0.1:" + std::to_string(local->port()) + "/page/";
                for (int size : {1, 10, 100, 1000, 10000}) urls.push_back(base + std::to_string(size));
            }
            http::ClientSessionOptions options;
            options.timeout.total = std::chrono::seconds(30);
            if (insecure) {
                options.ssl = false;
            } else if (!cafile.empty()) {  // the system's CAs and this one
                auto ctx = weft::ssl::Context::client();
                ctx.load_verify_locations(cafile);
                options.ssl = ctx;
            }
            http::ClientSession session(options);
            auto started = weft::Clock::now();
            std::vector<weft::Task<std::string>> tasks;  // tasks = [fetch(session, url) ...]
            for (const auto& url : urls) tasks.push_back(weft::spawn(fetch, std::ref(session), url));
            auto results = weft::gather(tasks);          // await asyncio.gather(*tasks)
            std::chrono::duration<double> took = weft::Clock::now() - started;
            for (size_t i = 0; i < urls.size(); ++i)
                std::printf("%s: %zu bytes\n", urls[i].c_str(), results[i].size());
            std::printf("fetched %zu URLs in %.3f s\n", urls.size(), took.count());
            session.close();
            if (local) local->shutdown();
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fetch_urls: %s\n", e.what());
        return 1;
    }
}

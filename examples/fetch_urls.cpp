// The seeds' aiohttp program: several URLs fetched concurrently with gather through one
// ClientSession, and their sizes printed. With no arguments it starts a small weft HTTP
// server of its own on a free port and fetches from that.
//
//     fetch_urls [http://url...]
#include <weft/weft.hpp>

#include <cstdio>
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
    std::vector<std::string> urls(argv + 1, argv + argc);
    try {
        weft::run([&] {
            std::unique_ptr<http::HttpServer> local;
            if (urls.empty()) {  // a stand-in for the internet: pages of a few sizes
                http::Application app;
                app.add_get("/page/*", [](http::Request& r) {
                    size_t n = std::stoul(r.path().substr(6));
                    weft::sleep(std::chrono::milliseconds(10));  // as if it took a while
                    return http::Response::text(std::string(n, 'x'));
                });
                local = http::start_http_server(std::move(app), "127.0.0.1", 0);
                std::string base = "http://127.0.0.1:" + std::to_string(local->port()) + "/page/";
                for (int size : {1, 10, 100, 1000, 10000}) urls.push_back(base + std::to_string(size));
            }
            http::ClientSessionOptions options;
            options.timeout.total = std::chrono::seconds(30);
            http::ClientSession session(options);
            std::vector<weft::Task<std::string>> tasks;  // tasks = [fetch(session, url) ...]
            for (const auto& url : urls) tasks.push_back(weft::spawn(fetch, std::ref(session), url));
            auto results = weft::gather(tasks);          // await asyncio.gather(*tasks)
            for (size_t i = 0; i < urls.size(); ++i)
                std::printf("%s: %zu bytes\n", urls[i].c_str(), results[i].size());
            session.close();
            if (local) local->shutdown();
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fetch_urls: %s\n", e.what());
        return 1;
    }
}

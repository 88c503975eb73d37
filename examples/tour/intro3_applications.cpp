// Seed "Python 异步编程", section 三: real applications — 1. concurrent HTTP requests with
// one client session (aiohttp), 2. files read and written without blocking the loop
// (aiofiles): three files read concurrently, combined, written.
//
// The seed fetches python.org, github.com and stackoverflow.com; here the pages come
// from an HTTP server this program starts on 127.0.0.1, so the run needs no network: over
// https, with a certificate made for the run (tour_tls.hpp).
#include <weft/weft.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tour.hpp"
#include "tour_tls.hpp"

namespace http = weft::http;

// async def fetch(session, url): async with session.get(url) as response: return await response.text()
std::string fetch(http::ClientSession& session, const std::string& url) {
    http::ClientResponse response = session.get(url);
    return response.text();
}

void network_requests() {
    tour::section("1. asynchronous network requests");
    http::Application app;
    app.add_get("/*", [](http::Request& r) {
        weft::sleep(tour::seconds(1));  // each page takes a (seed) second to produce
        return http::Response::text(std::string(1000 * r.path().size(), '.'));
    });
    tour::Web web = tour::web();
    auto server = http::start_http_server(std::move(app), "127.0.0.1", 0, web.server_options);
    std::string base = web.scheme + "://127.0.0.1:" + std::to_string(server->port());
    tour::varying("serving %s", base.c_str());

    std::vector<std::string> paths = {"/python.org", "/github.com", "/stackoverflow.com"};
    auto started = std::chrono::steady_clock::now();
    {
        http::ClientSession session;  // async with aiohttp.ClientSession() as session:
        std::vector<weft::Task<std::string>> tasks;  // tasks = [fetch(session, url) for url in urls]
        for (const auto& p : paths) tasks.push_back(weft::spawn(fetch, std::ref(session), base + p));
        auto results = weft::gather(tasks);  // results = await asyncio.gather(*tasks)
        for (size_t i = 0; i < paths.size(); ++i)  // print(f"{url}: {len(html)} characters")
            std::printf("%s://127.0.0.1:PORT%s: %zu characters\n", web.scheme.c_str(), paths[i].c_str(),
                        results[i].size());
        std::printf("connections the session opened: %zu (one per concurrent request)\n", session.connections_open());
    }
    double took = tour::since(started);
    tour::varying("three 1-seed-second pages took %.3f s", took);
    std::printf("fetched concurrently (in less than the 3 seed seconds one after the other takes): %s\n",
                took < std::chrono::duration<double>(tour::seconds(3)).count() ? "yes" : "no");
    server->shutdown();
}

// async def read_file(filename): async with aiofiles.open(filename, mode='r') as f: return await f.read()
std::string read_file(const std::string& filename) {
    weft::AsyncFile f = weft::open_file(filename, "r");
    return f.read_all();
}
// async def write_file(filename, content): async with aiofiles.open(filename, mode='w') as f: await f.write(content)
void write_file(const std::string& filename, const std::string& content) {
    weft::AsyncFile f = weft::open_file(filename, "w");
    f.write_all(content);
    f.close();
}

void files(const std::string& dir) {
    tour::section("2. asynchronous file operations");
    for (int i = 1; i <= 3; ++i)
        weft::write_file(dir + "/file" + std::to_string(i) + ".txt", "contents of file " + std::to_string(i));
    // file_contents = await asyncio.gather(read_file('file1.txt'), ...)
    auto [one, two, three] = weft::gather([&] { return read_file(dir + "/file1.txt"); },
                                          [&] { return read_file(dir + "/file2.txt"); },
                                          [&] { return read_file(dir + "/file3.txt"); });
    std::string combined = one + "\n" + two + "\n" + three;  // '\n'.join(file_contents)
    write_file(dir + "/combined.txt", combined);              // await write_file('combined.txt', combined)
    std::puts("Files combined successfully");
    std::printf("combined.txt:\n%s\n", weft::read_file(dir + "/combined.txt").c_str());
}

int main() {
    char dir[] = "/tmp/weft-tour-XXXXXX";
    if (!::mkdtemp(dir)) {
        std::perror("mkdtemp");
        return 1;
    }
    int rc = 0;
    try {
        weft::run([&] {
            network_requests();
            files(dir);
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "intro3_applications: %s\n", e.what());
        rc = 1;
    }
    for (const char* name : {"file1.txt", "file2.txt", "file3.txt", "combined.txt"})
        ::unlink((std::string(dir) + "/" + name).c_str());
    ::rmdir(dir);
    return rc;
}

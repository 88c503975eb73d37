// Seed "async/await 深度解析", section 四: asynchronous context managers — the class form
// (__aenter__ / __aexit__), aiohttp's nested `async with` (ClientSession, response), the
// @asynccontextmanager form, and the database-connection pattern against a real TCP
// service (a tiny line-protocol "database" this program serves on 127.0.0.1).
//
// In weft a scope whose set-up and tear-down suspend is plain RAII (a destructor may
// suspend on a fiber) or weft::with_resource(open, use, close); the tear-down runs on a
// normal exit, on an exception and on cancellation.
#include <weft/weft.hpp>

#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tour.hpp"
#include "tour_tls.hpp"

namespace http = weft::http;

// class AsyncContextManager: __aenter__ is the constructor, __aexit__ the destructor.
class AsyncContextManager {
public:
    AsyncContextManager() {
        std::puts("Entering context");
        weft::sleep(tour::seconds(1));  // await asyncio.sleep(1)
    }
    ~AsyncContextManager() {
        weft::DeferCancellation defer;  // the clean-up finishes even if we are being cancelled
        // __aexit__(exc_type, ...): whether an exception is passing through.
        std::printf("Exiting context%s\n", std::uncaught_exceptions() ? " (an exception is passing through)" : "");
        weft::sleep(tour::seconds(1));
    }
    AsyncContextManager(const AsyncContextManager&) = delete;
    AsyncContextManager& operator=(const AsyncContextManager&) = delete;
};

void class_form() {
    tour::section("class form: __aenter__ / __aexit__");
    {
        AsyncContextManager manager;  // async with AsyncContextManager() as manager:
        std::puts("Inside context");
    }
    try {
        AsyncContextManager manager;
        throw std::runtime_error("boom");
    } catch (const std::runtime_error& e) {
        std::printf("caught after the exit ran: %s\n", e.what());
    }
}

// async def fetch_url(url): async with ClientSession() as session:
//                               async with session.get(url) as response: return await response.text()
std::string fetch_url(const std::string& url) {
    http::ClientSession session;  // closed by its destructor
    http::ClientResponse response = session.get(url);
    return response.text();       // the response releases its connection when it goes
}

void aiohttp_form(const std::string& scheme, uint16_t port) {
    tour::section("aiohttp: async with ClientSession() / session.get(url)");
    std::string context = fetch_url(scheme + "://127.0.0.1:" + std::to_string(port) + "/article/147751411");
    std::printf("%s\n", context.c_str());
    std::printf("fetched over %s\n", scheme.c_str());
}

// @asynccontextmanager over a Generator: the body runs to its yield on the way in, and
// from the yield to its end (its finally part) on the way out, whatever happens in use.
template <class T, class Use>
void async_with(weft::Generator<T>& manager, Use&& use) {
    std::optional<T> value = manager.next();  // up to `yield`: __aenter__
    if (!value) throw weft::InvalidStateError("the context manager's generator did not yield");
    auto finish = [&] {
        weft::DeferCancellation defer;
        if (manager.next()) throw weft::InvalidStateError("the context manager's generator yielded twice");
    };
    try {
        use(*value);
    } catch (...) {
        finish();
        throw;
    }
    finish();
}

void generator_form() {
    tour::section("@asynccontextmanager");
    // @asynccontextmanager async def async_context_manager(): ... yield "some value" ...
    weft::Generator<std::string> manager([](auto& yield) {
        std::puts("Entering context");
        weft::sleep(tour::seconds(1));
        yield("some value");
        std::puts("Exiting context");  // the finally part
        weft::sleep(tour::seconds(1));
    });
    async_with(manager, [](const std::string& value) {  // async with ... as value:
        std::printf("Inside context, got: %s\n", value.c_str());
    });

    // The same scope with weft::with_resource(open, use, close).
    weft::with_resource(
        [] {
            std::puts("Entering context");
            weft::sleep(tour::seconds(1));
            return std::string("some value");
        },
        [](std::string& value) { std::printf("Inside context, got: %s\n", value.c_str()); },
        [](std::string&) {
            std::puts("Exiting context");
            weft::sleep(tour::seconds(1));
        });
}

// --- The database example ------------------------------------------------------------
// The service: "HELLO" on connect, then one command per line: SELECT ... answers rows
// and END (SELECT slowly takes a seed second first), QUIT answers BYE and closes; any
// other line is answered with ERR.
int open_connections = 0;

void db_session(weft::Stream& s) {
    int id = ++open_connections;
    std::printf("db: connection opened (%d open)\n", open_connections);
    s.write("HELLO minidb\n");
    for (std::string line; !(line = s.read_line()).empty();) {
        std::string_view command(line);
        if (command.ends_with('\n')) command.remove_suffix(1);
        if (command == "QUIT") {
            --open_connections;
            std::printf("db: connection closed (%d open)\n", open_connections);
            s.write("BYE\n");
            s.wait_closed();
            return;
        }
        constexpr std::string_view kFrom = "SELECT * FROM ";
        if (command == "SELECT * FROM table") {
            s.write("1|alice\n2|bob\nEND\n");
        } else if (command == "SELECT slowly") {
            weft::sleep(tour::seconds(1));
            s.write("1|late\nEND\n");
        } else if (command.starts_with(kFrom)) {
            s.write("ERR no such table: " + std::string(command.substr(kFrom.size())) + "\n");
        } else {
            s.write("ERR unknown command: " + std::string(command) + "\n");
        }
    }
    --open_connections;
    std::printf("db: connection %d dropped without QUIT\n", id);
}

class DbError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A connection to it, in the seed's shape: connect, execute, close (each may suspend).
class DbConnection {
public:
    static DbConnection connect(uint16_t port) {  // conn = await async_connect_to_db()
        weft::ConnectOptions options;
        options.timeout = std::chrono::seconds(5);
        DbConnection c{weft::open_connection("127.0.0.1", port, options)};
        if (c.stream_.read_line() != "HELLO minidb\n") throw DbError("not a minidb server");
        return c;
    }
    std::vector<std::string> execute(const std::string& sql) {  // await conn.execute(sql)
        stream_.write(sql + "\n");
        std::vector<std::string> rows;
        for (;;) {
            std::string line = stream_.read_line();
            if (line.empty()) throw DbError("connection lost");
            line.pop_back();
            if (line == "END") return rows;
            if (line.starts_with("ERR ")) throw DbError(line.substr(4));
            rows.push_back(line);
        }
    }
    void close() {  // await conn.close(): says goodbye and waits for the server's answer
        stream_.write("QUIT\n");
        for (std::string line; !(line = stream_.read_line()).empty() && line != "BYE\n";) {
        }  // (skips the answer to a query abandoned by a cancel)
        stream_.wait_closed();
    }

private:
    explicit DbConnection(weft::Stream s) : stream_(std::move(s)) {}
    weft::Stream stream_;
};

// @asynccontextmanager async def get_db_connection(): conn = ...; try: yield conn
//                                                     finally: await conn.close()
template <class Use>
auto with_db_connection(uint16_t port, Use&& use) {
    return weft::with_resource([port] { return DbConnection::connect(port); }, std::forward<Use>(use),
                               [](DbConnection& conn) { conn.close(); });
}

// async def query_db(): async with get_db_connection() as conn: return await conn.execute(sql)
std::vector<std::string> query_db(uint16_t port, const std::string& sql) {
    return with_db_connection(port, [&](DbConnection& conn) { return conn.execute(sql); });
}

void database(uint16_t port) {
    tour::section("a database connection: get_db_connection() / query_db()");
    for (const auto& row : query_db(port, "SELECT * FROM table")) std::printf("row: %s\n", row.c_str());

    std::puts("-- a failing query: the connection is still closed");
    try {
        with_db_connection(port, [](DbConnection& conn) {
            // Not shown: a command the server does not know, however short, is an error
            // too, and the connection goes on. (The tour's test fails on any stderr output.)
            try {
                conn.execute("NOP");
                std::fputs("minidb accepted NOP\n", stderr);
            } catch (const DbError& e) {
                if (std::string_view(e.what()) != "unknown command: NOP")
                    std::fprintf(stderr, "NOP: %s\n", e.what());
            }
            return conn.execute("SELECT * FROM missing");
        });
    } catch (const DbError& e) {
        std::printf("DbError: %s\n", e.what());
    }

    std::puts("-- a query cancelled by wait_for: the connection is still closed");
    try {
        weft::wait_for([port] { return query_db(port, "SELECT slowly"); }, tour::seconds(1) / 2);
    } catch (const weft::TimeoutError&) {
        std::puts("TimeoutError");
    }
    weft::sleep(tour::seconds(1) / 10);
    std::printf("connections open at the end: %d\n", open_connections);
}

int main() {
    try {
        weft::run([] {
            class_form();

            http::Application app;
            app.add_get("/article/*", [](http::Request& r) {
                return http::Response::text("<html><body>article " + r.path().substr(9) + "</body></html>");
            });
            tour::Web https = tour::web();  // https, as the seed's URL (tour_tls.hpp)
            auto web = http::start_http_server(std::move(app), "127.0.0.1", 0, https.server_options);
            aiohttp_form(https.scheme, web->port());
            web->shutdown();

            generator_form();

            auto db = weft::start_server(db_session, "127.0.0.1", 0);
            tour::varying("minidb on 127.0.0.1:%u", db->port());
            database(db->port());
            db->close();
            db->wait_closed();
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deep4_async_with: %s\n", e.what());
        return 1;
    }
}

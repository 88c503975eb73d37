// libFuzzer target: the HTTP/1.1 message reader (llhttp underneath) on fuzzer-chosen bytes
// arriving in fuzzer-chosen chunks, read as requests or as responses with small limits.
// Only BadMessage (or the stream's documented errors) may come out; a message that is
// accepted must respect the limits and deliver exactly the body its framing promised.
#include <weft/weft.hpp>

#include "net/detail/http_parser.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "http_message_fuzz: %s\n", what);
    std::abort();
}

void read_messages(weft::Stream& s, bool requests, const weft::http::detail::ParseLimits& limits) {
    using weft::http::detail::MessageReader;
    MessageReader reader(s, requests ? MessageReader::Kind::request : MessageReader::Kind::response,
                         limits, "fuzz peer");
    for (int messages = 0; messages < 16; ++messages) {
        try {
            if (!reader.read_head()) return;
            auto& head = reader.head();
            check(head.headers.size() <= limits.max_headers, "more headers than the limit");
            uint64_t body = 0;
            for (int pieces = 0; pieces < 100000; ++pieces) {
                std::string piece = reader.read_body();
                if (piece.empty()) break;
                body += piece.size();
            }
            check(reader.message_done(), "body ended before the message");
            check(body == reader.body_received(), "body pieces and count disagree");
            check(body <= limits.max_body_size, "body over the limit accepted");
            if (head.content_length && !head.chunked)
                check(body == *head.content_length, "body length differs from Content-Length");
            if (head.upgrade || !head.keep_alive) return;
        } catch (const weft::Error&) {
            return;  // BadMessage (malformed, over a limit) or an early EOF: both documented
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    FuzzedDataProvider in(bytes, size);
    const bool requests = in.ConsumeBool();
    weft::http::detail::ParseLimits limits;
    limits.max_header_size = in.ConsumeIntegralInRange<size_t>(16, 2048);
    limits.max_headers = in.ConsumeIntegralInRange<size_t>(1, 32);
    limits.max_body_size = in.ConsumeIntegralInRange<size_t>(0, 4096);
    std::vector<size_t> chunks;
    for (size_t i = in.ConsumeIntegralInRange<size_t>(0, 12); i > 0; --i)
        chunks.push_back(in.ConsumeIntegralInRange<size_t>(1, 128));
    const std::string data = in.ConsumeRemainingBytesAsString();

    weft::run([&] {
        auto [reader, writer] = weft::stream_pair();
        auto sender = weft::spawn([&, &w = writer] {
            size_t at = 0;
            try {
                for (size_t n : chunks) {
                    if (at >= data.size()) break;
                    w.write(std::string_view(data).substr(at, n));
                    at += n;
                    w.drain();
                    weft::sleep(std::chrono::milliseconds(0));
                }
                if (at < data.size()) w.write(std::string_view(data).substr(at));
                w.drain();
                w.write_eof();
            } catch (const weft::Error&) {
                // the reader gave up and closed: fine
            }
        });
        read_messages(reader, requests, limits);
        reader.close();
        sender.get();
    });
    return 0;
}

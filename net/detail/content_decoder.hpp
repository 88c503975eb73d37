// ContentDecoder: undoes a response body's Content-Encoding (gzip, deflate) with zlib's
// inflate, in bounded pieces, so that a small compressed body that expands enormously (a
// "zip bomb") is an error at a set size instead of an out-of-memory. Private to libweft.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace weft::http::detail {

class ContentDecoder {
public:
    // A decoder for a Content-Encoding value ("gzip", "x-gzip", "deflate", any case), or
    // null for one weft leaves as it is (identity, br, a list of several). `limit` bounds
    // the decoded size; `what` names the request in errors.
    static std::unique_ptr<ContentDecoder> for_encoding(std::string_view encoding, size_t limit, std::string what);

    ContentDecoder(bool deflate, size_t limit, std::string what);
    ~ContentDecoder();
    ContentDecoder(const ContentDecoder&) = delete;
    ContentDecoder& operator=(const ContentDecoder&) = delete;

    // More of the encoded body. Bytes after the end of the compressed stream are dropped
    // (as Python's zlib and so aiohttp do).
    void feed(std::string data);
    // Up to `max_out` decoded bytes from what was fed; empty when it needs more input.
    // ContentEncodingError for corrupt input or past the limit.
    std::string decode(size_t max_out);
    // The body ended: ContentEncodingError if the compressed stream was cut short.
    void finish();

private:
    [[noreturn]] void fail(const std::string& why);
    void restart_raw();

    z_stream z_{};
    bool deflate_;          // Content-Encoding: deflate (a raw-deflate fallback is allowed)
    bool raw_ = false;      // fell back to raw deflate (no zlib header)
    bool ended_ = false;    // Z_STREAM_END seen
    size_t limit_;
    size_t produced_ = 0;
    std::string what_;
    std::string input_;     // fed, not yet consumed by inflate: [input_pos_, size)
    size_t input_pos_ = 0;
    // Everything fed until the first decoded byte, for the raw-deflate retry (bounded).
    std::string replay_;
    bool replay_dropped_ = false;
    bool fed_any_ = false;
};

}  // namespace weft::http::detail

// MessageReader: HTTP/1.1 messages read off a Stream one at a time, parsed by llhttp.
// Private to libweft (client and server share it). The parser pauses at the end of each
// message, so the bytes of a pipelined next message stay buffered until it is asked for;
// bodies come out in the pieces the socket delivers, so memory is bounded by one read.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include <weft/http.hpp>
#include <weft/stream.hpp>

namespace weft::http::detail {

struct ParseLimits {
    size_t max_header_size = 16 * 1024;  // the head's raw bytes: start line, fields, CRLFs
    size_t max_headers = 100;
    size_t max_body_size = SIZE_MAX;     // over it: BadMessage(413)
};

// A borrowed callback (no allocation, unlike std::function) for a hook that runs only
// during the call it is passed to.
class Hook {
public:
    Hook() = default;
    template <class F>
        requires(!std::is_same_v<std::decay_t<F>, Hook>)
    Hook(F&& f) noexcept  // NOLINT: implicit, so a lambda can be passed as it is
        : ctx_(const_cast<void*>(static_cast<const void*>(&f))),
          fn_([](void* c) { (*static_cast<std::remove_reference_t<F>*>(c))(); }) {}
    void operator()() const {
        if (fn_) fn_(ctx_);
    }

private:
    void* ctx_ = nullptr;
    void (*fn_)(void*) = nullptr;
};

struct MessageHead {
    std::string method;   // requests
    std::string target;   // requests
    int status = 0;       // responses
    std::string reason;   // responses
    int version_minor = 1;
    Headers headers;
    bool keep_alive = true;   // llhttp's verdict from the version and Connection header
    bool chunked = false;     // Transfer-Encoding: chunked
    std::optional<uint64_t> content_length;
    // Nothing after this message is HTTP: a response switching protocols, or a CONNECT
    // request. A request's Upgrade header is declined (weft serves no other protocol), so
    // the connection goes on as HTTP/1.1 (RFC 9110 §7.8 lets a server ignore it).
    bool upgrade = false;
};

class MessageReader {
public:
    enum class Kind { request, response };

    // `peer` only names the other side in error messages.
    MessageReader(Stream& stream, Kind kind, ParseLimits limits, std::string peer);
    MessageReader(const MessageReader&) = delete;
    MessageReader& operator=(const MessageReader&) = delete;

    // Reads up to the end of the next message's head. False if the connection ended
    // cleanly before its first byte (or the previous message was an upgrade). Throws
    // BadMessage for malformed or over-limit input (what() says which and from whom); for
    // requests also for a version other than HTTP/1.x (505) and a Host header missing
    // from an HTTP/1.1 request or repeated (400). `on_partial_head` is called once if the
    // head has begun but one read did not bring all of it (the server's header timer
    // starts there).
    bool read_head(Hook on_partial_head = {});
    MessageHead& head() noexcept { return head_; }

    // The response being read answers a HEAD request: it has no body whatever it says.
    // Set before read_head.
    void set_no_body(bool on) noexcept { no_body_ = on; }

    // The next piece of the body, empty once the message is complete.
    std::string read_body();
    bool message_done() const noexcept { return complete_; }
    // read_body() would return without reading the stream: a piece is parsed, or the
    // message is complete.
    bool body_ready() const noexcept { return complete_ || !body_.empty(); }
    bool head_done() const noexcept { return headers_done_; }
    uint64_t body_received() const noexcept { return body_received_; }
    // Bytes already received beyond the current message (a pipelined request).
    bool has_buffered_input() const noexcept { return pos_ < buf_.size(); }
    // Any byte of the current message arrived (for "retry on a stale connection").
    bool started() const noexcept { return started_; }

    void set_limits(ParseLimits limits) noexcept { limits_ = limits; }

private:
    friend struct Callbacks;
    void fill();  // reads more from the stream; handles EOF
    void execute();
    [[noreturn]] void fail(llhttp_errno_t err);
    [[noreturn]] void fail(int status, const std::string& why);
    bool note_header_bytes(size_t n);
    bool acceptable_request(const llhttp_t* p);  // false with user_status_ set

    Stream& stream_;
    Kind kind_;
    ParseLimits limits_;
    std::string peer_;
    llhttp_t parser_;
    std::string buf_;   // last read from the stream; [pos_, size) not parsed yet
    size_t pos_ = 0;
    MessageHead head_;
    std::string field_, value_;  // the header field being assembled
    std::string body_;           // parsed body bytes not yet handed out
    uint64_t body_received_ = 0;
    size_t header_bytes_ = 0;
    bool started_ = false, headers_done_ = false, complete_ = false;
    bool paused_ = false, upgraded_ = false, eof_ = false, no_body_ = false;
    int user_status_ = 0;        // set by a callback that rejected the message
    std::string user_error_;
};

}  // namespace weft::http::detail

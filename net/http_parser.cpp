// MessageReader: drives llhttp over a Stream's reads. llhttp calls back with spans of the
// input; we copy them into the head and the body buffer, enforce the limits as bytes
// arrive (so an endless header cannot grow memory), and pause the parser at the end of
// each message so a pipelined successor stays in buf_.
#include "net/detail/http_parser.hpp"

#include <algorithm>
#include <string_view>

namespace weft::http::detail {

struct Callbacks {
    static MessageReader& self(llhttp_t* p) { return *static_cast<MessageReader*>(p->data); }

    static int on_message_begin(llhttp_t* p) {
        self(p).started_ = true;
        return 0;
    }
    static int on_url(llhttp_t* p, const char* at, size_t n) {
        auto& r = self(p);
        r.head_.target.append(at, n);
        return 0;
    }
    static int on_status(llhttp_t* p, const char* at, size_t n) {
        auto& r = self(p);
        r.head_.reason.append(at, n);
        return 0;
    }
    static int on_header_field(llhttp_t* p, const char* at, size_t n) {
        auto& r = self(p);
        if (r.headers_done_ && !r.note_header_bytes(n)) return HPE_USER;  // a trailer field
        r.field_.append(at, n);
        return 0;
    }
    static int on_header_value(llhttp_t* p, const char* at, size_t n) {
        auto& r = self(p);
        if (r.headers_done_ && !r.note_header_bytes(n)) return HPE_USER;  // a trailer field
        r.value_.append(at, n);
        return 0;
    }
    static int on_header_value_complete(llhttp_t* p) {
        auto& r = self(p);
        if (r.headers_done_) {
            // A chunked body's trailer fields. Dropped: merged into the headers they could
            // move strings a handler still points at, or add fields (Authorization, say)
            // after the head was checked. Their spans still count against the header-size
            // limit, on top of the head's raw bytes.
            r.field_.clear();
            r.value_.clear();
            return 0;
        }
        if (r.head_.headers.size() >= r.limits_.max_headers) {
            r.user_status_ = 431;
            r.user_error_ = "more than " + std::to_string(r.limits_.max_headers) + " header fields";
            return -1;
        }
        try {
            r.head_.headers.add(std::move(r.field_), std::move(r.value_));
        } catch (const HttpError& e) {  // llhttp admits no CR/LF here; belt and braces
            r.user_status_ = 400;
            r.user_error_ = e.what();
            return -1;
        }
        r.field_.clear();
        r.value_.clear();
        return 0;
    }
    static int on_headers_complete(llhttp_t* p) {
        auto& r = self(p);
        auto& h = r.head_;
        h.version_minor = p->http_minor;
        if (r.kind_ == MessageReader::Kind::request)
            h.method = llhttp_method_name(llhttp_method_t(p->method));
        else
            h.status = p->status_code;
        h.keep_alive = llhttp_should_keep_alive(p) != 0;
        h.chunked = (p->flags & F_CHUNKED) != 0;
        if (p->flags & F_CONTENT_LENGTH) h.content_length = p->content_length;
        if (r.kind_ == MessageReader::Kind::request) {
            if (!r.acceptable_request(p)) return -1;
            // A declined Upgrade: llhttp reads on as HTTP once the flag is down.
            if (p->method != HTTP_CONNECT) p->upgrade = 0;
        }
        h.upgrade = p->upgrade != 0;
        r.headers_done_ = true;
        if (h.content_length && *h.content_length > r.limits_.max_body_size) {
            r.user_status_ = 413;
            r.user_error_ = "body of " + std::to_string(*h.content_length) + " bytes is over the limit of " +
                            std::to_string(r.limits_.max_body_size);
            return -1;
        }
        return r.no_body_ ? 1 : 0;
    }
    // A chunk's size is known before its data: one that cannot fit is refused now, not
    // after the client has sent the limit's worth (or, for ffffffffffffffff, never).
    static int on_chunk_header(llhttp_t* p) {
        auto& r = self(p);
        uint64_t room = r.limits_.max_body_size - r.body_received_;  // on_body keeps received <= limit
        if (p->content_length <= room) return 0;
        r.user_status_ = 413;
        r.user_error_ = "chunk of " + std::to_string(p->content_length) + " bytes is over the body limit of " +
                        std::to_string(r.limits_.max_body_size) + " bytes";
        return HPE_USER;
    }
    static int on_body(llhttp_t* p, const char* at, size_t n) {
        auto& r = self(p);
        r.body_received_ += n;
        if (r.body_received_ > r.limits_.max_body_size) {  // chunked: no length up front
            r.user_status_ = 413;
            r.user_error_ = "body is over the limit of " + std::to_string(r.limits_.max_body_size) + " bytes";
            return HPE_USER;
        }
        r.body_.append(at, n);
        return 0;
    }
    static int on_message_complete(llhttp_t* p) {
        auto& r = self(p);
        r.complete_ = true;
        r.started_ = false;
        return HPE_PAUSED;  // stop here: what follows belongs to the next message
    }

    static const llhttp_settings_t* settings() {
        static const llhttp_settings_t s = [] {
            llhttp_settings_t s;
            llhttp_settings_init(&s);
            s.on_message_begin = on_message_begin;
            s.on_url = on_url;
            s.on_status = on_status;
            s.on_header_field = on_header_field;
            s.on_header_value = on_header_value;
            s.on_header_value_complete = on_header_value_complete;
            s.on_headers_complete = on_headers_complete;
            s.on_chunk_header = on_chunk_header;
            s.on_body = on_body;
            s.on_message_complete = on_message_complete;
            return s;
        }();
        return &s;
    }
};

MessageReader::MessageReader(Stream& stream, Kind kind, ParseLimits limits, std::string peer)
    : stream_(stream), kind_(kind), limits_(limits), peer_(std::move(peer)) {
    llhttp_init(&parser_, kind == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, Callbacks::settings());
    parser_.data = this;
}

// RFC 9112 §3.2: an HTTP/1.1 request without a Host, or any request with two, is 400 —
// a proxy and the server behind it could otherwise disagree about which host is meant.
// llhttp parses HTTP/0.9 and 2.0 request lines too; neither is served here (505).
bool MessageReader::acceptable_request(const llhttp_t* p) {
    if (p->http_major != 1) {
        user_status_ = 505;
        user_error_ = "HTTP/" + std::to_string(p->http_major) + "." + std::to_string(p->http_minor) +
                      " is not supported";
        return false;
    }
    size_t hosts = 0;
    for (const auto& field : head_.headers) hosts += iequals(field.first, "Host");
    if (hosts == 1 || (hosts == 0 && p->http_minor == 0)) return true;
    user_status_ = 400;
    user_error_ = hosts == 0 ? "HTTP/1.1 request without a Host header" : "more than one Host header";
    return false;
}

bool MessageReader::note_header_bytes(size_t n) {
    header_bytes_ += n;
    if (header_bytes_ <= limits_.max_header_size) return true;
    user_status_ = 431;
    user_error_ = "header section is over the limit of " + std::to_string(limits_.max_header_size) + " bytes";
    return false;
}

void MessageReader::fail(int status, const std::string& why) {
    throw BadMessage(status, std::string(status == 505 ? "unsupported HTTP " : "malformed HTTP ") +
                                 (kind_ == Kind::request ? "request" : "response") + " from " + peer_ + ": " + why);
}

void MessageReader::fail(llhttp_errno_t err) {
    if (user_status_) fail(user_status_, user_error_);
    const char* reason = llhttp_get_error_reason(&parser_);
    // A well-formed version llhttp does not know ("HTTP/3.1"): a major version we do not
    // speak is 505, not a syntax error. (llhttp 8 also refuses HTTP/1.2, which RFC 9110
    // would have served as 1.1: that stays a 400.)
    if (err == HPE_INVALID_VERSION && kind_ == Kind::request && parser_.http_major != 1 && reason &&
        std::string_view(reason) == "Invalid HTTP version")
        fail(505, "HTTP/" + std::to_string(parser_.http_major) + "." + std::to_string(parser_.http_minor) +
                      " is not supported");
    fail(400, std::string(llhttp_errno_name(err)) + (reason && *reason ? std::string(": ") + reason : ""));
}

void MessageReader::execute() {
    const char* data = buf_.data() + pos_;
    size_t n = buf_.size() - pos_;
    // The head's limit is on its raw bytes — the start line, CRLFs, ": " and any padding —
    // not on what the callbacks are handed: until the head has ended, the parser is fed no
    // more than what is left of the allowance, so it cannot take a byte beyond it.
    const bool in_head = !headers_done_;
    if (in_head) {
        if (header_bytes_ >= limits_.max_header_size)
            fail(431, "header section is over the limit of " +
                          std::to_string(limits_.max_header_size) + " bytes");
        n = std::min(n, limits_.max_header_size - header_bytes_);
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data, n);
    // A piece the head ended in is not added: where in it the head ended is unknown (the
    // rest is body), and the head fitted. Trailer fields get what the earlier pieces left.
    if (in_head && !headers_done_) header_bytes_ += n;
    if (err == HPE_OK) {
        pos_ += n;
    } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        pos_ += size_t(llhttp_get_error_pos(&parser_) - data);
        paused_ = err == HPE_PAUSED;
        if (err == HPE_PAUSED_UPGRADE) {  // the message ended; the rest is not ours to parse
            upgraded_ = true;
            complete_ = true;
            started_ = false;
        }
    } else {
        fail(err);
    }
}

void MessageReader::fill() {
    buf_ = stream_.read();
    pos_ = 0;
    if (!buf_.empty()) return;
    eof_ = true;
    if (!started_) return;  // between messages: a clean end
    // Mid-message: only a body delimited by the connection's end may finish here.
    llhttp_errno_t err = llhttp_finish(&parser_);
    if ((err == HPE_OK || err == HPE_PAUSED) && complete_) return;
    fail(400, "connection closed " + std::string(headers_done_ ? "in the body" : "in the head") +
                  " of the message");
}

bool MessageReader::read_head(Hook on_partial_head) {
    if (upgraded_) return false;
    if (paused_) {
        llhttp_resume(&parser_);
        paused_ = false;
    }
    head_ = MessageHead{};
    field_.clear();
    value_.clear();
    body_.clear();
    body_received_ = 0;
    header_bytes_ = 0;
    headers_done_ = complete_ = false;
    bool partial_reported = false;
    while (!headers_done_) {
        if (pos_ == buf_.size()) {
            if (eof_) return false;
            fill();
            if (eof_) {
                if (!headers_done_) return false;  // fill() threw if a message had begun
                break;
            }
        }
        execute();
        if (!headers_done_ && started_ && !partial_reported) {
            partial_reported = true;
            on_partial_head();
        }
    }
    return true;
}

std::string MessageReader::read_body() {
    while (body_.empty() && !complete_) {
        if (pos_ == buf_.size()) {
            if (eof_) fail(400, "connection closed in the body of the message");
            fill();
            if (eof_) break;  // fill() completed the message or threw
        }
        execute();
    }
    std::string out;
    out.swap(body_);
    return out;
}

}  // namespace weft::http::detail

// ContentDecoder: zlib's inflate with windowBits 15 + 32, which reads both the gzip and the
// zlib header. "deflate" is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but some servers
// send raw deflate; browsers retry those with windowBits -15, and so does this when the
// first bytes do not parse as a header.
#include "net/detail/content_decoder.hpp"

#include <weft/http.hpp>

#include <algorithm>
#include <cstdint>
#include <new>

namespace weft::http::detail {

namespace {

constexpr size_t kReplayLimit = 64 * 1024;  // a header fails within its first bytes
constexpr int kAutoHeader = 15 + 32;        // the largest window, gzip or zlib header
constexpr int kRawDeflate = -15;

std::string trim_lower(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

}  // namespace

std::unique_ptr<ContentDecoder> ContentDecoder::for_encoding(std::string_view encoding, size_t limit,
                                                             std::string what) {
    std::string e = trim_lower(encoding);
    if (e == "gzip" || e == "x-gzip") return std::make_unique<ContentDecoder>(false, limit, std::move(what));
    if (e == "deflate") return std::make_unique<ContentDecoder>(true, limit, std::move(what));
    return nullptr;
}

ContentDecoder::ContentDecoder(bool deflate, size_t limit, std::string what)
    : deflate_(deflate), limit_(limit), what_(std::move(what)) {
    if (inflateInit2(&z_, kAutoHeader) != Z_OK) throw std::bad_alloc();
}

ContentDecoder::~ContentDecoder() { inflateEnd(&z_); }

void ContentDecoder::fail(const std::string& why) {
    throw ContentEncodingError(std::errc::bad_message,
                               what_ + ": cannot decode the " + (deflate_ ? "deflate" : "gzip") + " body: " + why);
}

void ContentDecoder::restart_raw() {
    raw_ = true;
    if (inflateReset2(&z_, kRawDeflate) != Z_OK) fail("inflateReset2 failed");
    input_ = std::move(replay_) + input_.substr(input_pos_);
    input_pos_ = 0;
    replay_.clear();
}

void ContentDecoder::feed(std::string data) {
    if (ended_ || data.empty()) return;
    fed_any_ = true;
    if (deflate_ && !raw_ && produced_ == 0 && !replay_dropped_) {
        if (replay_.size() + data.size() <= kReplayLimit) {
            replay_ += data;
        } else {  // long past any header: no retry as raw deflate
            replay_.clear();
            replay_dropped_ = true;
        }
    }
    if (input_pos_ == input_.size()) {
        input_ = std::move(data);
        input_pos_ = 0;
    } else {
        input_ += data;
    }
}

std::string ContentDecoder::decode(size_t max_out) {
    std::string out;
    while (!ended_ && input_pos_ < input_.size() && out.size() < max_out) {
        size_t room = max_out - out.size();
        size_t old = out.size();
        out.resize(old + room);
        z_.next_in = reinterpret_cast<Bytef*>(input_.data() + input_pos_);
        z_.avail_in = uInt(std::min<size_t>(input_.size() - input_pos_, UINT32_MAX));
        z_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
        z_.avail_out = uInt(std::min<size_t>(room, UINT32_MAX));
        int rc = inflate(&z_, Z_NO_FLUSH);
        size_t consumed = size_t(z_.next_in - reinterpret_cast<Bytef*>(input_.data() + input_pos_));
        size_t made = size_t(z_.next_out - reinterpret_cast<Bytef*>(out.data() + old));
        input_pos_ += consumed;
        out.resize(old + made);
        produced_ += made;
        if (produced_ > limit_)
            throw ContentEncodingError(std::errc::value_too_large,
                                       what_ + ": the decoded body is over max_decompressed_size (" +
                                           std::to_string(limit_) + " bytes)");
        if (made > 0) replay_.clear();
        if (rc == Z_STREAM_END) {
            ended_ = true;
        } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            // A "deflate" body without its zlib header: raw deflate, as browsers accept.
            if (deflate_ && !raw_ && produced_ == 0 && !replay_dropped_ && !replay_.empty()) {
                restart_raw();
                continue;
            }
            fail(z_.msg ? z_.msg : "corrupt data");
        } else if (rc == Z_MEM_ERROR) {
            throw std::bad_alloc();
        } else if (rc == Z_BUF_ERROR || (consumed == 0 && made == 0)) {
            break;  // no progress possible: it needs more input
        }
    }
    if (input_pos_ == input_.size() || ended_) {
        input_.clear();
        input_pos_ = 0;
    }
    return out;
}

void ContentDecoder::finish() {
    if (fed_any_ && !ended_) fail("the compressed stream is cut short");
}

}  // namespace weft::http::detail

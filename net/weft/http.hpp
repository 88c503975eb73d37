// HTTP/1.1 vocabulary shared by the client (http_client.hpp) and the server
// (http_server.hpp): header lists, http:// and https:// URLs, query strings, status phrases
// and the errors. Messages are parsed by llhttp (Node's parser, compiled into libweft);
// nothing here parses HTTP.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/error.hpp>

namespace weft::http {

// Any HTTP failure that is not a plain OS error or a timeout.
class HttpError : public Error {
public:
    HttpError(std::errc code, const std::string& what) : Error(code, what) {}  // what() alone
};

// A malformed or over-limit message. status() is what a server answers it with: 400 for
// bad syntax, 413 for a body over the limit, 431 for headers over the limit.
class BadMessage : public HttpError {
public:
    BadMessage(int status, const std::string& what)
        : HttpError(std::errc::bad_message, what), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

// The server closed the connection before a complete response (aiohttp's
// ServerDisconnectedError).
class ServerDisconnected : public HttpError {
public:
    explicit ServerDisconnected(const std::string& what)
        : HttpError(std::errc::connection_reset, what) {}
};

// Not an http:// or https:// URL we can use (another scheme, no host, bad port, ...).
class InvalidUrl : public HttpError {
public:
    explicit InvalidUrl(const std::string& what) : HttpError(std::errc::invalid_argument, what) {}
};

// A body whose Content-Encoding (gzip, deflate) could not be undone: corrupt or cut short,
// or decoding to more than the session's max_decompressed_size (aiohttp's
// ContentEncodingError).
class ContentEncodingError : public HttpError {
public:
    ContentEncodingError(std::errc code, const std::string& what) : HttpError(code, what) {}
};

// More redirects than ClientSession allows for one request.
class TooManyRedirects : public HttpError {
public:
    explicit TooManyRedirects(const std::string& what)
        : HttpError(std::errc::too_many_links, what) {}
};

// A response status >= 400, from ClientResponse::raise_for_status().
class ClientResponseError : public HttpError {
public:
    ClientResponseError(int status, const std::string& what)
        : HttpError(std::errc::protocol_error, what), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

// An ordered multi-map of header fields with case-insensitive names (aiohttp's
// CIMultiDict). Order and repeated names are kept as received.
class Headers {
public:
    using Field = std::pair<std::string, std::string>;

    Headers() = default;
    Headers(std::initializer_list<Field> fields);  // validated as add() does

    // The first value of `name`, if any.
    std::optional<std::string_view> get(std::string_view name) const noexcept;
    std::string get(std::string_view name, std::string_view fallback) const;
    std::vector<std::string_view> get_all(std::string_view name) const;
    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }

    // Appends a field. HttpError for a name that is not an RFC 9110 token (letters, digits
    // and the symbols RFC 9110 allows in a token; no spaces, no colon) or a value with CR,
    // LF or NUL.
    void add(std::string name, std::string value);
    // Replaces every field called `name` with one.
    void set(std::string name, std::string value);
    size_t remove(std::string_view name) noexcept;

    size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }
    auto begin() const noexcept { return fields_.begin(); }
    auto end() const noexcept { return fields_.end(); }

private:
    std::vector<Field> fields_;
};

bool iequals(std::string_view a, std::string_view b) noexcept;

// An absolute http:// or https:// URL split into what a request needs.
struct Url {
    std::string scheme = "http";  // "http" or "https", in lower case
    std::string host;    // without brackets for IPv6 literals
    uint16_t port = 80;
    std::string target;  // path and query, at least "/"

    bool is_https() const noexcept { return scheme == "https"; }
    uint16_t default_port() const noexcept { return is_https() ? 443 : 80; }
    // "host:port" as it goes into a Host header (port omitted when it is the scheme's).
    std::string authority() const;
    // scheme://authority: what "the same site" means for redirects (credentials stay there).
    std::string origin() const;
    std::string to_string() const;  // origin() + target
};

// Parses "http[s]://host[:port][/path][?query]" (a fragment is dropped; the port defaults to
// 80 or 443). Bytes beyond ASCII in the path and query are percent-encoded; spaces and
// control characters are refused. Throws InvalidUrl, saying why, for anything else.
Url parse_url(std::string_view url);
// Resolves a Location header against the URL it came from (absolute, "//host/path",
// "/path" or relative).
Url resolve_url(const Url& base, std::string_view location);

// Query parameters (aiohttp's params=): pairs, in order, repeated names allowed.
using Params = std::vector<std::pair<std::string, std::string>>;
// "a=1&b=x+y": each name and value percent-encoded as yarl (aiohttp's URL library) does for
// a query: RFC 3986's unreserved characters, the sub-delimiters that mean nothing in a form
// and the four a query may hold (question mark, slash, colon, at sign) as they are; a space
// as '+'; every other byte (the ampersand, the equals and plus signs, the semicolon, the
// percent sign, non-ASCII, ...) percent-encoded.
std::string encode_query(const Params& params);
// The URL with `params` appended to the query it already has ('?' or '&' as needed).
Url with_params(Url url, const Params& params);

// "OK" for 200, "Not Found" for 404, ...; "Unknown" for codes it does not know.
std::string_view reason_phrase(int status) noexcept;

}  // namespace weft::http

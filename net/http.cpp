// Headers, URLs, query strings and status phrases: the small shared pieces of weft::http.
#include <weft/http.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace weft::http {

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

// RFC 9110's tchar: what a field name may hold. Anything else ("Content-Length " with its
// space, say) is a different field to one parser and the same to another: a smuggling
// hazard, so it never goes out.
constexpr bool is_tchar(unsigned char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
    static constexpr auto table = [] {
        std::array<bool, 256> t{};
        for (int c = 0; c < 256; ++c) t[size_t(c)] = is_tchar((unsigned char)c);
        return t;
    }();
    if (s.empty()) return false;
    for (char c : s)
        if (!table[(unsigned char)c]) return false;
    return true;
}

// A name that is not a token, or CR/LF/NUL in a value, would let a caller inject headers
// or split a message.
void check_field(const std::string& name, const std::string& value) {
    if (!is_token(name))
        throw HttpError(std::errc::invalid_argument, "invalid header field name '" + name + "'");
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != value.npos)
        throw HttpError(std::errc::invalid_argument, "invalid value for header field '" + name + "'");
}

// Bytes beyond ASCII in a path or query (UTF-8, say) go out percent-encoded, as browsers
// and aiohttp's yarl send them: a request line carries ASCII only.
std::string encode_non_ascii(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto byte = (unsigned char)c;
        if (byte < 0x80) {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        }
    }
    return out;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

Headers::Headers(std::initializer_list<Field> fields) {
    for (const auto& [name, value] : fields) add(name, value);
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
    for (const auto& [n, v] : fields_)
        if (iequals(n, name)) return std::string_view(v);
    return std::nullopt;
}

std::string Headers::get(std::string_view name, std::string_view fallback) const {
    return std::string(get(name).value_or(fallback));
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : fields_)
        if (iequals(n, name)) out.push_back(v);
    return out;
}

void Headers::add(std::string name, std::string value) {
    check_field(name, value);
    fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::set(std::string name, std::string value) {
    check_field(name, value);
    remove(name);
    fields_.emplace_back(std::move(name), std::move(value));
}

size_t Headers::remove(std::string_view name) noexcept {
    return std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::string Url::authority() const {
    std::string h = host.find(':') != host.npos ? "[" + host + "]" : host;
    return port == default_port() ? h : h + ":" + std::to_string(port);
}

std::string Url::origin() const { return scheme + "://" + authority(); }

std::string Url::to_string() const { return origin() + target; }

Url parse_url(std::string_view url) {
    auto fail = [&](const std::string& why) -> Url {
        throw InvalidUrl("invalid URL '" + std::string(url) + "': " + why);
    };
    size_t colon = url.find("://");
    if (colon == url.npos) return fail("expected http://host/... or https://host/...");
    Url out;
    if (iequals(url.substr(0, colon), "https")) {
        out.scheme = "https";
        out.port = 443;
    } else if (!iequals(url.substr(0, colon), "http")) {
        return fail("only http:// and https:// are supported");
    }
    std::string_view rest = url.substr(colon + 3);
    size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view target = end == rest.npos ? std::string_view() : rest.substr(end);
    if (size_t hash = target.find('#'); hash != target.npos) target = target.substr(0, hash);
    if (authority.find('@') != authority.npos) return fail("user info is not supported");

    std::string_view port;
    if (!authority.empty() && authority[0] == '[') {  // [v6]:port
        size_t close = authority.find(']');
        if (close == authority.npos) return fail("unterminated IPv6 literal");
        out.host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return fail("junk after the IPv6 literal");
            port = after.substr(1);
        }
    } else {
        size_t c = authority.rfind(':');
        out.host = authority.substr(0, c);
        if (c != authority.npos) port = authority.substr(c + 1);
    }
    if (out.host.empty()) return fail("no host");
    for (char c : out.host)
        if (c <= ' ' || c == 0x7f || c == '/' || c == '\\') return fail("bad character in host");
    if (!port.empty()) {
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
            return fail("bad port");
        out.port = uint16_t(p);
    }
    for (char c : target)
        if ((unsigned char)c <= ' ' || c == 0x7f) return fail("spaces or control characters in the path");
    out.target = target.empty() || target[0] == '?' ? "/" + encode_non_ascii(target) : encode_non_ascii(target);
    return out;
}

Url resolve_url(const Url& base, std::string_view location) {
    if (location.find("://") != location.npos) return parse_url(location);
    if (location.substr(0, 2) == "//") return parse_url(base.scheme + ":" + std::string(location));
    Url out = base;
    if (location.empty()) return out;
    if (location[0] == '/') {
        out.target = location;
    } else {  // relative to the base's directory; dot segments are left to the server
        std::string dir = base.target.substr(0, base.target.find('?'));
        dir = dir.substr(0, dir.rfind('/') + 1);
        out.target = location[0] == '?' ? base.target.substr(0, base.target.find('?')) + std::string(location)
                                        : dir + std::string(location);
    }
    return parse_url(out.to_string());  // the same checks as any URL
}

std::string encode_query(const Params& params) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    // yarl's _QUERY_PART_QUOTER: RFC 3986's unreserved characters, the sub-delimiters that
    // mean nothing in a form ("!$'()*,"), and "?/:@"; '&', '=', '+' and ';' would.
    auto quote = [](std::string& out, std::string_view s) {
        for (char c : s) {
            auto b = (unsigned char)c;
            if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                std::string_view("-._~!$'()*,?/:@").find(c) != std::string_view::npos) {
                out += c;
            } else if (c == ' ') {
                out += '+';
            } else {
                out += '%';
                out += kHex[b >> 4];
                out += kHex[b & 0xf];
            }
        }
    };
    std::string out;
    for (const auto& [name, value] : params) {
        if (!out.empty()) out += '&';
        quote(out, name);
        out += '=';
        quote(out, value);
    }
    return out;
}

Url with_params(Url url, const Params& params) {
    if (params.empty()) return url;
    std::string query = encode_query(params);
    size_t q = url.target.find('?');
    if (q == url.target.npos)
        url.target += '?';
    else if (q + 1 != url.target.size() && url.target.back() != '&')
        url.target += '&';
    url.target += query;
    return url;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

}  // namespace weft::http
